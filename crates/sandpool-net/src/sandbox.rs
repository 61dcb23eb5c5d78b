//! [`NetworkedSandbox`]: a sandbox together with its session network, which is removed
//! when the sandbox is destroyed (or dropped).

use crate::SessionNetwork;
use async_trait::async_trait;
use sandpool_sandbox::{AgentClient, ExitReason, Sandbox, SandboxError, SandboxId, SandboxStats};
use std::sync::atomic::{AtomicBool, Ordering};

/// Wraps a backend's sandbox; [`Sandbox::destroy`] destroys it, then its network.
pub struct NetworkedSandbox<S: Sandbox> {
    inner: S,
    network: SessionNetwork,
    removed: AtomicBool,
}

impl<S: Sandbox> NetworkedSandbox<S> {
    pub fn new(inner: S, network: SessionNetwork) -> Self {
        NetworkedSandbox {
            inner,
            network,
            removed: AtomicBool::new(false),
        }
    }
    pub fn network(&self) -> &SessionNetwork {
        &self.network
    }
}

#[async_trait]
impl<S: Sandbox> Sandbox for NetworkedSandbox<S> {
    fn id(&self) -> &SandboxId {
        self.inner.id()
    }
    fn agent(&self) -> &AgentClient {
        self.inner.agent()
    }
    fn restored(&self) -> bool {
        self.inner.restored()
    }
    async fn stats(&self) -> Result<SandboxStats, SandboxError> {
        self.inner.stats().await
    }
    async fn wait_exit(&self) -> ExitReason {
        self.inner.wait_exit().await
    }
    async fn destroy(&self) -> Result<(), SandboxError> {
        let destroyed = self.inner.destroy().await;
        let removed = self.network.remove().await;
        if removed.is_ok() {
            self.removed.store(true, Ordering::SeqCst);
        }
        destroyed?;
        Ok(removed?)
    }
}

impl<S: Sandbox> Drop for NetworkedSandbox<S> {
    fn drop(&mut self) {
        if !self.removed.load(Ordering::SeqCst) {
            self.network.remove_blocking();
        }
    }
}
