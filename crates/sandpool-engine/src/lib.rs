//! Runs pools: keeps ready sandboxes per pool by driving the `sandpool-pool` core with
//! real sandboxes from an isolation backend, routes identifiers to their sessions,
//! ends sessions after their cooldown, and records everything in the store.
//!
//! The HTTP layer sees only the [`SessionService`] trait and the plain types in
//! [`service`]; it never touches sandboxes, backends or the database.

pub mod admin;
mod agent_ops;
pub mod clock;
mod custom_prepare;
pub mod custom_spec;
mod egress_metrics;
mod engine;
mod factory;
pub mod metrics;
mod pool_admin;
mod pool_entry;
mod pool_spec;
mod prepare;
mod probe;
mod recorder;
mod runner;
pub mod service;

pub use admin::*;
pub use clock::{Clock, ManualClock, SystemClock};
pub use custom_spec::*;
pub use engine::{Engine, EngineConfig};
pub use metrics::Metrics;
pub use pool_spec::PoolSpec;
pub use sandpool_pool::Counts;
pub use sandpool_sandbox::{EgressConfig, NetworkPolicy};
pub use service::*;
