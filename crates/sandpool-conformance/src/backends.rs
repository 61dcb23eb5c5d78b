//! Builds the real backends by name, with their state under the test data dir, and
//! removes sandboxes that earlier, crashed test processes left behind.

use crate::SetupError;
use sandpool_gvisor::{GvisorBackend, GvisorConfig};
use sandpool_runc::{RuncBackend, RuncConfig};
use sandpool_sandbox::Backend;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The platform the first gVisor backend of this process probed; later ones reuse it
/// (the probe waits out platforms that hang, e.g. kvm here).
static PROBED_PLATFORM: OnceLock<String> = OnceLock::new();

/// Serialises backend creation within this process.
static CREATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where backend `name` keeps its state: shared by test runs so templates are reused.
pub fn state_dir(name: &str, data_dir: &Path) -> PathBuf {
    data_dir.join("conformance").join(format!("{name}-state"))
}

/// A `gvisor` or `runc` backend. The gVisor platform is probed by the backend unless
/// `SANDPOOL_GVISOR_PLATFORM` names one.
pub async fn create(name: &str, data_dir: &Path) -> Result<Box<dyn Backend>, SetupError> {
    let state_dir = state_dir(name, data_dir);
    let failed = |e: &dyn std::fmt::Display| SetupError::Backend {
        backend: name.to_string(),
        message: e.to_string(),
    };
    match name {
        "gvisor" => {
            // Backends sharing a state dir must not probe at the same time.
            let _creating = CREATING.lock().await;
            let platform = std::env::var("SANDPOOL_GVISOR_PLATFORM")
                .ok()
                .filter(|p| !p.is_empty());
            let config = GvisorConfig {
                state_dir,
                runsc: PathBuf::from("runsc"),
                platform: platform.or_else(|| PROBED_PLATFORM.get().cloned()),
            };
            let backend = GvisorBackend::new(config).await.map_err(|e| failed(&e))?;
            let _ = PROBED_PLATFORM.set(backend.platform().to_string());
            Ok(Box::new(backend))
        }
        "runc" => {
            let config = RuncConfig {
                state_dir,
                runc: PathBuf::from("runc"),
            };
            Ok(Box::new(RuncBackend::new(config).await.map_err(|e| failed(&e))?))
        }
        other => Err(SetupError::UnknownBackend(other.to_string())),
    }
}

/// Removes this suite's sandboxes (`cf-<pid>-…`) whose test process is gone.
pub async fn remove_orphans(backend: &dyn Backend) -> Result<usize, SetupError> {
    let mut removed = 0;
    for id in backend.leftovers().await? {
        let Some(pid) = id.as_str().strip_prefix("cf-").and_then(|r| r.split('-').next()) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            tracing::info!(sandbox = %id, "removing a sandbox left by an earlier test run");
            backend.remove_leftover(&id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
