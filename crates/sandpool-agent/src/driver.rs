//! One Python driver process: spawned with its request pipe on fd 3 and its response pipe on
//! fd 4, in its own process group.

use crate::processes::{signal_group, Processes};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// How to start the driver.
#[derive(Debug, Clone)]
pub struct DriverCommand {
    pub python: PathBuf,
    pub driver: PathBuf,
    pub data_dir: PathBuf,
}

/// A request to the driver (a msgpack map tagged by `op`).
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum DriverRequest<'a> {
    Execute {
        code: &'a str,
    },
    Reseed {
        #[serde(with = "serde_bytes")]
        seed: &'a [u8],
    },
    Warm {
        modules: &'a [String],
    },
}

/// The driver's answer; which fields are set depends on the request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DriverReply {
    /// For execute: `ok`, `error` or `interrupted`.
    pub status: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub result: Option<sandpool_proto::MimeBundle>,
    pub displays: Vec<sandpool_proto::MimeBundle>,
    pub error: Option<DriverError>,
    pub duration_ms: u64,
    /// For other ops: whether it worked, and why not.
    pub ok: Option<bool>,
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DriverError {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

/// A running driver process and its request pipe. Its response pipe is handed to whoever
/// reads the replies (the supervisor thread).
pub struct DriverProcess {
    child: Child,
    to_driver: Arc<File>,
    processes: Arc<Processes>,
    /// How the process ended, once it has been reaped.
    ended: Option<String>,
}

impl DriverProcess {
    /// Starts the driver; returns it and the read end of its response pipe. The first
    /// frame the driver sends says it is ready.
    pub fn spawn(
        command: &DriverCommand,
        processes: &Arc<Processes>,
    ) -> std::io::Result<(DriverProcess, File)> {
        let (req_read, req_write) = pipe()?;
        let (resp_read, resp_write) = pipe()?;
        let (req_fd, resp_fd) = (req_read.as_raw_fd(), resp_write.as_raw_fd());
        let mut cmd = Command::new(&command.python);
        cmd.arg(&command.driver)
            .current_dir(&command.data_dir)
            .stdin(Stdio::null())
            .process_group(0);
        // SAFETY: only async-signal-safe fcntl/dup2 between fork and exec. Both ends are first
        // copied above fd 10 so that placing them on 3 and 4 cannot clobber each other, and
        // dup2 onto a different fd clears close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(req_fd, libc::F_DUPFD, 10);
                let b = libc::fcntl(resp_fd, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(a);
                libc::close(b);
                Ok(())
            });
        }
        let child = processes.spawn(&mut cmd)?;
        drop((req_read, resp_write));
        let driver = DriverProcess {
            child,
            to_driver: Arc::new(File::from(req_write)),
            processes: Arc::clone(processes),
            ended: None,
        };
        Ok((driver, File::from(resp_read)))
    }

    /// The request pipe, for writing one whole frame while the driver waits for it.
    pub fn requests(&self) -> Arc<File> {
        Arc::clone(&self.to_driver)
    }

    /// Bytes written to the request pipe that the driver has not read (`FIONREAD`, which
    /// Linux and gVisor answer on either end of a pipe); 0 if that cannot be told.
    pub fn unread_request_bytes(&self) -> usize {
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the valid pointer.
        let rc = unsafe { libc::ioctl(self.to_driver.as_raw_fd(), libc::FIONREAD, &mut unread) };
        if rc < 0 {
            return 0;
        }
        usize::try_from(unread).unwrap_or(0)
    }

    /// True when the process is known to have exited (one `wait4` with `WNOHANG`).
    pub fn has_exited(&mut self) -> bool {
        self.ended.is_some() || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Signals the driver's whole process group (the driver and what it started).
    pub fn signal(&self, signal: libc::c_int) {
        signal_group(self.child.id() as i32, signal);
    }

    /// SIGKILLs the process group and reaps the driver; returns how it ended.
    pub fn kill(mut self) -> String {
        self.terminate()
    }

    fn terminate(&mut self) -> String {
        if let Some(how) = &self.ended {
            return how.clone();
        }
        let pid = self.child.id() as i32;
        signal_group(pid, libc::SIGKILL);
        let how = match self.child.wait() {
            Ok(s) => describe_exit(s),
            Err(e) => format!("unknown ({e})"),
        };
        self.processes.release(pid);
        self.ended = Some(how.clone());
        how
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(libc::SIGKILL)) => "killed by SIGKILL".into(),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown".into(),
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own exclusively.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// How long a signal may take to interrupt a cell before the driver is killed.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
