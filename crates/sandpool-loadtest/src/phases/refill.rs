//! Phase 5: how long the pool takes to refill its ready set. Two ways in: deleting
//! every session of the concurrent phase at once, and taking the whole ready set with
//! `ready` new identifiers at once; then a probe identifier checks that allocation is
//! warm again.

use super::{identifier, wait_ready};
use crate::client::Client;
use crate::error::BenchError;
use crate::events::Events;
use std::time::{Duration, Instant};

const REFILL_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Refill {
    /// Ready sandboxes when the trigger fired.
    pub ready_before: i64,
    /// Trigger (all DELETEs answered / all allocations answered), from its start.
    pub trigger: Duration,
    /// From the trigger's start until the ready set was full again.
    pub refilled: Duration,
    /// Sandboxes started meanwhile, and how many of them were restored.
    pub started: i64,
    pub restored: i64,
    /// A new identifier's first `print(1)` right after the refill.
    pub probe: Duration,
}

/// Deletes `identifiers` concurrently and times the refill to `ready`.
pub async fn after_delete(
    base: &str,
    events: &Events,
    pool: &str,
    identifiers: &[String],
    ready: i64,
) -> Result<Refill, BenchError> {
    let before = events.pool(pool);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for id in identifiers {
        let (client, pool, id) = (Client::new(base)?, pool.to_owned(), id.clone());
        tasks.push(tokio::spawn(
            async move { client.delete_session(&pool, &id).await },
        ));
    }
    join_all(tasks).await?;
    finish(base, events, pool, ready, before, began, "probe-delete").await
}

/// Takes the whole ready set with `ready` concurrent new identifiers and times the refill.
pub async fn after_taking_ready_set(
    base: &str,
    events: &Events,
    pool: &str,
    ready: i64,
) -> Result<Refill, BenchError> {
    wait_ready(events, pool, ready, REFILL_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = events.pool(pool);
    let began = Instant::now();
    let ids: Vec<String> = (0..ready as usize).map(|i| identifier("take", i)).collect();
    let mut tasks = Vec::new();
    for id in &ids {
        let (client, pool, id) = (Client::new(base)?, pool.to_owned(), id.clone());
        tasks.push(tokio::spawn(async move {
            client.print_one(&pool, &id).await.map(|_| ())
        }));
    }
    join_all(tasks).await?;
    let refill = finish(base, events, pool, ready, before, began, "probe-take").await;
    let client = Client::new(base)?;
    for id in &ids {
        client.delete_session(pool, id).await?;
    }
    refill
}

async fn finish(
    base: &str,
    events: &Events,
    pool: &str,
    ready: i64,
    before: crate::events::PoolCounters,
    began: Instant,
    probe_tag: &str,
) -> Result<Refill, BenchError> {
    let trigger = began.elapsed();
    wait_ready(events, pool, ready, REFILL_TIMEOUT).await?;
    let refilled = began.elapsed();
    let after = events.pool(pool);
    let client = Client::new(base)?;
    let probe_id = identifier(probe_tag, 0);
    let probe = client.print_one(pool, &probe_id).await?.latency;
    client.delete_session(pool, &probe_id).await?;
    Ok(Refill {
        ready_before: before.ready(),
        trigger,
        refilled,
        started: after.started - before.started,
        restored: after.restored - before.restored,
        probe,
    })
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<Result<(), BenchError>>>) -> Result<(), BenchError> {
    for t in tasks {
        t.await
            .map_err(|e| BenchError::Args(format!("request task failed: {e}")))??;
    }
    Ok(())
}
