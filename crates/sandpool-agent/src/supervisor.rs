//! Keeps one Python driver running: serializes its requests, enforces execution timeouts
//! (SIGINT, then SIGKILL and a restart), and restarts it when it dies.

use crate::driver::{
    DriverCommand, DriverEvent, DriverProcess, DriverReply, DriverRequest, DriverStatus, INTERRUPT_GRACE,
};
use crate::processes::Processes;
use sandpool_proto::{AgentError, DriverState, ErrorKind, ExecutionError, ExecutionResult, ExecutionStatus};
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest the driver may take to start (import IPython) before it is declared unavailable.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const RESEED_TIMEOUT: Duration = Duration::from_secs(30);
const WARM_TIMEOUT: Duration = Duration::from_secs(600);

/// Owner of the (at most one) Python driver of this sandbox.
pub struct Supervisor {
    command: DriverCommand,
    processes: Arc<Processes>,
    /// The driver; holding this lock is what serializes executions.
    driver: Mutex<Option<DriverProcess>>,
    /// Status of the current driver, for health checks that must not wait for a cell.
    status: Mutex<Option<Arc<DriverStatus>>>,
}

impl Supervisor {
    /// Starts the driver right away, so it is warm before the first request.
    pub fn start(command: DriverCommand, processes: Arc<Processes>) -> Supervisor {
        let supervisor = Supervisor {
            command,
            processes,
            driver: Mutex::new(None),
            status: Mutex::new(None),
        };
        let mut slot = supervisor.driver.lock().expect("driver lock poisoned");
        supervisor.respawn(&mut slot);
        drop(slot);
        supervisor
    }

    /// The driver's state as seen without waiting for a running cell.
    pub fn health(&self) -> DriverState {
        match self.status.lock().expect("status lock poisoned").as_ref() {
            None => DriverState::Dead,
            Some(s) if s.exited.load(Ordering::SeqCst) => DriverState::Dead,
            Some(s) if s.ready.load(Ordering::SeqCst) => DriverState::Ready,
            Some(_) => DriverState::Starting,
        }
    }

    /// Runs one cell, at most one at a time.
    pub fn execute(&self, code: &str, timeout: Duration) -> Result<ExecutionResult, AgentError> {
        let mut slot = self.driver.lock().expect("driver lock poisoned");
        let lost_before = self.ensure_ready(&mut slot)?;
        let driver = slot.as_mut().expect("ensure_ready leaves a driver");
        let started = Instant::now();
        // A failed write means the driver died; the reader then reports it as disconnected.
        let _ = driver.send(&DriverRequest::Execute { code });
        match driver.recv(timeout) {
            Ok(event) => reply_to_result(event, false, lost_before),
            Err(RecvTimeoutError::Timeout) => {
                driver.signal(libc::SIGINT);
                match driver.recv(INTERRUPT_GRACE) {
                    Ok(event) => reply_to_result(event, true, lost_before),
                    Err(_) => {
                        let how = slot.take().expect("driver present").kill();
                        tracing::warn!(ended = %how, "cell ignored the interrupt; Python driver restarted");
                        self.respawn(&mut slot);
                        Ok(lost_result(
                            ExecutionStatus::Timeout,
                            "TimeoutError",
                            format!(
                                "the cell exceeded its {} ms timeout and did not stop when interrupted; \
                                 the Python process was restarted and all state was lost",
                                timeout.as_millis()
                            ),
                            started,
                        ))
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let mut how = slot.take().expect("driver present").kill();
                if how.contains("SIGKILL") {
                    how.push_str(", possibly for running out of memory");
                }
                tracing::warn!(ended = %how, "Python driver died during a cell; restarted");
                self.respawn(&mut slot);
                Ok(lost_result(
                    ExecutionStatus::Error,
                    "DriverDied",
                    format!(
                        "the Python process exited during the cell ({how}); all state was lost \
                         and a fresh process was started"
                    ),
                    started,
                ))
            }
        }
    }

    /// Reseeds the driver's pseudo-random generators.
    pub fn reseed(&self, seed: &[u8]) -> Result<(), AgentError> {
        self.call(
            &DriverRequest::Reseed { seed },
            RESEED_TIMEOUT,
            ErrorKind::Internal,
        )
    }

    /// Imports `modules` in the driver (and sets up matplotlib's inline backend).
    pub fn warm(&self, modules: &[String]) -> Result<(), AgentError> {
        self.call(
            &DriverRequest::Warm { modules },
            WARM_TIMEOUT,
            ErrorKind::NotFound,
        )
    }

    fn call(
        &self,
        request: &DriverRequest<'_>,
        timeout: Duration,
        failure: ErrorKind,
    ) -> Result<(), AgentError> {
        let mut slot = self.driver.lock().expect("driver lock poisoned");
        self.ensure_ready(&mut slot)?;
        let driver = slot.as_mut().expect("ensure_ready leaves a driver");
        let _ = driver.send(request);
        let outcome = driver.recv(timeout);
        let reply = match outcome {
            Ok(DriverEvent::Reply(payload)) => decode_reply(&payload)?,
            Ok(DriverEvent::Ready) => return Err(internal("the Python driver announced itself twice")),
            Err(e) => {
                let how = slot.take().expect("driver present").kill();
                self.respawn(&mut slot);
                let why = match e {
                    RecvTimeoutError::Timeout => format!("did not answer within {} s", timeout.as_secs()),
                    RecvTimeoutError::Disconnected => format!("exited ({how})"),
                };
                return Err(error(
                    ErrorKind::DriverUnavailable,
                    format!("the Python driver {why}; it was restarted and all state was lost"),
                ));
            }
        };
        match reply.ok {
            Some(true) => Ok(()),
            _ => Err(error(
                failure,
                reply.message.unwrap_or_else(|| "the Python driver failed".into()),
            )),
        }
    }

    /// Makes sure a started driver is in the slot; true if a previously ready driver had
    /// died since the last request (its state is lost).
    fn ensure_ready(&self, slot: &mut Option<DriverProcess>) -> Result<bool, AgentError> {
        let mut lost = false;
        if let Some(driver) = slot.as_mut() {
            if driver.has_exited() {
                lost = driver.started;
                let how = slot.take().expect("driver present").kill();
                tracing::warn!(ended = %how, "Python driver had exited; restarting it");
            }
        }
        if slot.is_none() && !self.respawn(slot) {
            return Err(error(
                ErrorKind::DriverUnavailable,
                "the Python driver cannot be started".into(),
            ));
        }
        let driver = slot.as_mut().expect("respawned");
        if !driver.started {
            match driver.recv(STARTUP_TIMEOUT) {
                Ok(DriverEvent::Ready) => driver.started = true,
                Ok(DriverEvent::Reply(_)) => {
                    return Err(internal("the Python driver answered before starting"))
                }
                Err(e) => {
                    let how = slot.take().expect("driver present").kill();
                    let why = match e {
                        RecvTimeoutError::Timeout => {
                            format!("did not start within {} s", STARTUP_TIMEOUT.as_secs())
                        }
                        RecvTimeoutError::Disconnected => format!("exited during startup ({how})"),
                    };
                    return Err(error(
                        ErrorKind::DriverUnavailable,
                        format!("the Python driver {why}; see the sandbox's stderr"),
                    ));
                }
            }
        }
        Ok(lost)
    }

    /// Starts a fresh driver into `slot`; false (and logged) if it cannot be spawned.
    fn respawn(&self, slot: &mut Option<DriverProcess>) -> bool {
        match DriverProcess::spawn(&self.command, &self.processes) {
            Ok(driver) => {
                *self.status.lock().expect("status lock poisoned") = Some(Arc::clone(&driver.status));
                *slot = Some(driver);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, python = %self.command.python.display(), "cannot start the Python driver");
                *self.status.lock().expect("status lock poisoned") = None;
                false
            }
        }
    }
}

fn reply_to_result(event: DriverEvent, interrupted: bool, lost: bool) -> Result<ExecutionResult, AgentError> {
    let DriverEvent::Reply(payload) = event else {
        return Err(internal("the Python driver announced itself twice"));
    };
    let reply = decode_reply(&payload)?;
    let status = match (interrupted, reply.status.as_deref()) {
        (true, _) => ExecutionStatus::Timeout,
        (false, Some("ok")) => ExecutionStatus::Ok,
        (false, _) => ExecutionStatus::Error,
    };
    Ok(ExecutionResult {
        status,
        stdout: reply.stdout,
        stderr: reply.stderr,
        result: reply.result,
        displays: reply.displays,
        error: reply.error.map(|e| ExecutionError {
            ename: e.ename,
            evalue: e.evalue,
            traceback: e.traceback,
        }),
        duration_ms: reply.duration_ms,
        state_lost: lost,
    })
}

fn lost_result(status: ExecutionStatus, ename: &str, evalue: String, started: Instant) -> ExecutionResult {
    ExecutionResult {
        status,
        stdout: String::new(),
        stderr: String::new(),
        result: None,
        displays: Vec::new(),
        error: Some(ExecutionError {
            ename: ename.into(),
            traceback: vec![format!("{ename}: {evalue}")],
            evalue,
        }),
        duration_ms: started.elapsed().as_millis() as u64,
        state_lost: true,
    }
}

fn decode_reply(payload: &[u8]) -> Result<DriverReply, AgentError> {
    sandpool_proto::decode(payload)
        .map_err(|e| internal(&format!("undecodable reply from the Python driver: {e}")))
}

fn error(kind: ErrorKind, message: String) -> AgentError {
    AgentError { kind, message }
}

fn internal(message: &str) -> AgentError {
    error(ErrorKind::Internal, message.into())
}
