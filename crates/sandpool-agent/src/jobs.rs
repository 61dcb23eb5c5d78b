//! Requests for the Python driver and how each one ends: a reply turned into the host's
//! response, an interrupt after its deadline, or an answer for a driver that died or was
//! killed.

use crate::driver::DriverReply;
use sandpool_proto::{AgentError, ErrorKind, ExecutionError, ExecutionResult, ExecutionStatus, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends the response to the request a job came from.
pub type Respond = Box<dyn FnOnce(Response) + Send>;

/// What a job asks of the driver, with its deadline.
#[derive(Debug, Clone, Copy)]
pub enum JobKind {
    /// A cell: interrupted at its timeout, killed after a grace period.
    Execute { timeout: Duration },
    /// Reseed or warm: the driver is restarted if it misses the deadline; a refusal is
    /// reported with `failure`.
    Call { timeout: Duration, failure: ErrorKind },
}

/// A request waiting for (or being run by) the driver.
pub struct Job {
    /// The whole frame to write to the driver (shared with the writer, so a job the
    /// driver never read can be sent again).
    pub frame: Arc<Vec<u8>>,
    kind: JobKind,
    respond: Respond,
}

impl Job {
    pub fn new(frame: Vec<u8>, kind: JobKind, respond: Respond) -> Job {
        Job {
            frame: Arc::new(frame),
            kind,
            respond,
        }
    }

    pub fn is_execute(&self) -> bool {
        matches!(self.kind, JobKind::Execute { .. })
    }

    pub fn respond(self, response: Response) {
        (self.respond)(response)
    }
}

/// What to do when the current job's deadline passes.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// SIGINT the driver and give it [`crate::driver::INTERRUPT_GRACE`] more.
    Interrupt,
    /// Kill and restart the driver; answer with [`Current::abandoned`].
    Abandon,
}

/// The job the driver is running.
pub struct Current {
    job: Job,
    started: Instant,
    pub deadline: Instant,
    interrupted: bool,
    /// A previous driver died between requests: this result reports lost state.
    lost_before: bool,
}

impl Current {
    /// Starts `job` now; returns it and the frame to write.
    pub fn start(job: Job, lost_before: bool) -> (Current, Arc<Vec<u8>>) {
        let started = Instant::now();
        let timeout = match job.kind {
            JobKind::Execute { timeout } | JobKind::Call { timeout, .. } => timeout,
        };
        let frame = Arc::clone(&job.frame);
        let current = Current {
            job,
            started,
            deadline: started + timeout,
            interrupted: false,
            lost_before,
        };
        (current, frame)
    }

    /// The deadline passed at `now`: a cell is interrupted once, then abandoned.
    pub fn expired(&mut self, now: Instant) -> Outcome {
        match self.job.kind {
            JobKind::Execute { .. } if !self.interrupted => {
                self.interrupted = true;
                self.deadline = now + crate::driver::INTERRUPT_GRACE;
                Outcome::Interrupt
            }
            _ => Outcome::Abandon,
        }
    }

    /// The driver answered with `payload`.
    pub fn finish(self, payload: &[u8]) -> (Job, Response) {
        let response = match decode_reply(payload) {
            Err(e) => Response::Error(e),
            Ok(reply) => match self.job.kind {
                JobKind::Execute { .. } => {
                    Response::Execution(execution(reply, self.interrupted, self.lost_before))
                }
                JobKind::Call { failure, .. } => match reply.ok {
                    Some(true) => Response::Done,
                    _ => error(
                        failure,
                        reply.message.unwrap_or_else(|| "the Python driver failed".into()),
                    ),
                },
            },
        };
        (self.job, response)
    }

    /// The driver ended without reading the job: it goes back to the queue, and its
    /// result will say that the state was lost.
    pub fn unread(self) -> Job {
        self.job
    }

    /// The driver died while running the job (`how` it ended).
    pub fn died(self, how: &str) -> (Job, Response) {
        let response = match self.job.kind {
            JobKind::Execute { .. } => {
                let mut how = how.to_string();
                if how.contains("SIGKILL") {
                    how.push_str(", possibly for running out of memory");
                }
                Response::Execution(lost_result(
                    ExecutionStatus::Error,
                    "DriverDied",
                    format!(
                        "the Python process exited during the cell ({how}); all state was lost \
                         and a fresh process was started"
                    ),
                    self.started,
                ))
            }
            JobKind::Call { .. } => error(
                ErrorKind::DriverUnavailable,
                format!("the Python driver exited ({how}); it was restarted and all state was lost"),
            ),
        };
        (self.job, response)
    }

    /// The driver was killed for missing the job's deadline.
    pub fn abandoned(self) -> (Job, Response) {
        let response = match self.job.kind {
            JobKind::Execute { timeout } => Response::Execution(lost_result(
                ExecutionStatus::Timeout,
                "TimeoutError",
                format!(
                    "the cell exceeded its {} ms timeout and did not stop when interrupted; \
                     the Python process was restarted and all state was lost",
                    timeout.as_millis()
                ),
                self.started,
            )),
            JobKind::Call { timeout, .. } => error(
                ErrorKind::DriverUnavailable,
                format!(
                    "the Python driver did not answer within {} s; it was restarted and all state was lost",
                    timeout.as_secs()
                ),
            ),
        };
        (self.job, response)
    }
}

fn execution(reply: DriverReply, interrupted: bool, lost: bool) -> ExecutionResult {
    let status = match (interrupted, reply.status.as_deref()) {
        (true, _) => ExecutionStatus::Timeout,
        (false, Some("ok")) => ExecutionStatus::Ok,
        (false, _) => ExecutionStatus::Error,
    };
    ExecutionResult {
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
    }
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
    sandpool_proto::decode(payload).map_err(|e| AgentError {
        kind: ErrorKind::Internal,
        message: format!("undecodable reply from the Python driver: {e}"),
    })
}

fn error(kind: ErrorKind, message: String) -> Response {
    Response::Error(AgentError { kind, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn job(kind: JobKind) -> (Job, mpsc::Receiver<Response>) {
        let (tx, rx) = mpsc::channel();
        let respond: Respond = Box::new(move |r| tx.send(r).unwrap());
        (Job::new(b"frame".to_vec(), kind, respond), rx)
    }

    /// A driver reply with the given fields (absent ones left out, as the driver does).
    #[derive(Default, serde::Serialize)]
    struct Reply<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stdout: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ok: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a str>,
    }

    fn reply(fields: Reply<'_>) -> Vec<u8> {
        rmp_serde::to_vec_named(&fields).unwrap()
    }

    #[test]
    fn a_cell_is_interrupted_once_then_abandoned() {
        let (j, _rx) = job(JobKind::Execute {
            timeout: Duration::from_secs(2),
        });
        let (mut current, frame) = Current::start(j, false);
        assert_eq!(frame.as_slice(), b"frame");
        let now = current.deadline;
        assert_eq!(current.expired(now), Outcome::Interrupt);
        assert_eq!(current.deadline, now + crate::driver::INTERRUPT_GRACE);
        assert_eq!(current.expired(current.deadline), Outcome::Abandon);
        let (j, response) = current.abandoned();
        assert!(matches!(&response, Response::Execution(r)
            if r.status == ExecutionStatus::Timeout && r.state_lost
                && r.error.as_ref().unwrap().evalue.contains("2000 ms")));
        assert!(j.is_execute());
    }

    #[test]
    fn a_reply_after_an_interrupt_is_a_timeout_that_kept_state() {
        let (j, _rx) = job(JobKind::Execute {
            timeout: Duration::from_secs(1),
        });
        let (mut current, _) = Current::start(j, false);
        current.expired(current.deadline);
        let (_, response) = current.finish(&reply(Reply {
            status: Some("error"),
            ..Reply::default()
        }));
        assert!(matches!(response, Response::Execution(r)
            if r.status == ExecutionStatus::Timeout && !r.state_lost));
    }

    #[test]
    fn a_cell_after_an_idle_death_reports_lost_state() {
        let (j, rx) = job(JobKind::Execute {
            timeout: Duration::from_secs(1),
        });
        let (current, _) = Current::start(j, true);
        let (j, response) = current.finish(&reply(Reply {
            status: Some("ok"),
            stdout: Some("1\n"),
            ..Reply::default()
        }));
        j.respond(response);
        assert!(matches!(rx.recv().unwrap(), Response::Execution(r)
            if r.status == ExecutionStatus::Ok && r.state_lost && r.stdout == "1\n"));
    }

    #[test]
    fn calls_are_abandoned_at_their_deadline_and_report_refusals() {
        let kind = JobKind::Call {
            timeout: Duration::from_secs(30),
            failure: ErrorKind::NotFound,
        };
        let (j, _rx) = job(kind);
        let (mut current, _) = Current::start(j, false);
        assert_eq!(current.expired(current.deadline), Outcome::Abandon);
        let (_, response) = current.abandoned();
        assert!(matches!(response, Response::Error(e)
            if e.kind == ErrorKind::DriverUnavailable && e.message.contains("30 s")));

        let (j, _rx) = job(kind);
        let (current, _) = Current::start(j, false);
        let refused = reply(Reply {
            ok: Some(false),
            message: Some("cannot import nope"),
            ..Reply::default()
        });
        let (_, response) = current.finish(&refused);
        assert!(matches!(response, Response::Error(e)
            if e.kind == ErrorKind::NotFound && e.message == "cannot import nope"));

        let (j, _rx) = job(kind);
        let (current, _) = Current::start(j, false);
        let (_, response) = current.finish(&reply(Reply {
            ok: Some(true),
            ..Reply::default()
        }));
        assert!(matches!(response, Response::Done));
    }

    #[test]
    fn deaths_say_how_and_hint_at_memory_for_sigkill() {
        let (j, _rx) = job(JobKind::Execute {
            timeout: Duration::from_secs(1),
        });
        let (current, _) = Current::start(j, false);
        let (_, response) = current.died("killed by SIGKILL");
        assert!(matches!(response, Response::Execution(r)
            if r.state_lost && r.error.as_ref().unwrap().evalue.contains("possibly for running out of memory")));
    }

    #[test]
    fn an_undecodable_reply_is_an_internal_error() {
        let (j, _rx) = job(JobKind::Execute {
            timeout: Duration::from_secs(1),
        });
        let (current, _) = Current::start(j, false);
        let (_, response) = current.finish(b"\xc1");
        assert!(matches!(response, Response::Error(e) if e.kind == ErrorKind::Internal));
    }
}
