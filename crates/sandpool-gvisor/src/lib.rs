//! gVisor (runsc) isolation backend: every sandbox is a runsc container with its own
//! sandbox kernel, booted from an OCI bundle or restored from a checkpointed, warmed-up
//! template.

mod backend;
mod compat;
mod error;
mod platform;
mod platform_cache;
mod template;

pub use backend::{GvisorBackend, GvisorConfig};
pub use error::GvisorError;
pub use platform::{probe_platform, PLATFORM_CANDIDATES};
