//! What the core asks its driver to do, and the ids of the sandboxes it tracks.

use crate::{DestroyReason, EndReason, Identifier, PoolError};

/// A sandbox slot of one pool. Ids are never reused within a [`crate::PoolCore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId(pub u64);

impl std::fmt::Display for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "slot-{}", self.0)
    }
}

/// Work for the driver, in the order the core produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a sandbox for `slot`, then report `slot_ready` or `slot_start_failed`.
    StartSandbox { slot: SlotId },
    /// Destroy the sandbox of a started slot, then report `slot_destroyed`.
    DestroySandbox { slot: SlotId, reason: DestroyReason },
    /// `identifier`'s session now runs on `slot`: record it and wake every request
    /// waiting for that identifier. Emitted for every allocation, waited for or not.
    NotifyAllocated { identifier: Identifier, slot: SlotId },
    /// Fail every request waiting for `identifier` with `error`; the session is gone.
    FailWaiters {
        identifier: Identifier,
        error: PoolError,
    },
    /// `identifier`'s session on `slot` ended with `reason`: record it.
    SessionEnded {
        identifier: Identifier,
        slot: SlotId,
        reason: EndReason,
    },
}
