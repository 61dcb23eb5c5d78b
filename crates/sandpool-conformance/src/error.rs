//! Why preparing the conformance environment (images, agent bundle, backend) failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The agent executable has not been built.
    #[error(
        "agent executable not found (looked at {looked_at:?}); build it with \
         `cargo build -p sandpool-agent` (or `--release` for the benchmark), or set SANDPOOL_AGENT_EXE"
    )]
    AgentMissing { looked_at: Vec<PathBuf> },
    /// The host Python with IPython used for host-side baselines is missing.
    #[error("host test Python not found at {0}; run scripts/python-test-env.sh or set SANDPOOL_TEST_PYTHON")]
    PythonMissing(PathBuf),
    #[error("cannot build image {name}: {message}")]
    Image { name: String, message: String },
    #[error("cannot create the {backend} backend: {message}")]
    Backend { backend: String, message: String },
    #[error("unknown backend {0:?} (expected gvisor or runc)")]
    UnknownBackend(String),
    #[error("sandbox: {0}")]
    Sandbox(#[from] sandpool_sandbox::SandboxError),
    #[error("setup IO: {0}")]
    Io(#[from] std::io::Error),
}
