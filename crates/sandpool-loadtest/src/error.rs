//! The benchmark's one error type.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bad arguments: {0}")]
    Args(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sandpool serve did not become ready within {waited:?}; log tail:\n{log_tail}")]
    ServerNotReady { waited: Duration, log_tail: String },
    #[error("sandpool serve exited early ({status}); log tail:\n{log_tail}")]
    ServerExited { status: String, log_tail: String },
    #[error("HTTP {method} {path}: {source}")]
    Http {
        method: &'static str,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("HTTP {method} {path}: status {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("unexpected execution result for {identifier}: {detail}")]
    BadResult { identifier: String, detail: String },
    #[error("pool {pool}: {ready} of {want} sandboxes ready after {waited:?}")]
    NotRefilled {
        pool: String,
        ready: i64,
        want: i64,
        waited: Duration,
    },
    #[error("direct agent round trip: {0}")]
    Direct(String),
}

impl BenchError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}
