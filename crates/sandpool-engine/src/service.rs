//! What the engine offers the HTTP layer: session-addressed operations on pools.

use async_trait::async_trait;
pub use sandpool_pool::{EndReason, Identifier};
pub use sandpool_proto::{
    ExecutionError, ExecutionResult, ExecutionStatus, FileEntry, MimeBundle, ShellResult,
};
use std::time::{Duration, SystemTime};

/// The kind of sessions a pool hands out (Azure's `containerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerType {
    /// Python code interpreter (`PythonLTS`).
    PythonLts,
    /// Shell sessions (`Shell`).
    Shell,
    /// The pool's own container image, reached through the HTTP proxy (`CustomContainer`).
    CustomContainer,
}

/// What a client may want to know about a pool on the data plane.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolInfo {
    pub name: String,
    pub container_type: ContainerType,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Longest accepted execution timeout.
    pub max_execution_timeout: Duration,
}

/// Lifecycle of a session as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Allocated,
    Deleting,
    Ended,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub identifier: Identifier,
    pub state: SessionState,
    pub created_at: SystemTime,
    pub last_accessed_at: SystemTime,
    /// When the cooldown will end the session if no request arrives.
    pub expires_at: SystemTime,
    /// Id of the sandbox behind the session (Azure's `etag`).
    pub sandbox_id: String,
    pub end_reason: Option<EndReason>,
}

/// An execution request, for either a Python or a Shell pool.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionInput {
    Python { code: String },
    Shell { command: String },
}

/// Status of a recorded execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    Succeeded,
    Failed,
}

/// The output of a finished execution.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ExecutionOutput {
    Python(ExecutionResult),
    Shell(ShellResult),
}

/// An execution as recorded by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    pub id: String,
    pub identifier: Identifier,
    pub state: ExecutionState,
    pub output: Option<ExecutionOutput>,
    /// Set when the execution could not run at all (sandbox died, ...).
    pub error: Option<String>,
    pub created_at: SystemTime,
}

/// Runtime and packages of a pool's image (`GET metadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMetadata {
    pub runtimes: Vec<(String, String)>,
    pub packages: Vec<(String, String)>,
    pub created_at: SystemTime,
}

/// A TCP connection to a port inside a session's sandbox, carried by the agent channel.
/// The session is held (its cooldown does not run) until this value is dropped.
pub struct SessionConnection {
    pub stream: sandpool_sandbox::AgentStream,
    /// The container port connected to.
    pub port: u16,
    /// Keeps the session leased; dropping it releases the session.
    pub lease: Box<dyn Send + Sync>,
}

/// Errors the HTTP layer maps to status codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("pool {0:?} does not exist")]
    PoolNotFound(String),
    /// The pool exists but is not (yet) able to serve: preparing, failed or deleting.
    #[error("pool {pool:?} is not ready: {state}")]
    PoolNotReady { pool: String, state: String },
    #[error("session {0:?} does not exist")]
    SessionNotFound(String),
    #[error("execution {0:?} does not exist")]
    ExecutionNotFound(String),
    #[error("file {0:?} does not exist")]
    FileNotFound(String),
    /// The pool already has `maxConcurrentSessions` allocated sessions.
    #[error("pool {pool:?} is at its limit of {max} concurrent sessions")]
    AtCapacity {
        pool: String,
        max: u32,
        /// When the first idle session would end by cooldown: a hint for `Retry-After`.
        retry_after: Duration,
    },
    /// No sandbox became ready within the allocation timeout.
    #[error("no sandbox became ready in pool {pool:?} within {waited:?}")]
    AllocationTimeout { pool: String, waited: Duration },
    #[error("invalid path {0:?}: paths must stay inside /mnt/data")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("upload of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("the session's storage is full")]
    NoSpace,
    #[error("this operation is not available on a {0:?} pool")]
    WrongPoolType(ContainerType),
    /// Nothing accepted the connection to the container's target port.
    #[error("the container is not reachable on port {port}: {detail}")]
    ContainerUnreachable { port: u16, detail: String },
    /// The session's sandbox died (its end reason is recorded).
    #[error("the session ended: {0}")]
    SessionLost(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Session-addressed operations. Every method that takes an identifier allocates a
/// session for an unknown one (from the ready set when possible) and resets the
/// session's cooldown, unless its doc says otherwise.
#[async_trait]
pub trait SessionService: Send + Sync + 'static {
    async fn pool(&self, pool: &str) -> Result<PoolInfo, EngineError>;

    /// Runs an execution to completion (bounded by `timeout`).
    async fn execute(
        &self,
        pool: &str,
        id: &Identifier,
        input: ExecutionInput,
        timeout: Duration,
        execution_id: Option<String>,
    ) -> Result<ExecutionRecord, EngineError>;

    /// Starts an execution in the background and returns it in state `Running`.
    async fn submit(
        &self,
        pool: &str,
        id: &Identifier,
        input: ExecutionInput,
        timeout: Duration,
        execution_id: Option<String>,
    ) -> Result<ExecutionRecord, EngineError>;

    /// A previously started execution. Does not allocate.
    async fn execution(
        &self,
        pool: &str,
        id: &Identifier,
        execution_id: &str,
    ) -> Result<ExecutionRecord, EngineError>;

    /// Writes a file under `/mnt/data` (`path` relative to it).
    async fn write_file(
        &self,
        pool: &str,
        id: &Identifier,
        path: &str,
        data: Vec<u8>,
    ) -> Result<FileEntry, EngineError>;
    async fn read_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<Vec<u8>, EngineError>;
    async fn stat_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<FileEntry, EngineError>;
    async fn list_files(
        &self,
        pool: &str,
        id: &Identifier,
        dir: &str,
        recursive: bool,
    ) -> Result<Vec<FileEntry>, EngineError>;
    async fn delete_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<(), EngineError>;

    /// A live session. Does not allocate; `SessionNotFound` for unknown identifiers.
    async fn session(&self, pool: &str, id: &Identifier) -> Result<SessionInfo, EngineError>;
    /// Ends a session with `reason`. Returns false when there was no such session.
    async fn end_session(&self, pool: &str, id: &Identifier, reason: EndReason) -> Result<bool, EngineError>;
    /// Live sessions of a pool.
    async fn list_sessions(&self, pool: &str) -> Result<Vec<SessionInfo>, EngineError>;
    async fn metadata(&self, pool: &str) -> Result<PoolMetadata, EngineError>;

    /// Opens a connection to the pool's target port inside the session of `id`
    /// (`CustomContainer` pools only), allocating a session for an unknown identifier.
    async fn connect(&self, pool: &str, id: &Identifier) -> Result<SessionConnection, EngineError> {
        let _ = id;
        Err(EngineError::WrongPoolType(self.pool(pool).await?.container_type))
    }
}
