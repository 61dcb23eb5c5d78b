//! The engine's Prometheus metrics: allocation latency by kind, hit rate, slot counts
//! per pool, refill time, sandbox starts and failures, executions, HTTP requests, egress
//! bytes per pool and per session.
//! A small in-process registry rendered as Prometheus text on demand.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sandpool_pool::Counts;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// How a new session got its sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationKind {
    /// A ready sandbox was waiting.
    WarmHit,
    /// The request waited for a sandbox booted from scratch.
    ColdStart,
    /// The request waited for a sandbox restored from the warm-start template.
    Restore,
}

impl AllocationKind {
    fn as_str(self) -> &'static str {
        match self {
            AllocationKind::WarmHit => "warm_hit",
            AllocationKind::ColdStart => "cold_start",
            AllocationKind::Restore => "restore",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    pool: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    pool: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    pool: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    pool: String,
    direction: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionDirectionLabels {
    pool: String,
    identifier: String,
    direction: String,
}

/// One allocated session's egress counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionEgress {
    pub(crate) pool: String,
    pub(crate) identifier: String,
    pub(crate) sent: u64,
    pub(crate) received: u64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    status: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms .. ~82 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every metric the engine keeps.
pub struct Metrics {
    registry: Registry,
    allocation_seconds: Histograms<KindLabels>,
    allocations: Family<KindLabels, Counter>,
    hit_ratio: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    ready: Family<PoolLabels, Gauge>,
    allocated: Family<PoolLabels, Gauge>,
    pending: Family<PoolLabels, Gauge>,
    refill_seconds: Histograms<KindLabels>,
    sandbox_starts: Family<KindLabels, Counter>,
    sandbox_failures: Family<ReasonLabels, Counter>,
    executions: Family<StatusLabels, Counter>,
    execution_seconds: Histograms<PoolLabels>,
    sessions_ended: Family<ReasonLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    egress_bytes: Family<DirectionLabels, Counter>,
    session_egress_bytes: Family<SessionDirectionLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sandpool");
        let m = Metrics {
            allocation_seconds: Family::new_with_constructor(latency_histogram),
            allocations: Family::default(),
            hit_ratio: Family::default(),
            ready: Family::default(),
            allocated: Family::default(),
            pending: Family::default(),
            refill_seconds: Family::new_with_constructor(latency_histogram),
            sandbox_starts: Family::default(),
            sandbox_failures: Family::default(),
            executions: Family::default(),
            execution_seconds: Family::new_with_constructor(latency_histogram),
            sessions_ended: Family::default(),
            http_requests: Family::default(),
            egress_bytes: Family::default(),
            session_egress_bytes: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "allocation_seconds",
            "Time to give a new session its sandbox, by kind (warm_hit, cold_start, restore)",
            m.allocation_seconds.clone(),
        );
        registry.register(
            "allocations",
            "New sessions allocated, by kind",
            m.allocations.clone(),
        );
        registry.register(
            "pool_hit_ratio",
            "Share of new sessions that found a ready sandbox",
            m.hit_ratio.clone(),
        );
        registry.register("pool_ready", "Ready sandboxes", m.ready.clone());
        registry.register(
            "pool_allocated",
            "Sandboxes running a session",
            m.allocated.clone(),
        );
        registry.register("pool_pending", "Sandboxes starting", m.pending.clone());
        registry.register(
            "refill_seconds",
            "Time to start one sandbox, by kind (restore, cold)",
            m.refill_seconds.clone(),
        );
        registry.register(
            "sandbox_starts",
            "Sandboxes started, by kind",
            m.sandbox_starts.clone(),
        );
        registry.register(
            "sandbox_failures",
            "Sandbox start failures and deaths, by reason",
            m.sandbox_failures.clone(),
        );
        registry.register(
            "executions",
            "Executions finished, by status",
            m.executions.clone(),
        );
        registry.register(
            "execution_seconds",
            "Duration of executions",
            m.execution_seconds.clone(),
        );
        registry.register(
            "sessions_ended",
            "Sessions ended, by reason",
            m.sessions_ended.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "egress_bytes",
            "Bytes EgressEnabled sandboxes sent and received through their NAT, by pool and direction (sampled every 5 s)",
            m.egress_bytes.clone(),
        );
        registry.register(
            "session_egress_bytes",
            "Bytes an allocated session's sandbox sent and received through its NAT so far (sampled every 5 s)",
            m.session_egress_bytes.clone(),
        );
        Metrics { registry, ..m }
    }

    pub(crate) fn allocation(&self, pool: &str, kind: AllocationKind, took: Duration) {
        let labels = KindLabels {
            pool: pool.to_owned(),
            kind: kind.as_str().to_owned(),
        };
        self.allocation_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.allocations.get_or_create(&labels).inc();
    }

    pub(crate) fn sandbox_started(&self, pool: &str, restored: bool, took: Duration) {
        let labels = KindLabels {
            pool: pool.to_owned(),
            kind: if restored { "restore" } else { "cold" }.to_owned(),
        };
        self.refill_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.sandbox_starts.get_or_create(&labels).inc();
    }

    pub(crate) fn sandbox_failed(&self, pool: &str, reason: &str) {
        self.sandbox_failures
            .get_or_create(&ReasonLabels {
                pool: pool.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub(crate) fn session_ended(&self, pool: &str, reason: &str) {
        self.sessions_ended
            .get_or_create(&ReasonLabels {
                pool: pool.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub(crate) fn execution(&self, pool: &str, status: &str, took: Duration) {
        self.executions
            .get_or_create(&StatusLabels {
                pool: pool.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.execution_seconds
            .get_or_create(&PoolLabels {
                pool: pool.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn egress(&self, pool: &str, sent: u64, received: u64) {
        for (direction, bytes) in [("sent", sent), ("received", received)] {
            self.egress_bytes
                .get_or_create(&DirectionLabels {
                    pool: pool.to_owned(),
                    direction: direction.to_owned(),
                })
                .inc_by(bytes);
        }
    }

    /// Replaces the per-session egress gauges with `sessions`.
    pub(crate) fn set_session_egress(&self, sessions: Vec<SessionEgress>) {
        self.session_egress_bytes.clear();
        for s in sessions {
            for (direction, bytes) in [("sent", s.sent), ("received", s.received)] {
                self.session_egress_bytes
                    .get_or_create(&SessionDirectionLabels {
                        pool: s.pool.clone(),
                        identifier: s.identifier.clone(),
                        direction: direction.to_owned(),
                    })
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
    }

    /// Counts one answered HTTP request.
    pub fn http_request(&self, method: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Sets the per-pool gauges from the pool's current counts and hit counters.
    pub(crate) fn set_counts(&self, pool: &str, counts: Counts) {
        let labels = PoolLabels {
            pool: pool.to_owned(),
        };
        self.ready.get_or_create(&labels).set(counts.ready.into());
        self.allocated.get_or_create(&labels).set(counts.allocated.into());
        self.pending.get_or_create(&labels).set(counts.pending.into());
        let count = |kind: AllocationKind| {
            self.allocations
                .get_or_create(&KindLabels {
                    pool: pool.to_owned(),
                    kind: kind.as_str().to_owned(),
                })
                .get()
        };
        let hits = count(AllocationKind::WarmHit);
        let total = hits + count(AllocationKind::ColdStart) + count(AllocationKind::Restore);
        let ratio = if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        };
        self.hit_ratio.get_or_create(&labels).set(ratio);
    }

    /// Drops the per-pool gauges of a deleted pool.
    pub(crate) fn forget_pool(&self, pool: &str) {
        let labels = PoolLabels {
            pool: pool.to_owned(),
        };
        self.ready.remove(&labels);
        self.allocated.remove(&labels);
        self.pending.remove(&labels);
        self.hit_ratio.remove(&labels);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::warn!("could not encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_ratio() {
        let m = Metrics::new();
        m.allocation("p", AllocationKind::WarmHit, Duration::from_millis(3));
        m.allocation("p", AllocationKind::Restore, Duration::from_millis(400));
        m.execution("p", "succeeded", Duration::from_millis(20));
        m.http_request("GET", 200);
        m.set_counts(
            "p",
            Counts {
                ready: 2,
                ..Default::default()
            },
        );
        let text = m.render();
        for want in [
            "sandpool_allocation_seconds_count{pool=\"p\",kind=\"warm_hit\"} 1",
            "sandpool_allocations_total{pool=\"p\",kind=\"restore\"} 1",
            "sandpool_pool_hit_ratio{pool=\"p\"} 0.5",
            "sandpool_pool_ready{pool=\"p\"} 2",
            "sandpool_executions_total{pool=\"p\",status=\"succeeded\"} 1",
            "sandpool_http_requests_total{method=\"GET\",status=\"200\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        m.forget_pool("p");
        assert!(!m.render().contains("sandpool_pool_ready{pool=\"p\"}"));
    }
}
