//! The request loop: reads frames from the host, runs each request on a pool thread and
//! writes exactly one response per request under a single writer lock; stream
//! notifications are applied inline and answered by nothing.

use crate::config::{Config, Kind};
use crate::driver::DriverCommand;
use crate::files::DataDir;
use crate::outbox::Outbox;
use crate::processes::Processes;
use crate::streams::Streams;
use crate::supervisor::Supervisor;
use crate::workers::Workers;
use crate::workload::Workload;
use crate::{shell, stats, AgentError};
use sandpool_proto::{
    decode, read_frame, DriverState, Envelope, ErrorKind, FrameError, Health, Request, Response,
    PROTOCOL_VERSION,
};
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shared by every request thread.
struct Agent {
    data_dir: DataDir,
    config: Config,
    processes: Arc<Processes>,
    supervisor: Option<Supervisor>,
    workload: Option<Arc<Workload>>,
    streams: Arc<Streams>,
    workers: Workers,
    started: Instant,
}

/// Serves requests from `input`, answering on `output`, until `input` ends; then kills the
/// driver and every process the agent started.
pub fn serve(
    input: impl Read,
    output: impl Write + Send + 'static,
    config: Config,
) -> Result<(), AgentError> {
    let processes = Arc::new(Processes::default());
    processes.start_reaper();
    let supervisor = (config.kind == Kind::Python)
        .then(|| {
            Supervisor::start(
                DriverCommand {
                    python: config.python.clone(),
                    driver: config.driver.clone(),
                    data_dir: config.data_dir.clone(),
                },
                Arc::clone(&processes),
            )
        })
        .transpose()
        .map_err(AgentError::Supervisor)?;
    let writer = Arc::new(Outbox::new(output));
    let workload = config
        .workload
        .as_ref()
        .map(|w| Workload::start(w, Arc::clone(&processes), Arc::clone(&writer)));
    let workers = Workers::default();
    let agent = Arc::new(Agent {
        data_dir: DataDir::new(config.data_dir.clone()),
        config,
        processes,
        supervisor,
        workload,
        streams: Streams::new(Arc::clone(&writer), workers.clone()),
        workers,
        started: Instant::now(),
    });
    let mut input = BufReader::with_capacity(1 << 16, input);
    let outcome = loop {
        let payload = match read_frame(&mut input) {
            Ok(Some(payload)) => payload,
            Ok(None) => break Ok(()),
            Err(FrameError::TooLarge(len)) => {
                tracing::warn!(bytes = len, "oversized request frame skipped");
                let skipped = std::io::copy(&mut (&mut input).take(len as u64), &mut std::io::sink());
                if !matches!(skipped, Ok(n) if n == len as u64) {
                    break Ok(());
                }
                continue;
            }
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::warn!("channel closed in the middle of a frame");
                break Ok(());
            }
            Err(e) => break Err(AgentError::Frame(e)),
        };
        match decode::<Envelope<Request>>(&payload) {
            Ok(Envelope { id, body }) => dispatch(&agent, &writer, id, body),
            Err(e) => match decode::<Envelope<serde::de::IgnoredAny>>(&payload) {
                Ok(Envelope { id, .. }) => writer.respond(
                    id,
                    error(ErrorKind::BadRequest, format!("malformed request: {e}")),
                ),
                Err(_) => tracing::warn!(error = %e, "undecodable frame without an id ignored"),
            },
        }
    };
    agent.streams.close_all();
    if let Some(supervisor) = &agent.supervisor {
        supervisor.stop();
    }
    agent.processes.kill_all();
    outcome
}

/// Applies stream notifications and answers cheap requests inline, hands requests for the
/// Python driver to its supervisor (which answers them from its own thread), and runs
/// everything else on a request thread.
fn dispatch(agent: &Arc<Agent>, writer: &Arc<Outbox>, id: u64, request: Request) {
    let respond = {
        let writer = Arc::clone(writer);
        move |response| writer.respond(id, response)
    };
    match request {
        Request::Execute { code, timeout_ms } => match (python(agent), positive(timeout_ms)) {
            (Ok(s), Ok(timeout)) => s.execute(&code, timeout, respond),
            (Err(e), _) | (_, Err(e)) => respond(Response::Error(e)),
        },
        Request::Reseed { seed } => match &agent.supervisor {
            None => respond(Response::Done),
            Some(s) => s.reseed(&seed, respond),
        },
        Request::Warm { modules } => match (&agent.supervisor, modules.is_empty()) {
            (_, true) => respond(Response::Done),
            (None, false) => respond(error(
                ErrorKind::Unsupported,
                "this sandbox has no Python driver".into(),
            )),
            (Some(s), false) => s.warm(&modules, respond),
        },
        Request::StreamData { stream, data } => agent.streams.data(stream, data),
        Request::StreamCredit { stream, bytes } => agent.streams.credit(stream, bytes),
        Request::StreamShutdown { stream } => agent.streams.shutdown(stream),
        Request::StreamClose { stream } => agent.streams.close(stream),
        Request::Hello { .. } | Request::Health => writer.respond(id, handle(agent, id, request)),
        _ => {
            if matches!(request, Request::Connect { .. }) {
                agent.streams.begin_connect(id);
            }
            let (agent_ref, writer) = (Arc::clone(agent), Arc::clone(writer));
            agent
                .workers
                .submit(move || writer.respond(id, handle(&agent_ref, id, request)));
        }
    }
}

fn handle(agent: &Agent, id: u64, request: Request) -> Response {
    match request {
        Request::Hello { version } => {
            if version != PROTOCOL_VERSION {
                tracing::warn!(
                    host = version,
                    agent = PROTOCOL_VERSION,
                    "protocol version mismatch"
                );
            }
            Response::Hello {
                version: PROTOCOL_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").into(),
            }
        }
        Request::Health => Response::Health(Health {
            driver: agent
                .supervisor
                .as_ref()
                .map_or(DriverState::Absent, Supervisor::health),
            uptime_ms: agent.started.elapsed().as_millis() as u64,
            workload: agent.workload.as_ref().map(|w| w.state()),
        }),
        Request::Stats => Response::Stats(stats::collect(&agent.config.data_dir)),
        Request::Execute { .. } | Request::Reseed { .. } | Request::Warm { .. } => {
            unreachable!("driver requests are handed to the supervisor in dispatch")
        }
        Request::Shell { command, timeout_ms } => positive(timeout_ms)
            .and_then(|t| {
                let program = shell_program(agent.config.kind)?;
                shell::run(&agent.processes, program, &agent.config.data_dir, &command, t)
            })
            .unwrap_or_else(Response::Error),
        Request::Connect { port } => agent.streams.connect(id, port),
        Request::StreamData { .. }
        | Request::StreamCredit { .. }
        | Request::StreamShutdown { .. }
        | Request::StreamClose { .. } => unreachable!("stream notifications are applied in dispatch"),
        Request::WriteFile { path, data, append } => agent
            .data_dir
            .write(&path, &data, append)
            .unwrap_or_else(Response::Error),
        Request::ReadFile { path, offset, len } => agent
            .data_dir
            .read(&path, offset, len)
            .unwrap_or_else(Response::Error),
        Request::ListFiles { path, recursive } => agent
            .data_dir
            .list(&path, recursive)
            .unwrap_or_else(Response::Error),
        Request::StatFile { path } => agent.data_dir.stat(&path).unwrap_or_else(Response::Error),
        Request::DeleteFile { path } => agent.data_dir.delete(&path).unwrap_or_else(Response::Error),
    }
}

/// `/bin/bash`; a custom image without bash falls back to `/bin/sh`, and one without
/// either cannot run shell commands.
fn shell_program(kind: Kind) -> Result<&'static Path, sandpool_proto::AgentError> {
    let bash = Path::new("/bin/bash");
    if kind != Kind::Custom || bash.exists() {
        return Ok(bash);
    }
    let sh = Path::new("/bin/sh");
    if sh.exists() {
        return Ok(sh);
    }
    Err(sandpool_proto::AgentError {
        kind: ErrorKind::Unsupported,
        message: "this image has no /bin/sh".into(),
    })
}

fn python(agent: &Agent) -> Result<&Supervisor, sandpool_proto::AgentError> {
    agent
        .supervisor
        .as_ref()
        .ok_or_else(|| sandpool_proto::AgentError {
            kind: ErrorKind::Unsupported,
            message: "this sandbox has no Python driver".into(),
        })
}

fn positive(timeout_ms: u64) -> Result<Duration, sandpool_proto::AgentError> {
    if timeout_ms == 0 {
        return Err(sandpool_proto::AgentError {
            kind: ErrorKind::BadRequest,
            message: "timeout_ms must be positive".into(),
        });
    }
    Ok(Duration::from_millis(timeout_ms))
}

fn error(kind: ErrorKind, message: String) -> Response {
    Response::Error(sandpool_proto::AgentError { kind, message })
}
