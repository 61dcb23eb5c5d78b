//! Phase 2: sequential requests in one session on one keep-alive connection:
//! `print(1)`, and for the breakdown `GET session` (auth + engine, no agent) and
//! `GET /healthz` (HTTP alone).

use super::identifier;
use crate::client::Client;
use crate::error::BenchError;
use sandpool_conformance::bench::stats::Samples;
use std::time::Duration;

const WARM_UP: usize = 20;

pub struct Repeated {
    pub execute: Samples,
    /// `executionTimeInMilliseconds` the server reported, as durations.
    pub server_reported: Samples,
    pub get_session: Samples,
    pub healthz: Samples,
}

pub async fn run(client: &Client, pool: &str, n: usize) -> Result<Repeated, BenchError> {
    let id = identifier("repeat", 0);
    for _ in 0..WARM_UP {
        client.print_one(pool, &id).await?;
        client.get_session(pool, &id).await?;
        client.healthz().await?;
    }
    let mut execute = Vec::with_capacity(n);
    let mut server_reported = Vec::with_capacity(n);
    for _ in 0..n {
        let e = client.print_one(pool, &id).await?;
        execute.push(e.latency);
        if let Some(ms) = e.server_ms {
            server_reported.push(Duration::from_millis(ms));
        }
    }
    let mut get_session = Vec::with_capacity(n);
    for _ in 0..n {
        get_session.push(client.get_session(pool, &id).await?);
    }
    let mut healthz = Vec::with_capacity(n);
    for _ in 0..n {
        healthz.push(client.healthz().await?);
    }
    client.delete_session(pool, &id).await?;
    Ok(Repeated {
        execute: Samples::new(execute),
        server_reported: Samples::new(server_reported),
        get_session: Samples::new(get_session),
        healthz: Samples::new(healthz),
    })
}
