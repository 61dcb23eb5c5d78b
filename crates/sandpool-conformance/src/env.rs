//! The environment every behaviour runs in: the real images, the real agent bundle,
//! and the spec and sandbox factories built from them.

use crate::guard::SandboxGuard;
use sandpool_sandbox::{
    AgentRuntime, Backend, Limits, NetworkPolicy, SandboxId, SandboxKind, SandboxSpec, Template,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Upper bound on creating one sandbox (cold boot with a loaded machine included).
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(180);
/// Upper bound on building a template (boot, import the heavy modules, checkpoint).
pub const TEMPLATE_TIMEOUT: Duration = Duration::from_secs(600);
/// Modules imported in the template before its checkpoint.
pub const WARM_MODULES: [&str; 3] = ["numpy", "pandas", "matplotlib.pyplot"];

/// A built image on the host.
#[derive(Debug, Clone)]
pub struct ImageRef {
    pub rootfs: PathBuf,
    pub digest: String,
}

/// Images, agent bundle and host paths shared by every behaviour of a test binary.
pub struct TestEnv {
    pub python: ImageRef,
    pub shell: ImageRef,
    pub agent: AgentRuntime,
    /// The host's sandpool data directory (images, bundles, backend state).
    pub data_dir: PathBuf,
    templates: tokio::sync::Mutex<HashMap<&'static str, Template>>,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A sandbox id unique across concurrent test processes: `cf-<pid>-<n>-<label>`.
pub fn unique_id(label: &str) -> SandboxId {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    SandboxId::new(format!("cf-{}-{n}-{label}", std::process::id())).expect("id is path-safe")
}

impl TestEnv {
    pub fn new(python: ImageRef, shell: ImageRef, agent: AgentRuntime, data_dir: PathBuf) -> Self {
        TestEnv {
            python,
            shell,
            agent,
            data_dir,
            templates: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A spec for a new sandbox of `kind` (python or shell) with `limits`, no network.
    pub fn spec(&self, label: &str, kind: SandboxKind, limits: Limits) -> SandboxSpec {
        let image = match kind {
            SandboxKind::Python => &self.python,
            SandboxKind::Shell => &self.shell,
            SandboxKind::Custom => panic!("the conformance suite builds python and shell sandboxes only"),
        };
        SandboxSpec {
            id: unique_id(label),
            rootfs: image.rootfs.clone(),
            image_digest: image.digest.clone(),
            kind,
            limits,
            network: NetworkPolicy::Disabled,
            agent: self.agent.clone(),
            env: Vec::new(),
            workload: None,
        }
    }

    /// The python template of `backend` (default limits, heavy modules imported),
    /// built on first use.
    pub async fn python_template(&self, backend: &dyn Backend) -> Template {
        let mut templates = self.templates.lock().await;
        if let Some(t) = templates.get(backend.name()) {
            return t.clone();
        }
        let spec = self.spec("template", SandboxKind::Python, Limits::default());
        let modules: Vec<String> = WARM_MODULES.iter().map(|m| m.to_string()).collect();
        let template = tokio::time::timeout(TEMPLATE_TIMEOUT, backend.build_template(&spec, &modules))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "building the {} template took over {TEMPLATE_TIMEOUT:?}",
                    backend.name()
                )
            })
            .unwrap_or_else(|e| panic!("building the {} template: {e}", backend.name()));
        templates.insert(backend.name(), template.clone());
        template
    }

    /// Creates a sandbox from `spec` (restored from `template` when given).
    pub async fn create(
        &self,
        backend: &dyn Backend,
        spec: &SandboxSpec,
        template: Option<&Template>,
    ) -> SandboxGuard {
        let sandbox = tokio::time::timeout(CREATE_TIMEOUT, backend.create(spec, template))
            .await
            .unwrap_or_else(|_| panic!("creating sandbox {} took over {CREATE_TIMEOUT:?}", spec.id))
            .unwrap_or_else(|e| panic!("creating sandbox {}: {e}", spec.id));
        SandboxGuard::new(sandbox)
    }

    /// A sandbox booted cold from the image of `kind`, with `limits`.
    pub async fn boot(
        &self,
        backend: &dyn Backend,
        label: &str,
        kind: SandboxKind,
        limits: Limits,
    ) -> SandboxGuard {
        let spec = self.spec(label, kind, limits);
        self.create(backend, &spec, None).await
    }

    /// A sandbox restored from the python template.
    pub async fn restore(&self, backend: &dyn Backend, label: &str) -> SandboxGuard {
        let template = self.python_template(backend).await;
        let spec = self.spec(label, SandboxKind::Python, Limits::default());
        let guard = self.create(backend, &spec, Some(&template)).await;
        assert!(
            guard.sandbox().restored(),
            "sandbox {} was booted, not restored",
            spec.id
        );
        guard
    }

    /// A ready python sandbox with default limits, as the pool would hand out: restored
    /// from the template where the backend can checkpoint, booted otherwise.
    pub async fn python(&self, backend: &dyn Backend, label: &str) -> SandboxGuard {
        if backend.supports_checkpoint() {
            self.restore(backend, label).await
        } else {
            self.boot(backend, label, SandboxKind::Python, Limits::default())
                .await
        }
    }
}
