//! What the bench binaries share: their logging set-up and one Python cell that must
//! succeed, with the bound a benchmark gives it.

use sandpool_proto::{ExecutionStatus, Request, Response};
use sandpool_sandbox::AgentClient;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Logs to stderr, `warn` unless `RUST_LOG` says otherwise.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `code` (60 s cell timeout, 90 s overall) and fails unless it succeeded.
pub async fn execute(agent: &AgentClient, code: &str) -> Result<(), BoxError> {
    let request = Request::Execute {
        code: code.into(),
        timeout_ms: 60_000,
    };
    match tokio::time::timeout(Duration::from_secs(90), agent.call(request)).await?? {
        Response::Execution(r) if r.status == ExecutionStatus::Ok => Ok(()),
        other => Err(format!("{code:?} failed: {other:?}").into()),
    }
}
