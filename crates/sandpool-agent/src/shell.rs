//! Shell commands: `/bin/bash -c` (`/bin/sh -c` in custom images without bash) in the data directory, in their own process group, killed
//! as a group on timeout, with output capped per stream.

use crate::output::{Collector, MAX_STREAM_BYTES};
use crate::processes::{signal_group, Processes};
use sandpool_proto::{AgentError, ErrorKind, Response, ShellResult};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Exit code reported on timeout, as `timeout(1)`.
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// How long output is still collected after the command exits (background jobs may keep
/// the pipes open).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for a SIGKILLed group leader to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Runs `command` and waits at most `timeout` for it.
pub fn run(
    processes: &Processes,
    program: &Path,
    data_dir: &Path,
    command: &str,
    timeout: Duration,
) -> Result<Response, AgentError> {
    let started = Instant::now();
    let mut cmd = Command::new(program);
    cmd.arg("-c")
        .arg(command)
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = processes.spawn(&mut cmd).map_err(|e| AgentError {
        kind: ErrorKind::Internal,
        message: format!("cannot start {}: {e}", program.display()),
    })?;
    let pid = child.id() as i32;
    let stdout = Collector::start(child.stdout.take().expect("stdout is piped"), MAX_STREAM_BYTES);
    let stderr = Collector::start(child.stderr.take().expect("stderr is piped"), MAX_STREAM_BYTES);
    let (tx, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match exited.recv_timeout(timeout) {
        Ok(status) => (status, false),
        Err(_) => {
            signal_group(pid, libc::SIGKILL);
            (
                exited
                    .recv_timeout(KILL_WAIT)
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
                true,
            )
        }
    };
    // The group leader is gone: take the rest of its group down with it.
    signal_group(pid, libc::SIGKILL);
    processes.release(pid);
    let exit_code = match (&status, timed_out) {
        (_, true) => TIMEOUT_EXIT_CODE,
        (Ok(s), false) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        (Err(_), false) => -1,
    };
    Ok(Response::Shell(ShellResult {
        exit_code,
        stdout: stdout.finish(OUTPUT_GRACE),
        stderr: stderr.finish(OUTPUT_GRACE),
        duration_ms: started.elapsed().as_millis() as u64,
        timed_out,
    }))
}
