//! Errors of bundle writing, cgroup handling and runtime invocations.

use sandpool_sandbox::SandboxError;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The runtime CLI failed; `message` carries the tail of its stderr.
    #[error("{runtime} failed to {action}: {message}")]
    Runtime {
        runtime: &'static str,
        action: String,
        message: String,
    },
    #[error("{runtime} did not {action} within {timeout:?}")]
    Timeout {
        runtime: &'static str,
        action: String,
        timeout: std::time::Duration,
    },
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// This host's cgroup layout is not one sandpool can manage.
    #[error("unsupported cgroup setup: {0}")]
    CgroupSetup(String),
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    #[error("OCI bundle IO: {0}")]
    Io(#[from] std::io::Error),
    #[error("OCI config: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<OciError> for SandboxError {
    fn from(e: OciError) -> Self {
        match e {
            OciError::Runtime {
                runtime,
                action,
                message,
            } => SandboxError::Runtime {
                runtime,
                action,
                message,
            },
            OciError::Timeout {
                runtime,
                action,
                timeout,
            } => SandboxError::Runtime {
                runtime,
                action,
                message: format!("timed out after {timeout:?}"),
            },
            OciError::InvalidSpec(m) => SandboxError::InvalidSpec(m),
            OciError::Io(io) => SandboxError::Io(io),
            other => SandboxError::Io(std::io::Error::other(other.to_string())),
        }
    }
}
