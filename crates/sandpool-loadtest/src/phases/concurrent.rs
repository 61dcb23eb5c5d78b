//! Phases 3 and 4: `clients` concurrent clients, each with its own identifier and
//! keep-alive connection, executing `print(1)` back to back. Runs for `duration`, and
//! at least `duration / 2` past the moment every client's session was allocated.

use super::identifier;
use crate::client::Client;
use crate::error::BenchError;
use crate::events::{Events, PoolCounters};
use sandpool_conformance::bench::stats::Samples;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Give up on clients that never got a session after this long.
const HARD_CAP: Duration = Duration::from_secs(240);
/// A first request slower than this waited for a sandbox to start (a warm allocation
/// is milliseconds, a restore about a second here).
pub const COLD_THRESHOLD: Duration = Duration::from_millis(250);
const ERRORS_KEPT: usize = 5;

/// One successful execution.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    /// Completion, from the phase start.
    pub at: Duration,
    pub latency: Duration,
    /// The identifier's first request (it allocated the session).
    pub first: bool,
}

/// The figures of one concurrent phase.
#[derive(Debug)]
pub struct Throughput {
    pub ok: usize,
    pub errors: usize,
    pub first_errors: Vec<String>,
    pub wall: Duration,
    pub summary: Summary,
    pub identifiers: Vec<String>,
    /// Pool counters before and after the phase.
    pub before: PoolCounters,
    pub after: PoolCounters,
}

/// Rates and latencies of one phase.
#[derive(Debug)]
pub struct Summary {
    /// When the last client got its session, from the phase start.
    pub all_allocated_at: Option<Duration>,
    pub overall_per_s: f64,
    /// Executions per second after every session was allocated.
    pub steady_per_s: f64,
    /// First request (allocation + `print(1)`) of each identifier.
    pub first: Samples,
    /// First requests slower than [`COLD_THRESHOLD`].
    pub cold_by_latency: usize,
    pub steady_latency: Samples,
}

/// Figures from the completed executions of a phase that lasted `wall`.
pub fn summarize(done: &[Done], clients: usize, wall: Duration) -> Summary {
    let firsts: Vec<&Done> = done.iter().filter(|d| d.first).collect();
    let all_allocated_at = (firsts.len() == clients)
        .then(|| firsts.iter().map(|d| d.at).max())
        .flatten();
    let overall = done.len() as f64 / wall.as_secs_f64().max(1e-9);
    let (steady_per_s, steady) = match all_allocated_at {
        Some(t) if wall > t => {
            let steady: Vec<Duration> = done
                .iter()
                .filter(|d| !d.first && d.at > t)
                .map(|d| d.latency)
                .collect();
            (steady.len() as f64 / (wall - t).as_secs_f64(), steady)
        }
        _ => (0.0, Vec::new()),
    };
    let cold = firsts.iter().filter(|d| d.latency > COLD_THRESHOLD).count();
    Summary {
        all_allocated_at,
        overall_per_s: overall,
        steady_per_s,
        first: Samples::new(firsts.iter().map(|d| d.latency).collect()),
        cold_by_latency: cold,
        steady_latency: Samples::new(steady),
    }
}

pub async fn run(
    base: &str,
    events: &Events,
    pool: &str,
    clients: usize,
    duration: Duration,
) -> Result<Throughput, BenchError> {
    let before = events.pool(pool);
    let identifiers: Vec<String> = (0..clients).map(|i| identifier(pool, i)).collect();
    let done = Arc::new(Mutex::new(Vec::<Done>::new()));
    let errors = Arc::new(Mutex::new((0usize, Vec::<String>::new())));
    let allocated = Arc::new(AtomicUsize::new(0));
    let all_allocated_at = Arc::new(Mutex::new(None::<Instant>));
    let began = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for id in identifiers.clone() {
        let client = Client::new(base)?;
        let (pool, done, errors) = (pool.to_owned(), done.clone(), errors.clone());
        let (allocated, all_at) = (allocated.clone(), all_allocated_at.clone());
        tasks.push(tokio::spawn(async move {
            let mut first = true;
            loop {
                let now = Instant::now();
                let all = *all_at.lock().unwrap_or_else(|e| e.into_inner());
                let end = match all {
                    Some(t) => (began + duration).max(t + duration / 2),
                    None => began + HARD_CAP,
                };
                if now >= end {
                    break;
                }
                match client.print_one(&pool, &id).await {
                    Ok(e) => {
                        done.lock().unwrap_or_else(|e| e.into_inner()).push(Done {
                            at: began.elapsed(),
                            latency: e.latency,
                            first,
                        });
                        if first {
                            first = false;
                            if allocated.fetch_add(1, Ordering::SeqCst) + 1 == clients {
                                *all_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                                eprintln!("all {clients} sessions allocated after {:?}", began.elapsed());
                            }
                        }
                    }
                    Err(e) => {
                        {
                            let mut errs = errors.lock().unwrap_or_else(|e| e.into_inner());
                            errs.0 += 1;
                            if errs.1.len() < ERRORS_KEPT {
                                errs.1.push(e.to_string());
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = began.elapsed();
    let done = std::mem::take(&mut *done.lock().unwrap_or_else(|e| e.into_inner()));
    let (errors, first_errors) = std::mem::take(&mut *errors.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Throughput {
        ok: done.len(),
        errors,
        first_errors,
        wall,
        summary: summarize(&done, clients, wall),
        identifiers,
        before,
        after: events.pool(pool),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(at_ms: u64, latency_ms: u64, first: bool) -> Done {
        Done {
            at: Duration::from_millis(at_ms),
            latency: Duration::from_millis(latency_ms),
            first,
        }
    }

    #[test]
    fn steady_state_starts_when_the_last_session_is_allocated() {
        let done = [
            d(5, 5, true),
            d(1000, 1000, true),
            d(10, 5, false),
            d(1500, 4, false),
            d(2000, 6, false),
        ];
        let s = summarize(&done, 2, Duration::from_secs(2));
        assert_eq!(s.all_allocated_at, Some(Duration::from_secs(1)));
        assert!((s.overall_per_s - 2.5).abs() < 1e-9);
        assert!((s.steady_per_s - 2.0).abs() < 1e-9);
        assert_eq!(s.first.len(), 2);
        assert_eq!(s.cold_by_latency, 1);
        assert_eq!(s.steady_latency.len(), 2);
    }

    #[test]
    fn no_steady_state_when_a_client_never_got_a_session() {
        let done = [d(5, 5, true), d(10, 5, false)];
        let s = summarize(&done, 2, Duration::from_secs(1));
        assert_eq!(s.all_allocated_at, None);
        assert_eq!(s.steady_per_s, 0.0);
        assert!(s.steady_latency.is_empty());
    }
}
