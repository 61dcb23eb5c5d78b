//! A sandbox owned by a test: destroyed on every path out of the test, including a
//! failed assertion (the guard's `Drop` destroys it synchronously).

use sandpool_sandbox::{AgentClient, Sandbox};
use std::time::Duration;

/// Upper bound on destroying one sandbox.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(60);

/// Owns one sandbox. Needs a multi-threaded tokio runtime (the `Drop` uses
/// `block_in_place`).
pub struct SandboxGuard {
    sandbox: Option<Box<dyn Sandbox>>,
}

impl SandboxGuard {
    pub fn new(sandbox: Box<dyn Sandbox>) -> Self {
        SandboxGuard {
            sandbox: Some(sandbox),
        }
    }

    pub fn sandbox(&self) -> &dyn Sandbox {
        self.sandbox.as_deref().expect("sandbox present until destroyed")
    }

    pub fn agent(&self) -> &AgentClient {
        self.sandbox().agent()
    }

    /// Destroys the sandbox now, reporting failure (a leak) as a panic.
    pub async fn destroy(mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            match tokio::time::timeout(DESTROY_TIMEOUT, sandbox.destroy()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("destroying sandbox {} failed: {e}", sandbox.id()),
                Err(_) => panic!(
                    "destroying sandbox {} took over {DESTROY_TIMEOUT:?}",
                    sandbox.id()
                ),
            }
        }
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        let Some(sandbox) = self.sandbox.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::error!(id = %sandbox.id(), "sandbox guard dropped outside a runtime; sandbox leaked");
            return;
        };
        let result = tokio::task::block_in_place(|| {
            handle.block_on(tokio::time::timeout(DESTROY_TIMEOUT, sandbox.destroy()))
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(id = %sandbox.id(), error = %e, "destroying sandbox failed"),
            Err(_) => tracing::error!(id = %sandbox.id(), "destroying sandbox timed out"),
        }
    }
}
