//! Embedded SQLite state: pools, sessions, executions, API keys and the audit log.
//! One [`Store`] wraps one connection (WAL mode, schema migrated on open); its API is
//! synchronous, so async callers run it on a blocking thread. Times are unix millis.

mod api_keys;
mod audit;
mod error;
mod executions;
mod pools;
mod schema;
mod sessions;
mod store;

pub use api_keys::{key_hash, ApiKeyRecord};
pub use audit::AuditEntry;
pub use error::StoreError;
pub use executions::{ExecutionRecord, ExecutionState};
pub use pools::PoolRecord;
pub use schema::SCHEMA_VERSION;
pub use sessions::{NewSession, SessionRecord, SessionState};
pub use store::Store;
