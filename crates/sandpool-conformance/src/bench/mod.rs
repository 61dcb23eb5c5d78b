//! Parts of the `sandbox-bench` binary that are worth testing on their own:
//! percentiles, PSS accounting of a sandbox's host processes, and the agent run
//! directly on the host as the no-sandbox baseline.

pub mod host_agent;
pub mod pss;
pub mod stats;
