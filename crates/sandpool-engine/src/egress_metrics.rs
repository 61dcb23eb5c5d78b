//! Egress byte accounting for the metrics: turns the network manager's periodic counter
//! samples into per-pool totals (monotonic, including sessions that ended) and per-session
//! gauges (allocated sessions only). The arithmetic is pure; [`run`] does the sampling.

use crate::engine::Engine;
use crate::factory::pool_of_sandbox;
use crate::metrics::{Metrics, SessionEgress};
use sandpool_net::{EgressCounters, EgressSample, NetworkManager};
use sandpool_sandbox::SandboxId;
use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

/// How often the counters are read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Counter readings already added to the pool totals.
#[derive(Debug, Default)]
pub(crate) struct EgressAccounting {
    seen: HashMap<SandboxId, EgressCounters>,
}

impl EgressAccounting {
    /// Adds what each sandbox sent and received since its previous reading to its pool's
    /// totals and sets the gauges of allocated sessions (`allocated`: sandbox id to
    /// identifier).
    pub(crate) fn apply(
        &mut self,
        sample: EgressSample,
        allocated: &HashMap<String, String>,
        metrics: &Metrics,
    ) {
        let mut sessions = Vec::new();
        let mut still_live = HashMap::new();
        for (id, now) in sample.live {
            let Some(pool) = pool_of_sandbox(id.as_str()) else {
                continue;
            };
            let before = self.seen.get(&id).copied().unwrap_or_default();
            let delta = growth(before, now);
            metrics.egress(pool, delta.tx_bytes, delta.rx_bytes);
            if let Some(identifier) = allocated.get(id.as_str()) {
                sessions.push(SessionEgress {
                    pool: pool.to_owned(),
                    identifier: identifier.clone(),
                    sent: now.tx_bytes,
                    received: now.rx_bytes,
                });
            }
            still_live.insert(id, now);
        }
        for (id, last) in sample.ended {
            let Some(pool) = pool_of_sandbox(id.as_str()) else {
                continue;
            };
            let before = self.seen.get(&id).copied().unwrap_or_default();
            let delta = growth(before, last);
            metrics.egress(pool, delta.tx_bytes, delta.rx_bytes);
            still_live.remove(&id);
        }
        self.seen = still_live;
        metrics.set_session_egress(sessions);
    }
}

/// Bytes counted between two readings of one sandbox's counters (never negative).
fn growth(before: EgressCounters, now: EgressCounters) -> EgressCounters {
    EgressCounters {
        tx_bytes: now.tx_bytes.saturating_sub(before.tx_bytes),
        rx_bytes: now.rx_bytes.saturating_sub(before.rx_bytes),
    }
}

/// Samples every [`SAMPLE_EVERY`] until the engine is gone.
pub(crate) async fn run(engine: Weak<Engine>, net: NetworkManager) {
    let mut accounting = EgressAccounting::default();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sample = match net.sample().await {
            Ok(sample) => sample,
            Err(e) => {
                tracing::warn!(error = %e, "reading egress counters");
                continue;
            }
        };
        let Some(engine) = engine.upgrade() else { return };
        let allocated = engine.allocated_sandboxes();
        accounting.apply(sample, &allocated, &engine.metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SandboxId {
        SandboxId::new(s).unwrap()
    }

    fn c(tx: u64, rx: u64) -> EgressCounters {
        EgressCounters {
            tx_bytes: tx,
            rx_bytes: rx,
        }
    }

    #[test]
    fn pool_totals_grow_by_deltas_and_include_ended_sessions() {
        let metrics = Metrics::new();
        let mut acc = EgressAccounting::default();
        let allocated = HashMap::from([("sp-web-1-0000000a".to_string(), "user-7".to_string())]);
        acc.apply(
            EgressSample {
                live: vec![
                    (id("sp-web-1-0000000a"), c(100, 1000)),
                    (id("sp-web-2-0000000b"), c(5, 50)),
                ],
                ended: vec![],
            },
            &allocated,
            &metrics,
        );
        acc.apply(
            EgressSample {
                live: vec![(id("sp-web-1-0000000a"), c(300, 5000))],
                ended: vec![
                    (id("sp-web-2-0000000b"), c(7, 70)),
                    (id("sp-web-3-0000000c"), c(1, 10)),
                ],
            },
            &allocated,
            &metrics,
        );
        let text = metrics.render();
        for want in [
            "sandpool_egress_bytes_total{pool=\"web\",direction=\"sent\"} 308",
            "sandpool_egress_bytes_total{pool=\"web\",direction=\"received\"} 5080",
            "sandpool_session_egress_bytes{pool=\"web\",identifier=\"user-7\",direction=\"sent\"} 300",
            "sandpool_session_egress_bytes{pool=\"web\",identifier=\"user-7\",direction=\"received\"} 5000",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        // The session ends: its gauge goes, the pool total keeps its bytes.
        acc.apply(
            EgressSample {
                live: vec![],
                ended: vec![(id("sp-web-1-0000000a"), c(310, 5000))],
            },
            &HashMap::new(),
            &metrics,
        );
        let text = metrics.render();
        assert!(!text.contains("identifier=\"user-7\""), "{text}");
        assert!(text.contains("sandpool_egress_bytes_total{pool=\"web\",direction=\"sent\"} 318"));
        assert!(acc.seen.is_empty());
    }

    #[test]
    fn a_counter_that_went_backwards_adds_nothing() {
        assert_eq!(growth(c(10, 10), c(4, 12)), c(0, 2));
    }
}
