//! Parts of the bench binaries (`sandbox-bench`, `warm-up-bench`) kept out of them:
//! percentiles, PSS accounting of a sandbox's host processes, the agent run directly on
//! the host as the no-sandbox baseline, and the cells and logging they share.

pub mod cells;
pub mod host_agent;
pub mod pss;
pub mod stats;
