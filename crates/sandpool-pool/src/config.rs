//! Settings of one pool that the core enforces, and how a caller asks for a session.

use std::time::Duration;

/// The sizing and timing of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// How many sandboxes to keep ready (or starting) for new sessions.
    pub ready_instances: u32,
    /// Most sessions live at once (allocated, or waiting for a sandbox).
    pub max_concurrent: u32,
    /// A session with no request for this long ends with reason `cooldown`.
    pub cooldown: Duration,
    /// Longest a request waits for a sandbox (or, in wait mode, for capacity).
    pub allocation_timeout: Duration,
    /// Sessions end with reason `max-alive` this long after they started, busy or not.
    pub max_alive: Option<Duration>,
    /// Most requests queued for capacity in [`AllocateMode::Wait`]; beyond it they fail at once.
    pub max_queued: u32,
}

impl PoolConfig {
    /// A config with no lifetime limit and a capacity queue of 64 requests.
    pub fn new(
        ready_instances: u32,
        max_concurrent: u32,
        cooldown: Duration,
        allocation_timeout: Duration,
    ) -> Self {
        PoolConfig {
            ready_instances,
            max_concurrent,
            cooldown,
            allocation_timeout,
            max_alive: None,
            max_queued: 64,
        }
    }
}

/// What a request for an unknown identifier does when the pool is at `max_concurrent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocateMode {
    /// Fail at once with `AtCapacity` (Azure's behaviour).
    #[default]
    FailFast,
    /// Queue (bounded by `max_queued` and `allocation_timeout`) until a session ends.
    Wait,
}
