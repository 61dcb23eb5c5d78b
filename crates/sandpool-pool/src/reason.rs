//! Why sessions end and why sandboxes are destroyed.

/// Why a session ended. The strings are the API's and the store's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Idle for the pool's cooldown period.
    Cooldown,
    /// Alive for the pool's maximum session lifetime.
    MaxAlive,
    /// Stopped by a client.
    Stopped,
    /// Deleted by a client.
    Deleted,
    /// The sandbox ran out of memory.
    Oom,
    /// The sandbox exited or crashed.
    Crashed,
    /// The sandbox stopped answering liveness checks.
    LivenessFailed,
    /// The pool was deleted.
    PoolDeleted,
    /// The server restarted (or shut down) while the session was live.
    ServerRestart,
    /// A custom container's process exited (lifecycle `OnContainerExit`).
    ContainerExited,
}

impl EndReason {
    pub const ALL: [EndReason; 10] = [
        EndReason::Cooldown,
        EndReason::MaxAlive,
        EndReason::Stopped,
        EndReason::Deleted,
        EndReason::Oom,
        EndReason::Crashed,
        EndReason::LivenessFailed,
        EndReason::PoolDeleted,
        EndReason::ServerRestart,
        EndReason::ContainerExited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Cooldown => "cooldown",
            EndReason::MaxAlive => "max-alive",
            EndReason::Stopped => "stopped",
            EndReason::Deleted => "deleted",
            EndReason::Oom => "oom",
            EndReason::Crashed => "crashed",
            EndReason::LivenessFailed => "liveness-failed",
            EndReason::PoolDeleted => "pool-deleted",
            EndReason::ServerRestart => "server-restart",
            EndReason::ContainerExited => "container-exited",
        }
    }

    /// The reason named by `s` (as produced by [`EndReason::as_str`]).
    pub fn parse(s: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the core asks the driver to destroy a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyReason {
    /// The session on the sandbox ended.
    SessionEnded(EndReason),
    /// The pool has more ready sandboxes than it wants (scale-down, timed-out request).
    Surplus,
    /// A sandbox without a session died; the driver cleans up what is left of it.
    Died(EndReason),
    /// The pool is shutting down (deleted, or the server is stopping).
    Shutdown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for r in EndReason::ALL {
            assert_eq!(EndReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(EndReason::LivenessFailed.to_string(), "liveness-failed");
        assert_eq!(EndReason::parse("bogus"), None);
    }
}
