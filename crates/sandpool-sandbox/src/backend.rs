//! The backend and sandbox traits.

use crate::{AgentClient, SandboxError, SandboxId, SandboxSpec};
use async_trait::async_trait;
use std::path::PathBuf;

/// A checkpoint of a warmed-up sandbox that new sandboxes are restored from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Hash of everything that must match at restore time (image, limits, agent, kind).
    pub key: String,
    pub path: PathBuf,
}

/// Why a sandbox ended on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Killed for exceeding its memory limit.
    OutOfMemory,
    /// Exited or crashed; `detail` says how (exit status, signal).
    Crashed { detail: String },
    /// Ended by [`Sandbox::destroy`].
    Destroyed,
}

/// Resource usage as the host sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxStats {
    pub memory_bytes: u64,
    pub host_pids: u64,
}

/// An isolation runtime.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Short name used in logs, metrics and config (`gvisor`, `runc`).
    fn name(&self) -> &'static str;

    /// Whether [`Backend::build_template`] and restoring from a template work.
    fn supports_checkpoint(&self) -> bool;

    /// Boots a sandbox from `spec`, asks its agent to import `warm_modules`, and
    /// checkpoints it into a template stored under the backend's data directory.
    /// Returns [`SandboxError::Unsupported`] where checkpointing is not possible.
    async fn build_template(
        &self,
        spec: &SandboxSpec,
        warm_modules: &[String],
    ) -> Result<Template, SandboxError>;

    /// Creates and starts a sandbox: restored from `template` when given, booted
    /// otherwise. Returns once the agent has answered `Hello` (and, after a restore,
    /// `Reseed`).
    async fn create(
        &self,
        spec: &SandboxSpec,
        template: Option<&Template>,
    ) -> Result<Box<dyn Sandbox>, SandboxError>;

    /// Sandboxes this backend left behind (e.g. after a crash of the service).
    async fn leftovers(&self) -> Result<Vec<SandboxId>, SandboxError>;

    /// Kills and removes a leftover sandbox and everything created for it on the host.
    async fn remove_leftover(&self, id: &SandboxId) -> Result<(), SandboxError>;
}

/// A running sandbox.
#[async_trait]
pub trait Sandbox: Send + Sync {
    fn id(&self) -> &SandboxId;

    /// The channel to the agent inside.
    fn agent(&self) -> &AgentClient;

    /// True when this sandbox was restored from a template rather than booted.
    fn restored(&self) -> bool;

    /// Host-side resource usage.
    async fn stats(&self) -> Result<SandboxStats, SandboxError>;

    /// Resolves when the sandbox has ended, with why. Safe to call from several tasks.
    async fn wait_exit(&self) -> ExitReason;

    /// Kills the sandbox and removes everything created for it on the host. Idempotent.
    async fn destroy(&self) -> Result<(), SandboxError>;
}
