//! The agent that runs inside every sandbox: Python driver host, shell, confined file operations.
//!
//! The host talks to the agent over the sandbox's stdio with `sandpool-proto` frames. On start
//! [`run`] moves that channel to private close-on-exec descriptors (fd 0 becomes `/dev/null`,
//! fd 1 becomes stderr) so nothing the agent starts can read or write it. Each request is
//! answered by exactly one response with the same id; requests run concurrently, except that
//! Python executions are serialized per driver.

mod bundle;
mod channel;
mod config;
mod driver;
mod error;
mod files;
mod output;
mod paths;
mod processes;
mod server;
mod shell;
mod stats;
mod supervisor;
mod workers;

pub use bundle::{install_bundle, AGENT_EXE_NAME, DRIVER_FILE_NAME, DRIVER_SOURCE};
pub use config::{Config, Kind};
pub use error::AgentError;
pub use server::serve;

/// Runs the agent on the process's stdio until the host closes the channel.
pub fn run() -> Result<(), AgentError> {
    init_logging();
    let config = Config::from_env()?;
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
