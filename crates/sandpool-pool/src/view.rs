//! Read-only views of a pool for metrics and listings.

use crate::{Identifier, Millis, SlotId};

/// How many slots are in each state, and how many sessions wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub ready: u32,
    pub pending: u32,
    pub allocated: u32,
    pub deleting: u32,
    /// Sessions waiting for a sandbox to become ready.
    pub allocating: u32,
    /// Requests queued for capacity (wait mode).
    pub queued: u32,
}

/// Where a live session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPhase {
    /// Queued until the pool is below `max_concurrent` (wait mode).
    Queued,
    /// Waiting for a sandbox to become ready.
    Allocating,
    /// Running on a sandbox.
    Allocated,
}

/// One live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub identifier: Identifier,
    pub phase: SessionPhase,
    pub slot: Option<SlotId>,
    pub created_at: Millis,
    pub last_access_at: Millis,
    /// When cooldown (or the lifetime limit) ends the session if it stays idle;
    /// `None` while it waits, or while requests hold it.
    pub expires_at: Option<Millis>,
    /// Requests currently holding the session (see `PoolCore::hold`).
    pub in_flight: u32,
}
