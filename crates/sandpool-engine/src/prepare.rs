//! Getting a pool ready to start sandboxes: its image (built if missing), the agent
//! bundle, and the warm-start template when the backend can checkpoint.

use crate::factory::SandboxFactory;
use crate::service::{ContainerType, EngineError};
use crate::PoolSpec;
use sandpool_image::{recipes, Image, ImageStore};
use sandpool_sandbox::{AgentRuntime, Backend, SandboxId, SandboxKind, SandboxSpec, AGENT_MOUNT_POINT};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Modules imported before a Python template is checkpointed.
const PYTHON_WARM_MODULES: &[&str] = &["numpy", "pandas", "matplotlib", "matplotlib.pyplot"];

/// Copies `agent_exe` and the Python driver into `<data_dir>/agent/<hash>/` (once per
/// distinct executable) and describes how sandboxes run it.
pub(crate) fn install_agent(data_dir: &Path, agent_exe: &Path) -> Result<AgentRuntime, EngineError> {
    let bytes = std::fs::read(agent_exe).map_err(|e| {
        EngineError::Internal(format!("reading agent executable {}: {e}", agent_exe.display()))
    })?;
    let mut h = Sha256::new();
    h.update(&bytes);
    h.update(sandpool_agent::DRIVER_SOURCE.as_bytes());
    let dir = data_dir.join("agent").join(&hex::encode(h.finalize())[..16]);
    if !dir.join("sandpool-agent").exists() {
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| EngineError::Internal(format!("creating {}: {e}", tmp.display())))?;
        sandpool_agent::install_bundle(&tmp, agent_exe)
            .map_err(|e| EngineError::Internal(format!("installing the agent bundle: {e}")))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir)
            .map_err(|e| EngineError::Internal(format!("installing the agent bundle: {e}")))?;
    }
    Ok(AgentRuntime {
        host_dir: dir,
        argv: vec![format!("{AGENT_MOUNT_POINT}/sandpool-agent")],
    })
}

/// Builds (or finds) the image for a pool's container type, reporting progress.
pub(crate) async fn ensure_image(data_dir: PathBuf, ctype: ContainerType) -> Result<Image, EngineError> {
    if ctype == ContainerType::CustomContainer {
        return Err(EngineError::Internal(
            "custom containers use the pool's own image, not a built-in one".into(),
        ));
    }
    tokio::task::spawn_blocking(move || {
        let recipe = match ctype {
            ContainerType::PythonLts => recipes::python(),
            ContainerType::Shell => recipes::shell(),
            ContainerType::CustomContainer => unreachable!("checked before the task"),
        };
        let name = recipe.name.clone();
        let mut progress = |line: &str| tracing::info!(image = %name, "{line}");
        ImageStore::new(&data_dir).ensure(&recipe, &mut progress)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("image build task failed: {e}")))?
    .map_err(|e| EngineError::Internal(format!("building the image: {e}")))
}

/// Everything needed to start sandboxes for `spec`, including a template when possible.
pub(crate) async fn prepare_pool(
    spec: &PoolSpec,
    image: &Image,
    agent: AgentRuntime,
    backend: Arc<dyn Backend>,
    generation: u64,
) -> Result<SandboxFactory, EngineError> {
    let kind = match spec.container_type {
        ContainerType::PythonLts => SandboxKind::Python,
        ContainerType::Shell => SandboxKind::Shell,
        ContainerType::CustomContainer => SandboxKind::Custom,
    };
    let base = SandboxSpec {
        id: SandboxId::new(format!("sp-{}-template-{generation}", spec.name))
            .map_err(|e| EngineError::Internal(e.to_string()))?,
        rootfs: image.rootfs.clone(),
        image_digest: image.digest.clone(),
        kind,
        limits: spec.limits,
        network: spec.network.clone(),
        agent,
        env: Vec::new(),
        workload: None,
    };
    let template = if backend.supports_checkpoint() {
        let warm: Vec<String> = match kind {
            SandboxKind::Python => PYTHON_WARM_MODULES.iter().map(|m| m.to_string()).collect(),
            SandboxKind::Shell | SandboxKind::Custom => Vec::new(),
        };
        let began = std::time::Instant::now();
        match backend.build_template(&base, &warm).await {
            Ok(t) => {
                tracing::info!(pool = %spec.name, took_ms = began.elapsed().as_millis() as u64, "warm-start template ready");
                Some(t)
            }
            Err(e) => {
                tracing::warn!(pool = %spec.name, error = %e, "no warm-start template; sandboxes will cold-boot");
                None
            }
        }
    } else {
        None
    };
    Ok(SandboxFactory {
        backend,
        base,
        template,
        custom: None,
    })
}
