//! What a test wrapper needs: the shared [`TestEnv`] (prepared once per test binary),
//! a fresh backend, and a slot limiting how many behaviours run at once.

use crate::{backends, setup, TestEnv};
use sandpool_sandbox::Backend;
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

/// Behaviours running at once in one test binary; the machines have two cores.
const PARALLEL_BEHAVIOURS: usize = 2;

static ENV: OnceCell<Result<TestEnv, String>> = OnceCell::const_new();
static ORPHANS_REMOVED: OnceCell<()> = OnceCell::const_new();
static SLOTS: Semaphore = Semaphore::const_new(PARALLEL_BEHAVIOURS);

/// A backend and environment for one test.
pub struct Harness {
    backend: Box<dyn Backend>,
    env: &'static TestEnv,
    _slot: SemaphorePermit<'static>,
}

impl Harness {
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }
    pub fn env(&self) -> &'static TestEnv {
        self.env
    }
}

/// Prepares (once) the images and agent bundle, builds the named backend, and waits
/// for a slot. Panics with the setup error, which says what to install or build.
pub async fn harness(backend_name: &str) -> Harness {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
    let env = ENV
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| setup::prepare(crate::paths::Profile::Debug))
                .await
                .map_err(|e| format!("setup panicked: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string()))
        })
        .await
        .as_ref()
        .unwrap_or_else(|e| panic!("conformance setup failed: {e}"));
    let backend = backends::create(backend_name, &env.data_dir)
        .await
        .unwrap_or_else(|e| panic!("conformance setup failed: {e}"));
    ORPHANS_REMOVED
        .get_or_init(|| async {
            if let Err(e) = backends::remove_orphans(&*backend).await {
                tracing::warn!(error = %e, "could not remove sandboxes of earlier test runs");
            }
        })
        .await;
    let slot = SLOTS.acquire().await.expect("slots never close");
    Harness {
        backend,
        env,
        _slot: slot,
    }
}
