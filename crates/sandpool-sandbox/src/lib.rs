//! The isolation-backend trait every sandbox runtime implements (gVisor, runc, later
//! Kubernetes or microVMs), the description of a sandbox to create, and the host side of
//! the channel to the agent running inside it.
//!
//! Callers (the engine) see only [`Backend`] and [`Sandbox`]; which runtime is behind
//! them is a configuration choice, never an `if` in the caller.

mod agent_client;
mod agent_stream;
mod backend;
mod error;
mod spec;

pub use agent_client::{unexpected_response, AgentClient};
pub use agent_stream::AgentStream;
pub use backend::{Backend, ExitReason, Sandbox, SandboxStats, Template};
pub use error::SandboxError;
pub use spec::{
    AgentRuntime, EgressConfig, Limits, NetworkPolicy, SandboxId, SandboxKind, SandboxSpec, Workload,
    AGENT_MOUNT_POINT, DATA_DIR,
};
