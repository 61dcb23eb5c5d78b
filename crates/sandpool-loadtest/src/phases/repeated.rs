//! Phase 2: sequential requests in one session on one keep-alive connection:
//! `print(1)`, interleaved call by call with the direct agent round trip (same load,
//! same moment), then for the breakdown `GET session` (auth + engine, no agent) and
//! `GET /healthz` (HTTP alone).

use super::identifier;
use crate::client::Client;
use crate::direct::DirectSandbox;
use crate::error::BenchError;
use sandpool_conformance::bench::stats::Samples;

const WARM_UP: usize = 20;

pub struct Repeated {
    pub execute: Samples,
    /// Direct agent round trips, interleaved with `execute`.
    pub direct: Option<Samples>,
    pub get_session: Samples,
    pub healthz: Samples,
}

pub async fn run(
    client: &Client,
    pool: &str,
    n: usize,
    direct: Option<&DirectSandbox>,
) -> Result<Repeated, BenchError> {
    let id = identifier("repeat", 0);
    for _ in 0..WARM_UP {
        client.print_one(pool, &id).await?;
        client.get_session(pool, &id).await?;
        client.healthz().await?;
        if let Some(d) = direct {
            d.print_one().await?;
        }
    }
    let mut execute = Vec::with_capacity(n);
    let mut direct_samples = Vec::with_capacity(n);
    for _ in 0..n {
        execute.push(client.print_one(pool, &id).await?.latency);
        if let Some(d) = direct {
            direct_samples.push(d.print_one().await?);
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
        direct: direct.map(|_| Samples::new(direct_samples)),
        get_session: Samples::new(get_session),
        healthz: Samples::new(healthz),
    })
}
