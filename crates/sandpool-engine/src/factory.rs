//! Makes sandboxes for one pool: the base spec (image, kind, limits, agent bundle), the
//! backend that runs them, and the warm-start template when the backend has one.

use crate::service::EngineError;
use sandpool_pool::SlotId;
use sandpool_sandbox::{Backend, Sandbox, SandboxId, SandboxSpec, Template};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bound on one sandbox start; a start that hangs is abandoned and counted as failed.
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) struct SandboxFactory {
    pub(crate) backend: Arc<dyn Backend>,
    /// The spec every sandbox of the pool is made from; only the id changes.
    pub(crate) base: SandboxSpec,
    pub(crate) template: Option<Template>,
}

/// A started sandbox and how long it took.
pub(crate) struct Started {
    pub(crate) sandbox: Arc<dyn Sandbox>,
    pub(crate) took: Duration,
}

impl SandboxFactory {
    /// Starts the sandbox for `slot` of `pool`: restored from the template when there is
    /// one, booted otherwise.
    pub(crate) async fn start(&self, pool: &str, slot: SlotId) -> Result<Started, EngineError> {
        let mut spec = self.base.clone();
        let suffix: u32 = rand::random();
        spec.id = SandboxId::new(format!("sp-{pool}-{}-{suffix:08x}", slot.0))
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let began = Instant::now();
        let created = tokio::time::timeout(START_TIMEOUT, self.backend.create(&spec, self.template.as_ref()))
            .await
            .map_err(|_| EngineError::Internal(format!("sandbox start took longer than {START_TIMEOUT:?}")))?
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(Started {
            sandbox: Arc::from(created),
            took: began.elapsed(),
        })
    }
}
