//! Why the pool core refuses or abandons a request.

use crate::EndReason;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool already has `max` live sessions. `retry_after` is when the first one
    /// could end by cooldown if it stays idle.
    #[error("the pool is at its limit of {max} concurrent sessions; retry after {retry_after:?}")]
    AtCapacity { max: u32, retry_after: Duration },
    /// No sandbox became ready for the session in time.
    #[error("no sandbox became ready within {waited:?}{}", last_start_error.as_ref().map(|e| format!(" (last start failure: {e})")).unwrap_or_default())]
    AllocationTimeout {
        waited: Duration,
        last_start_error: Option<String>,
    },
    /// The session ended before a sandbox was allocated to it.
    #[error("the session ended before it was allocated: {0}")]
    SessionEnded(EndReason),
    /// The pool is shutting down and takes no new sessions.
    #[error("the pool is shutting down")]
    ShuttingDown,
}
