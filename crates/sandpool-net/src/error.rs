//! The crate's error type.

use sandpool_sandbox::SandboxError;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A bad egress configuration (CIDR, domain, limit); the message names it.
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),
    /// A host command (`ip`, `nft`) failed.
    #[error("{program} {action} failed: {message}")]
    Command {
        program: &'static str,
        action: String,
        message: String,
    },
    #[error("{0} timed out")]
    Timeout(String),
    #[error("session addresses exhausted ({0} sessions)")]
    Exhausted(usize),
    #[error("no network for sandbox {0}")]
    UnknownSession(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<NetError> for SandboxError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::InvalidConfig(m) => SandboxError::InvalidSpec(m),
            other => SandboxError::Runtime {
                runtime: "network",
                action: "set up the session network".to_string(),
                message: other.to_string(),
            },
        }
    }
}
