//! Keeps one Python driver running and feeds it requests one at a time: enforces deadlines
//! (SIGINT, then SIGKILL and a restart) and restarts the driver when it dies.
//!
//! Latency shapes this module. Inside gVisor every hand-off between threads costs on the
//! order of 0.1 ms, so a request reaching an idle driver is written to it by the thread
//! that read it from the host ([`Supervisor::submit`]), and the reply is answered by the
//! one thread that reads the driver's pipe. That thread also owns the driver's lifecycle;
//! it sleeps on the pipe, on a timer armed with the current deadline (arming it wakes
//! nobody) and on a doorbell rung for work that could not start at once.

use crate::driver::{DriverCommand, DriverProcess, DriverRequest, INTERRUPT_GRACE};
use crate::jobs::{Current, Job, JobKind, Outcome};
use crate::processes::Processes;
use crate::wakeups::{self, DeadlineTimer, Doorbell};
use sandpool_proto::{AgentError, DriverState, ErrorKind, Response};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest the driver may take to start (import IPython) before it is declared unavailable.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const RESEED_TIMEOUT: Duration = Duration::from_secs(30);
const WARM_TIMEOUT: Duration = Duration::from_secs(600);
/// Requests up to this size are written by the submitting thread: an idle driver's request
/// pipe is empty and every pipe holds at least one page (Linux shrinks new pipes to one
/// page when a user has too many), so the write cannot block that thread even if the
/// driver has just died and a process it forked holds the pipe open.
const DIRECT_WRITE_MAX: usize = 4 << 10;

/// Owner of the (at most one) Python driver of this sandbox.
pub struct Supervisor {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Shared {
    command: DriverCommand,
    processes: Arc<Processes>,
    state: Mutex<State>,
    timer: DeadlineTimer,
    doorbell: Doorbell,
}

#[derive(Default)]
struct State {
    driver: Option<DriverProcess>,
    /// Bumped on every spawn, so a reader of an earlier driver can tell it is stale.
    generation: u64,
    phase: Phase,
    queue: VecDeque<Job>,
    /// A started driver died between requests: the next execution reports lost state.
    lost: bool,
    /// Start a driver even with nothing queued (at start-up and after a restart).
    respawn: bool,
    stopping: bool,
}

#[derive(Default)]
enum Phase {
    /// No driver process.
    #[default]
    Down,
    Starting {
        deadline: Instant,
    },
    Idle,
    Busy(Current),
}

/// A frame to write to the driver outside the state lock.
type Outgoing = (Arc<File>, Arc<Vec<u8>>);
/// Responses to send once the state lock is released.
type Replies = Vec<(Job, Response)>;

impl Supervisor {
    /// Starts the supervisor thread, which starts the driver right away so it is warm
    /// before the first request.
    pub fn start(command: DriverCommand, processes: Arc<Processes>) -> std::io::Result<Supervisor> {
        let shared = Arc::new(Shared {
            command,
            processes,
            state: Mutex::new(State {
                respawn: true,
                ..State::default()
            }),
            timer: DeadlineTimer::new()?,
            doorbell: Doorbell::new()?,
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("driver".into())
            .spawn(move || for_thread.run())?;
        Ok(Supervisor {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The driver's state as seen without waiting for a running cell.
    pub fn health(&self) -> DriverState {
        match self.shared.lock().phase {
            Phase::Down => DriverState::Dead,
            Phase::Starting { .. } => DriverState::Starting,
            Phase::Idle | Phase::Busy(_) => DriverState::Ready,
        }
    }

    /// Queues a cell; `respond` gets its result (or error) exactly once.
    pub fn execute(&self, code: &str, timeout: Duration, respond: impl FnOnce(Response) + Send + 'static) {
        self.submit(
            DriverRequest::Execute { code },
            JobKind::Execute { timeout },
            respond,
        );
    }

    /// Queues a reseed of the driver's pseudo-random generators.
    pub fn reseed(&self, seed: &[u8], respond: impl FnOnce(Response) + Send + 'static) {
        self.submit(
            DriverRequest::Reseed { seed },
            JobKind::Call {
                timeout: RESEED_TIMEOUT,
                failure: ErrorKind::Internal,
            },
            respond,
        );
    }

    /// Queues importing `modules` in the driver (and setting up matplotlib's inline backend).
    pub fn warm(&self, modules: &[String], respond: impl FnOnce(Response) + Send + 'static) {
        self.submit(
            DriverRequest::Warm { modules },
            JobKind::Call {
                timeout: WARM_TIMEOUT,
                failure: ErrorKind::NotFound,
            },
            respond,
        );
    }

    fn submit(
        &self,
        request: DriverRequest<'_>,
        kind: JobKind,
        respond: impl FnOnce(Response) + Send + 'static,
    ) {
        let frame = match sandpool_proto::encode_frame(&request) {
            Ok(frame) => frame,
            Err(e) => {
                return respond(Response::Error(AgentError {
                    kind: ErrorKind::BadRequest,
                    message: format!("request too large for the Python driver: {e}"),
                }))
            }
        };
        let job = Job::new(frame, kind, Box::new(respond));
        let shared = &self.shared;
        let mut state = shared.lock();
        let direct = job.frame.len() <= DIRECT_WRITE_MAX && state.queue.is_empty();
        state.queue.push_back(job);
        if direct {
            if let Some(send) = shared.start_next(&mut state, false) {
                drop(state);
                write_frame(send);
                return;
            }
        }
        drop(state);
        shared.doorbell.ring();
    }

    /// Stops the supervisor thread and kills the driver.
    pub fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.doorbell.ring();
        let thread = self
            .thread
            .lock()
            .expect("supervisor thread handle poisoned")
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("supervisor state poisoned")
    }

    /// The supervisor thread: the only reader of the driver's replies.
    fn run(&self) {
        let mut reader: Option<(u64, BufReader<File>)> = None;
        loop {
            let (send, replies) = {
                let mut state = self.lock();
                if state.stopping {
                    if let Some(driver) = state.driver.take() {
                        driver.kill();
                    }
                    let replies = fail_all(&mut state, "the agent is shutting down".into());
                    drop(state);
                    respond_all(replies);
                    return;
                }
                let mut replies = Vec::new();
                let send = loop {
                    if state.driver.is_none() && (state.respawn || !state.queue.is_empty()) {
                        replies.extend(self.spawn(&mut state, &mut reader));
                    }
                    if reader.as_ref().is_some_and(|(g, _)| *g != state.generation) {
                        reader = None;
                    }
                    let send = self.start_next(&mut state, true);
                    // Starting found the driver dead: start another one at once.
                    if send.is_some() || state.driver.is_some() || !state.respawn {
                        break send;
                    }
                };
                (send, replies)
            };
            respond_all(replies);
            if let Some(send) = send {
                write_frame(send);
            }
            // A reply already buffered needs no wait.
            let buffered = reader.as_ref().is_some_and(|(_, r)| !r.buffer().is_empty());
            let ready = if buffered {
                wakeups::Ready {
                    driver: true,
                    ..Default::default()
                }
            } else {
                match wakeups::wait(
                    reader.as_ref().map(|(_, r)| r.get_ref().as_raw_fd()),
                    &self.timer,
                    &self.doorbell,
                ) {
                    Ok(ready) => ready,
                    Err(e) => {
                        tracing::error!(error = %e, "the driver supervisor cannot wait; stopping it");
                        return;
                    }
                }
            };
            if ready.doorbell {
                self.doorbell.clear();
            }
            if ready.timer {
                self.timer.clear();
                let replies = self.on_timer();
                respond_all(replies);
            }
            if ready.driver {
                if let Some((generation, r)) = reader.as_mut() {
                    let frame = read_reply(r);
                    let generation = *generation;
                    if frame.is_none() {
                        reader = None;
                    }
                    let replies = self.on_frame(generation, frame);
                    respond_all(replies);
                }
            }
        }
    }

    /// Spawns a driver into `state`; on failure every queued job is answered.
    fn spawn(&self, state: &mut State, reader: &mut Option<(u64, BufReader<File>)>) -> Replies {
        state.respawn = false;
        match DriverProcess::spawn(&self.command, &self.processes) {
            Ok((driver, from_driver)) => {
                state.generation += 1;
                state.driver = Some(driver);
                state.phase = Phase::Starting {
                    deadline: Instant::now() + STARTUP_TIMEOUT,
                };
                self.timer.arm(STARTUP_TIMEOUT);
                *reader = Some((state.generation, BufReader::with_capacity(1 << 16, from_driver)));
                Vec::new()
            }
            Err(e) => {
                tracing::error!(error = %e, python = %self.command.python.display(), "cannot start the Python driver");
                state.phase = Phase::Down;
                fail_all(state, "the Python driver cannot be started".into())
            }
        }
    }

    /// Sends the next queued job to an idle driver: returns the frame to write. With
    /// `check_exit` a driver that has exited is not written to (a process it forked may
    /// still hold its pipes open). The request thread skips that system call: a request
    /// it wrote to a dead driver is found unread when the pipe closes and runs on the next
    /// driver ([`Shared::on_exit`]), or, while a forked process keeps the pipe open, ends
    /// at its deadline.
    fn start_next(&self, state: &mut State, check_exit: bool) -> Option<Outgoing> {
        if !matches!(state.phase, Phase::Idle) || state.queue.is_empty() {
            return None;
        }
        let driver = state.driver.as_mut()?;
        if check_exit && driver.has_exited() {
            // Died between requests: handled as if its pipe had closed (restarted, the job
            // kept for the next driver); an idle driver's death answers nobody.
            let replies = self.on_exit(state);
            debug_assert!(replies.is_empty());
            return None;
        }
        let requests = driver.requests();
        let job = state.queue.pop_front()?;
        let lost_before = std::mem::take(&mut state.lost) && job.is_execute();
        let (current, frame) = Current::start(job, lost_before);
        self.timer
            .arm(current.deadline.saturating_duration_since(Instant::now()));
        state.phase = Phase::Busy(current);
        Some((requests, frame))
    }

    /// A frame from the driver of `generation`, or `None` when its pipe ended.
    fn on_frame(&self, generation: u64, frame: Option<Vec<u8>>) -> Replies {
        let mut state = self.lock();
        if generation != state.generation {
            return Vec::new();
        }
        let Some(payload) = frame else {
            return self.on_exit(&mut state);
        };
        match std::mem::take(&mut state.phase) {
            // The timer stays armed: an expiry while idle is ignored, and disarming would
            // put one more system call before the reply.
            Phase::Starting { .. } => {
                state.phase = Phase::Idle;
                Vec::new()
            }
            Phase::Busy(current) => {
                state.phase = Phase::Idle;
                let (job, response) = current.finish(&payload);
                vec![(job, response)]
            }
            phase => {
                tracing::warn!("unrequested frame from the Python driver ignored");
                state.phase = phase;
                Vec::new()
            }
        }
    }

    /// The driver's pipe ended: it died (or closed its channel, and is killed).
    fn on_exit(&self, state: &mut State) -> Replies {
        let unread = state
            .driver
            .as_ref()
            .map_or(0, DriverProcess::unread_request_bytes);
        let how = state
            .driver
            .take()
            .map_or_else(|| "unknown".into(), DriverProcess::kill);
        match std::mem::take(&mut state.phase) {
            Phase::Down => Vec::new(),
            Phase::Starting { .. } => {
                self.timer.disarm();
                fail_all(
                    state,
                    format!("the Python driver exited during startup ({how}); see the sandbox's stderr"),
                )
            }
            Phase::Idle => {
                tracing::warn!(ended = %how, "Python driver had exited; restarting it");
                state.lost = true;
                state.respawn = true;
                Vec::new()
            }
            // Written to a driver that had already died between requests (the request
            // thread does not check first): the request never ran, so the next driver runs it.
            Phase::Busy(current) if unread > 0 => {
                tracing::warn!(ended = %how, "Python driver had exited; restarting it for the waiting request");
                state.lost = true;
                state.respawn = true;
                state.queue.push_front(current.unread());
                Vec::new()
            }
            Phase::Busy(current) => {
                self.timer.disarm();
                tracing::warn!(ended = %how, "Python driver died during a request; restarted");
                state.respawn = true;
                vec![current.died(&how)]
            }
        }
    }

    /// The deadline timer fired: interrupt, kill or give up on starting, as due.
    fn on_timer(&self) -> Replies {
        let mut state = self.lock();
        let now = Instant::now();
        match std::mem::take(&mut state.phase) {
            Phase::Starting { deadline } if now >= deadline => {
                if let Some(driver) = state.driver.take() {
                    driver.kill();
                }
                fail_all(
                    &mut state,
                    format!(
                        "the Python driver did not start within {} s; see the sandbox's stderr",
                        STARTUP_TIMEOUT.as_secs()
                    ),
                )
            }
            Phase::Busy(mut current) if now >= current.deadline => match current.expired(now) {
                Outcome::Interrupt => {
                    if let Some(driver) = &state.driver {
                        driver.signal(libc::SIGINT);
                    }
                    self.timer.arm(INTERRUPT_GRACE);
                    state.phase = Phase::Busy(current);
                    Vec::new()
                }
                Outcome::Abandon => {
                    let how = state
                        .driver
                        .take()
                        .map_or_else(|| "unknown".into(), DriverProcess::kill);
                    tracing::warn!(ended = %how, "the Python driver ignored its deadline; restarted");
                    state.respawn = true;
                    vec![current.abandoned()]
                }
            },
            phase => {
                // An expiry that raced with the reply: re-arm for whatever is current.
                match &phase {
                    Phase::Starting { deadline } => self.timer.arm(deadline.saturating_duration_since(now)),
                    Phase::Busy(current) => self.timer.arm(current.deadline.saturating_duration_since(now)),
                    Phase::Down | Phase::Idle => {}
                }
                state.phase = phase;
                Vec::new()
            }
        }
    }
}

/// Answers every queued job with `DriverUnavailable`.
fn fail_all(state: &mut State, message: String) -> Replies {
    state
        .queue
        .drain(..)
        .map(|job| {
            let error = Response::Error(AgentError {
                kind: ErrorKind::DriverUnavailable,
                message: message.clone(),
            });
            (job, error)
        })
        .collect()
}

fn respond_all(replies: Replies) {
    for (job, response) in replies {
        job.respond(response);
    }
}

/// Writes a request frame; a failure means the driver died, which its reader reports.
fn write_frame((pipe, frame): Outgoing) {
    let _ = (&*pipe).write_all(&frame);
}

/// The next frame from the driver, or `None` at end of file or on a broken frame.
fn read_reply(reader: &mut BufReader<File>) -> Option<Vec<u8>> {
    match sandpool_proto::read_frame(reader) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(error = %e, "bad frame from the Python driver");
            None
        }
    }
}
