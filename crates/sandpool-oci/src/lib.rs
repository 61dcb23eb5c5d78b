//! What the OCI-runtime backends (gVisor's `runsc`, `runc`) share: the OCI runtime
//! bundle (`config.json`) built from a [`sandpool_sandbox::SandboxSpec`], the per-sandbox
//! cgroup sandpool creates and reads, the runtime CLI run as a child process, and the
//! [`sandpool_sandbox::Sandbox`] implementation around a running `run`/`restore` child.

mod bundle;
mod cgroup;
mod config;
mod environment;
mod error;
mod image_user;
mod launch;
mod log_tail;
mod network;
mod running;
mod runtime;
pub mod seccomp;

pub use bundle::{build_config, BundleLayout, BundleOptions, Flavour, Preload};
pub use cgroup::{CgroupLimits, SandboxCgroup};
pub use config::{Hook, Hooks, Linux, Mount, Namespace, Process, Rlimit, Root, RuntimeConfig};
pub use environment::{custom_env, sandbox_env, DEFAULT_IMAGE_PATH};
pub use error::OciError;
pub use image_user::{resolve_image_user, ImageUser};
pub use launch::{launch, list_leftovers, remove_leftover, LaunchRequest};
pub use log_tail::tail_of_files;
pub use network::{bring_loopback_up, find_ip_binary, join_network};
pub use running::OciSandbox;
pub use runtime::OciRuntime;
