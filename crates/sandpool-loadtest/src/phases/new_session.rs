//! Phase 1: a new identifier's first `print(1)` on a warm pool, one session at a time,
//! waiting for the ready set to refill (and settle) before every sample. A second
//! `print(1)` right after the first tells allocation cost apart from the refill's
//! restore competing for the CPU (it starts the moment the session is allocated).

use super::{identifier, wait_ready};
use crate::client::Client;
use crate::error::BenchError;
use crate::events::Events;
use sandpool_conformance::bench::stats::Samples;
use std::time::Duration;

/// Lets the previous session's destroy and the refill's restore finish their CPU work.
const SETTLE: Duration = Duration::from_millis(300);
const REFILL_TIMEOUT: Duration = Duration::from_secs(300);

pub struct NewSession {
    /// New identifier → first `print(1)` answered.
    pub first: Samples,
    /// The same session's next `print(1)`, sent at once (the refill is still running).
    pub second: Samples,
}

pub async fn run(
    client: &Client,
    events: &Events,
    pool: &str,
    ready: i64,
    n: usize,
) -> Result<NewSession, BenchError> {
    let mut samples = Vec::with_capacity(n);
    let mut second = Vec::with_capacity(n);
    for i in 0..n {
        wait_ready(events, pool, ready, REFILL_TIMEOUT).await?;
        tokio::time::sleep(SETTLE).await;
        let id = identifier("new", i);
        let executed = client.print_one(pool, &id).await?;
        samples.push(executed.latency);
        second.push(client.print_one(pool, &id).await?.latency);
        client.delete_session(pool, &id).await?;
        eprint!("\rnew identifier {}/{n}", i + 1);
    }
    eprintln!();
    Ok(NewSession {
        first: Samples::new(samples),
        second: Samples::new(second),
    })
}
