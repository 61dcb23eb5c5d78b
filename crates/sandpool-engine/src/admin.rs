//! What the engine offers the management API: live pool administration, session
//! history, API keys, the audit log and metrics. Plain types; the API renders them.

use crate::service::{EngineError, SessionInfo};
use crate::PoolSpec;
use async_trait::async_trait;
use sandpool_pool::Counts;
use std::time::SystemTime;

/// Where a pool's preparation (image, template) stands (ARM's `provisioningState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningState {
    InProgress,
    Succeeded,
    Failed,
    Deleting,
}

impl ProvisioningState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningState::InProgress => "InProgress",
            ProvisioningState::Succeeded => "Succeeded",
            ProvisioningState::Failed => "Failed",
            ProvisioningState::Deleting => "Deleting",
        }
    }
}

/// A pool as the management API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStatus {
    pub spec: PoolSpec,
    pub state: ProvisioningState,
    /// Why the last preparation failed.
    pub error: Option<String>,
    pub counts: Counts,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// An API key as recorded (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    /// `admin`, `executor` or `metrics`.
    pub role: String,
    pub created_at: SystemTime,
    pub revoked_at: Option<SystemTime>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: SystemTime,
    pub actor: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Turns pool specs into the text the store keeps and back (the API crate's JSON
/// schema), so the engine persists pools without knowing their serialised form.
pub trait PoolCodec: Send + Sync + 'static {
    fn encode(&self, spec: &PoolSpec) -> String;
    fn decode(&self, name: &str, text: &str) -> Result<PoolSpec, String>;
}

/// Management operations. Pool changes apply live and persist in the store.
#[async_trait]
pub trait AdminService: Send + Sync + 'static {
    /// Creates the pool (preparing it in the background) or, if it exists, updates it.
    /// Returns the pool and whether it was created.
    async fn put_pool(&self, spec: PoolSpec) -> Result<(PoolStatus, bool), EngineError>;
    async fn get_pool(&self, name: &str) -> Result<PoolStatus, EngineError>;
    async fn list_pools(&self) -> Vec<PoolStatus>;
    /// Drains the pool: its sessions end with `pool-deleted`. Session history is kept.
    async fn delete_pool(&self, name: &str) -> Result<(), EngineError>;
    /// Live sessions, then ended ones (with their end reason) from the store.
    async fn pool_sessions(&self, name: &str) -> Result<Vec<SessionInfo>, EngineError>;

    /// Creates a key with `role`; returns the record and the key (shown once).
    async fn create_api_key(&self, name: &str, role: &str) -> Result<(ApiKeyInfo, String), EngineError>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, EngineError>;
    /// False if there is no such live key.
    async fn revoke_api_key(&self, id: &str) -> Result<bool, EngineError>;
    /// The live key a client presented. Blocking (one indexed SQLite lookup).
    fn lookup_api_key(&self, key: &str) -> Result<Option<ApiKeyInfo>, EngineError>;

    async fn audit(&self, actor: &str, action: &str, target: &str, detail: &str) -> Result<(), EngineError>;
    /// Newest first, entries with `seq` below `before`.
    async fn audit_log(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditRecord>, EngineError>;

    /// Prometheus text exposition.
    fn render_metrics(&self) -> String;
    /// Counts one answered HTTP request.
    fn http_request(&self, method: &str, status: u16);
}
