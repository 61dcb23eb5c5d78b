//! Phase 1: a new identifier's first `print(1)` on a warm pool, one session at a time,
//! waiting for the ready set to refill (and settle) before every sample.

use super::{identifier, wait_ready};
use crate::client::Client;
use crate::error::BenchError;
use crate::events::Events;
use sandpool_conformance::bench::stats::Samples;
use std::time::Duration;

/// Lets the previous session's destroy and the refill's restore finish their CPU work.
const SETTLE: Duration = Duration::from_millis(300);
const REFILL_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn run(
    client: &Client,
    events: &Events,
    pool: &str,
    ready: i64,
    n: usize,
) -> Result<Samples, BenchError> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        wait_ready(events, pool, ready, REFILL_TIMEOUT).await?;
        tokio::time::sleep(SETTLE).await;
        let id = identifier("new", i);
        let executed = client.print_one(pool, &id).await?;
        samples.push(executed.latency);
        client.delete_session(pool, &id).await?;
        eprint!("\rnew identifier {}/{n}", i + 1);
    }
    eprintln!();
    Ok(Samples::new(samples))
}
