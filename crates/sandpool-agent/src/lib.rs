//! The agent that runs inside every sandbox: Python driver host, shell, confined file operations.
//!
//! The host talks to the agent over the sandbox's stdio with `sandpool-proto` frames. On start
//! [`run`] moves that channel to private close-on-exec descriptors (fd 0 becomes `/dev/null`,
//! fd 1 becomes stderr) so nothing the agent starts can read or write it. Each request is
//! answered by exactly one response with the same id; requests run concurrently, except that
//! Python executions are serialized per driver.
//!
//! In a custom sandbox (`SANDPOOL_KIND=custom`) the agent also starts the workload given
//! after `--` on its command line (in `SANDPOOL_WORKLOAD_CWD`, with the agent's environment
//! minus `SANDPOOL_*`), reports its exit, and carries TCP streams to `127.0.0.1:<port>`
//! for the host (see `sandpool-proto`'s stream notes).

mod bundle;
mod channel;
mod config;
mod driver;
mod error;
mod files;
mod jobs;
mod outbox;
mod output;
mod paths;
mod processes;
mod server;
mod shell;
mod stats;
mod streams;
mod supervisor;
mod wakeups;
mod workers;
mod workload;

pub use bundle::{install_bundle, AGENT_EXE_NAME, DRIVER_FILE_NAME, DRIVER_SOURCE};
pub use config::{Config, Kind, WorkloadCommand};
pub use error::AgentError;
pub use server::serve;

/// Runs the agent on the process's stdio until the host closes the channel.
pub fn run() -> Result<(), AgentError> {
    init_logging();
    let config = Config::from_env_and_args(std::env::args_os().skip(1))?;
    let (input, output) = channel::take_stdio()?;
    serve(input, output, config)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDPOOL_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
