//! Shell commands: `/bin/bash -c` (`/bin/sh -c` in custom images without bash) in the data directory, in their own process group, killed
//! as a group on timeout, with output capped per stream.

use crate::output::{Collector, MAX_STREAM_BYTES};
use crate::processes::{signal_group, Processes};
use sandpool_proto::{AgentError, ErrorKind, Response, ShellResult};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    // Every thread this needs exists before the command starts: a fork bomb can exhaust
    // the process limit (threads count) within milliseconds, and a thread that could not
    // be started afterwards would leave the request unanswered.
    let unavailable = |what: &str, e: std::io::Error| AgentError {
        kind: ErrorKind::Internal,
        message: format!("cannot {what} for the command: {e}"),
    };
    let (out_read, out_write) = std::io::pipe().map_err(|e| unavailable("create a pipe", e))?;
    let (err_read, err_write) = std::io::pipe().map_err(|e| unavailable("create a pipe", e))?;
    let stdout =
        Collector::start(out_read, MAX_STREAM_BYTES).map_err(|e| unavailable("start a thread", e))?;
    let stderr =
        Collector::start(err_read, MAX_STREAM_BYTES).map_err(|e| unavailable("start a thread", e))?;
    let (child_tx, child_rx) = mpsc::channel::<Child>();
    let (tx, exited) = mpsc::channel();
    std::thread::Builder::new()
        .name("shell-wait".into())
        .spawn(move || {
            if let Ok(mut child) = child_rx.recv() {
                let _ = tx.send(child.wait());
            }
        })
        .map_err(|e| unavailable("start a thread", e))?;
    let mut cmd = Command::new(program);
    cmd.arg("-c")
        .arg(command)
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(out_write)
        .stderr(err_write)
        .process_group(0);
    let child = processes.spawn(&mut cmd).map_err(|e| AgentError {
        kind: ErrorKind::Internal,
        message: format!("cannot start {}: {e}", program.display()),
    })?;
    // Closes this process's copies of the pipes' write ends, so the collectors see the end.
    drop(cmd);
    let pid = child.id() as i32;
    let _ = child_tx.send(child);
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
