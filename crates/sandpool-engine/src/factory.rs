//! Makes sandboxes for one pool: the base spec (image, kind, limits, agent bundle), the
//! backend that runs them, and the warm-start template when the backend has one. A
//! custom container's sandbox counts as started once its Startup probe passes (or its
//! target port accepts a connection).

use crate::custom_spec::{Lifecycle, Probe, ProbeCheck};
use crate::probe;
use crate::service::EngineError;
use sandpool_pool::SlotId;
use sandpool_proto::Request;
use sandpool_sandbox::{Backend, Sandbox, SandboxId, SandboxKind, SandboxSpec, Template};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Bound on one sandbox start once it has begun; a start that hangs is abandoned and
/// counted as failed.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on the warm-up request sent to a fresh sandbox.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// `print(1)` cells run in a fresh Python sandbox before it counts as ready (see [`warm_up`]).
const PYTHON_WARM_UP_ROUNDS: usize = 5;

/// Sandbox starts (restores decompress a checkpoint, boots import libraries) are CPU-bound:
/// running more at once than there are cores only makes every one of them slower, until
/// they all time out. One limit for every pool of the process.
fn start_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Semaphore::new(cores.clamp(1, 16))
    })
}

pub(crate) struct SandboxFactory {
    pub(crate) backend: Arc<dyn Backend>,
    /// The spec every sandbox of the pool is made from; only the id changes.
    pub(crate) base: SandboxSpec,
    pub(crate) template: Option<Template>,
    /// Set for custom-container pools.
    pub(crate) custom: Option<CustomRuntime>,
}

/// How the engine watches a custom container.
#[derive(Debug, Clone)]
pub(crate) struct CustomRuntime {
    pub(crate) target_port: u16,
    pub(crate) startup: Option<Probe>,
    pub(crate) liveness: Option<Probe>,
    pub(crate) lifecycle: Lifecycle,
}

impl CustomRuntime {
    /// The Startup probe, else "the target port accepts a connection" tried every 100 ms.
    fn readiness(&self) -> Probe {
        self.startup.clone().unwrap_or_else(|| Probe {
            period: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            failure_threshold: u32::MAX,
            ..Probe::with_defaults(ProbeCheck::TcpSocket {
                port: self.target_port,
            })
        })
    }
}

/// The pool a sandbox id was made for: ids are `sp-<pool>-<slot>-<suffix>` (and
/// `sp-<pool>-template-<generation>` for templates).
pub(crate) fn pool_of_sandbox(id: &str) -> Option<&str> {
    let mut parts = id.strip_prefix("sp-")?.rsplitn(3, '-');
    let (_suffix, _slot, pool) = (parts.next()?, parts.next()?, parts.next()?);
    (!pool.is_empty()).then_some(pool)
}

/// A started sandbox and how long it took.
pub(crate) struct Started {
    pub(crate) sandbox: Arc<dyn Sandbox>,
    pub(crate) took: Duration,
}

impl SandboxFactory {
    /// Starts the sandbox for `slot` of `pool`: restored from the template when there is
    /// one, booted otherwise. `urgent`: a request waits for it, so the warm-up is one
    /// round (its health check) rather than the full [`PYTHON_WARM_UP_ROUNDS`]: under
    /// load each round costs far more than the first-use cost it saves the request.
    pub(crate) async fn start(&self, pool: &str, slot: SlotId, urgent: bool) -> Result<Started, EngineError> {
        let mut spec = self.base.clone();
        let suffix: u32 = rand::random();
        spec.id = SandboxId::new(format!("sp-{pool}-{}-{suffix:08x}", slot.0))
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let _slot = start_slots()
            .acquire()
            .await
            .map_err(|_| EngineError::Internal("sandbox start limiter closed".into()))?;
        let began = Instant::now();
        let created = tokio::time::timeout(START_TIMEOUT, self.backend.create(&spec, self.template.as_ref()))
            .await
            .map_err(|_| EngineError::Internal(format!("sandbox start took longer than {START_TIMEOUT:?}")))?
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let sandbox: Arc<dyn Sandbox> = Arc::from(created);
        if let Err(e) = warm_up(sandbox.as_ref(), spec.kind, urgent).await {
            let _ = sandbox.destroy().await;
            return Err(e);
        }
        if let Some(custom) = &self.custom {
            let readiness = custom.readiness();
            let ready = tokio::time::timeout(START_TIMEOUT.saturating_sub(began.elapsed()), async {
                tokio::select! {
                    r = probe::until_decided(sandbox.agent(), &readiness) => r,
                    _ = sandbox.agent().workload_exited() => Err("the container's process ended".to_owned()),
                }
            })
            .await
            .unwrap_or_else(|_| Err(format!("not ready within {START_TIMEOUT:?}")));
            if let Err(why) = ready {
                let exit = sandbox.agent().workload_exit();
                let _ = sandbox.destroy().await;
                return Err(EngineError::Internal(match exit {
                    Some(exit) => format!(
                        "the container exited before it was ready ({}); last check: {why}",
                        exit.detail
                    ),
                    None => format!("the container's startup check failed: {why}"),
                }));
            }
        }
        Ok(Started {
            sandbox,
            took: began.elapsed(),
        })
    }
}

/// Runs a few trivial requests through the path user requests take (IPython's cell
/// execution with output, or a shell), so their first-use cost after a boot or restore is
/// paid before the sandbox counts as ready rather than by the first request of a new
/// session. Measured under gVisor ptrace by `warm-up-bench` (crate `sandpool-conformance`,
/// figures in BENCHMARKS.md): a session's first `print(1)` after 1.5 s idle took 7.3 ms
/// p50 / 26.5 ms p95 after one `None` cell, 5.3 / 19.2 ms after one `print(1)`, 4.4 / 9.9
/// ms after three and 3.5 / 6.9 ms after five, the level of any `print(1)` after an idle
/// gap. The restored sandbox's address space fills in over the first few cells, and a
/// cell with output touches more of it than one without.
async fn warm_up(sandbox: &dyn Sandbox, kind: SandboxKind, urgent: bool) -> Result<(), EngineError> {
    let (request, rounds) = match kind {
        SandboxKind::Python => (
            Request::Execute {
                code: "print(1)".into(),
                timeout_ms: WARM_UP_TIMEOUT.as_millis() as u64,
            },
            if urgent { 1 } else { PYTHON_WARM_UP_ROUNDS },
        ),
        SandboxKind::Shell => (
            Request::Shell {
                command: "true".into(),
                timeout_ms: WARM_UP_TIMEOUT.as_millis() as u64,
            },
            1,
        ),
        _ => return Ok(()),
    };
    for _ in 0..rounds {
        match tokio::time::timeout(
            WARM_UP_TIMEOUT + Duration::from_secs(5),
            sandbox.agent().call(request.clone()),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(EngineError::Internal(format!("warm-up request failed: {e}"))),
            Err(_) => {
                return Err(EngineError::Internal(format!(
                    "warm-up request took longer than {WARM_UP_TIMEOUT:?}"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pool_of_sandbox;

    #[test]
    fn sandbox_ids_name_their_pool() {
        assert_eq!(pool_of_sandbox("sp-my-pool-3-0a1b2c3d"), Some("my-pool"));
        assert_eq!(pool_of_sandbox("sp-py-template-2"), Some("py"));
        assert_eq!(pool_of_sandbox("sp--3-0a1b2c3d"), None);
        assert_eq!(pool_of_sandbox("other-3-0a1b2c3d"), None);
        assert_eq!(pool_of_sandbox("sp-3"), None);
    }
}
