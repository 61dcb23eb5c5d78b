//! Errors of sandbox creation, control and the agent channel.

use sandpool_proto::{AgentError, FrameError};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The runtime (runsc, runc) refused or failed; `message` carries its stderr tail.
    #[error("{runtime} failed to {action}: {message}")]
    Runtime {
        runtime: &'static str,
        action: String,
        message: String,
    },
    /// The agent channel closed: the sandbox exited or was killed.
    #[error("the sandbox is gone (agent channel closed)")]
    AgentGone,
    /// The agent answered with an error.
    #[error("agent: {0}")]
    Agent(AgentError),
    /// The agent sent something that is not a valid frame or not the expected answer.
    #[error("agent protocol: {0}")]
    Protocol(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(std::time::Duration, &'static str),
    /// This backend cannot do what was asked (e.g. checkpoint under runc).
    #[error("not supported by the {backend} backend: {what}")]
    Unsupported {
        backend: &'static str,
        what: &'static str,
    },
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    #[error("sandbox IO: {0}")]
    Io(#[from] std::io::Error),
}

impl From<FrameError> for SandboxError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => SandboxError::AgentGone,
            other => SandboxError::Protocol(other.to_string()),
        }
    }
}
