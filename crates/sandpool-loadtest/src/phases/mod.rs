//! The measured phases, each a function of a running server.

pub mod concurrent;
pub mod new_session;
pub mod refill;
pub mod repeated;

use crate::error::BenchError;
use crate::events::Events;
use std::time::{Duration, Instant};

/// How often the bench looks at the event counters.
const POLL: Duration = Duration::from_millis(5);

/// Waits until `pool` has at least `want` ready sandboxes; returns how long it took.
pub async fn wait_ready(
    events: &Events,
    pool: &str,
    want: i64,
    timeout: Duration,
) -> Result<Duration, BenchError> {
    let began = Instant::now();
    loop {
        let ready = events.pool(pool).ready();
        if ready >= want {
            return Ok(began.elapsed());
        }
        if began.elapsed() > timeout {
            return Err(BenchError::NotRefilled {
                pool: pool.into(),
                ready,
                want,
                waited: began.elapsed(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Identifiers unique to this bench process.
pub fn identifier(tag: &str, n: usize) -> String {
    format!("bench-{tag}-{}-{n}", std::process::id())
}
