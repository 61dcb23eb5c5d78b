//! The workload of a custom sandbox: started once, in its own process group, with its
//! output going to the sandbox log (the agent's stderr); its exit is recorded for health
//! checks and reported to the host as an event.

use crate::config::WorkloadCommand;
use crate::outbox::Outbox;
use crate::processes::{signal_group, Processes};
use sandpool_proto::{Event, WorkloadExit, WorkloadState};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// The state of the one workload of this sandbox.
pub struct Workload {
    state: Mutex<WorkloadState>,
}

impl Workload {
    /// Starts `command` and a thread that waits for it.
    pub fn start(command: &WorkloadCommand, processes: Arc<Processes>, outbox: Arc<Outbox>) -> Arc<Workload> {
        let mut cmd = Command::new(&command.argv[0]);
        cmd.args(&command.argv[1..])
            .env_clear()
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&command.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .process_group(0);
        let program = command.argv[0].to_string_lossy().into_owned();
        let mut child = match processes.spawn(&mut cmd) {
            Ok(child) => child,
            Err(e) => {
                let exit = WorkloadExit {
                    code: None,
                    signal: None,
                    detail: format!("could not start {program:?} in {}: {e}", command.cwd.display()),
                };
                tracing::error!(detail = %exit.detail, "workload did not start");
                outbox.event(Event::WorkloadExited(exit.clone()));
                return Arc::new(Workload {
                    state: Mutex::new(WorkloadState::Exited(exit)),
                });
            }
        };
        let pid = child.id();
        tracing::info!(pid, program = %program, "workload started");
        let workload = Arc::new(Workload {
            state: Mutex::new(WorkloadState::Running { pid }),
        });
        let me = Arc::clone(&workload);
        let waiter = std::thread::Builder::new()
            .name("workload".into())
            .spawn(move || {
                let exit = match child.wait() {
                    Ok(status) => describe(status),
                    Err(e) => WorkloadExit {
                        code: None,
                        signal: None,
                        detail: format!("cannot wait for the workload: {e}"),
                    },
                };
                // The leader is gone: whatever it left in its group goes with it.
                signal_group(pid as i32, libc::SIGKILL);
                processes.release(pid as i32);
                tracing::warn!(detail = %exit.detail, "workload exited");
                *me.state.lock().expect("workload lock poisoned") = WorkloadState::Exited(exit.clone());
                outbox.event(Event::WorkloadExited(exit));
            });
        if let Err(e) = waiter {
            tracing::error!(error = %e, "cannot start the workload waiter; its exit will not be reported");
        }
        workload
    }

    pub fn state(&self) -> WorkloadState {
        self.state.lock().expect("workload lock poisoned").clone()
    }
}

/// Exit code or signal, and a summary.
fn describe(status: ExitStatus) -> WorkloadExit {
    match (status.code(), status.signal()) {
        (Some(code), _) => WorkloadExit {
            code: Some(code),
            signal: None,
            detail: format!("exit status {code}"),
        },
        (None, Some(signal)) => WorkloadExit {
            code: None,
            signal: Some(signal),
            detail: format!("killed by signal {signal}"),
        },
        (None, None) => WorkloadExit {
            code: None,
            signal: None,
            detail: format!("ended: {status}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_described() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)).code, Some(3));
        let killed = describe(ExitStatus::from_raw(libc::SIGKILL));
        assert_eq!((killed.code, killed.signal), (None, Some(9)));
        assert_eq!(killed.detail, "killed by signal 9");
    }
}
