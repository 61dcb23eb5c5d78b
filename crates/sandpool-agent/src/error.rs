//! Errors that stop the agent as a whole (per-request failures are answered, not raised).

/// Why the agent could not start or had to stop serving its channel.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid agent configuration: {0}")]
    Config(String),
    #[error("cannot set up the agent channel: {0}")]
    Channel(#[source] std::io::Error),
    #[error("cannot start the Python driver's supervisor: {0}")]
    Supervisor(#[source] std::io::Error),
    #[error("agent channel failed: {0}")]
    Frame(#[from] sandpool_proto::FrameError),
}
