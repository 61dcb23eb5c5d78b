//! runc isolation backend (weaker: shared kernel). Every sandbox is a runc container
//! with its own pid, ipc, uts, mount and network namespaces, Docker's default seccomp
//! allowlist, no capabilities, `no_new_privs`, masked `/proc` paths and cgroup limits.
//! It cannot checkpoint (CRIU does not work on our hosts).

mod backend;
mod error;

pub use backend::{RuncBackend, RuncConfig};
pub use error::RuncError;
