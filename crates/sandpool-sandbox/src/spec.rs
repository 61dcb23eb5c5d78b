//! What a sandbox is made of: image root, kind, limits, network policy.

use std::path::PathBuf;

/// Where the agent bundle (agent executable and Python driver) is mounted, read-only,
/// inside every sandbox.
pub const AGENT_MOUNT_POINT: &str = "/opt/sandpool";
/// The writable directory user code and file operations work in.
pub const DATA_DIR: &str = "/mnt/data";

/// Name of a sandbox as the runtime knows it: lowercase ASCII letters, digits and `-`,
/// 1–64 characters. Chosen by sandpool, never by a user, and safe to use in paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(String);

impl SandboxId {
    pub fn new(id: impl Into<String>) -> Result<Self, crate::SandboxError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(SandboxId(id))
        } else {
            Err(crate::SandboxError::InvalidSpec(format!("bad sandbox id {id:?}")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SandboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What runs inside: decides whether the agent starts the Python driver or a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxKind {
    /// IPython driver for code execution, plus shell and files.
    Python,
    /// Shell commands and files only.
    Shell,
    /// A user's container image: the agent runs [`SandboxSpec::workload`] and carries TCP
    /// streams to it; shell (when the image has a shell) and files also work.
    Custom,
}

impl SandboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Python => "python",
            SandboxKind::Shell => "shell",
            SandboxKind::Custom => "custom",
        }
    }
}

/// The program a [`SandboxKind::Custom`] sandbox runs, as its image (and pool) configure
/// it. The agent starts it in its own process group and reports its exit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Workload {
    /// Entrypoint followed by command (pool overrides already applied); not empty.
    pub argv: Vec<String>,
    /// The image's environment (`KEY=value` pairs split); [`SandboxSpec::env`] is applied
    /// over it, and sandpool's own variables over both.
    pub env: Vec<(String, String)>,
    /// Absolute working directory (the image's `WorkingDir`); `/` when `None`.
    pub cwd: Option<String>,
    /// The image's `User`: `uid`, `uid:gid`, `name`, `name:group` (names resolved from
    /// the image's `/etc/passwd` and `/etc/group`); root when `None` or empty.
    pub user: Option<String>,
}

/// Per-sandbox resource limits. Exceeding one fails only that sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Memory of the whole sandbox (user processes, and under gVisor the sandbox kernel
    /// and its tmpfs, which includes `/mnt/data` and `/tmp`).
    pub memory_bytes: u64,
    /// CPU share in millicores (1000 = one core), enforced as a CFS quota.
    pub cpu_millis: u32,
    /// Processes inside the sandbox.
    pub max_processes: u32,
    /// Size of `/mnt/data`.
    pub data_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 1 << 30,
            cpu_millis: 1000,
            max_processes: 256,
            data_bytes: 256 << 20,
        }
    }
}

/// Network reachable from inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum NetworkPolicy {
    /// Only a loopback interface; nothing outside the sandbox is reachable
    /// (`EgressDisabled`).
    #[default]
    Disabled,
    /// Outbound connections through NAT on the host's uplink (`EgressEnabled`), limited
    /// by the [`EgressConfig`]. Never to the host itself, other sandboxes, link-local or
    /// metadata addresses.
    Enabled(EgressConfig),
}

/// What an egress-enabled sandbox may reach, and how much.
///
/// With both lists empty every public IPv4 address is reachable (private ranges are
/// not). With either list non-empty only the listed CIDRs and the addresses sandpool's
/// resolver returned for the listed domains are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EgressConfig {
    /// IPv4 networks, e.g. `203.0.113.0/24` or `198.51.100.7`; may open private ranges.
    pub allow_cidrs: Vec<String>,
    /// Domain names: `example.com` (exactly that name) or `*.example.com` (any name
    /// below it, not `example.com` itself).
    pub allow_domains: Vec<String>,
    /// Bandwidth per direction, bytes per second.
    pub bandwidth_bytes_per_sec: u64,
    /// Concurrent outbound connections.
    pub max_connections: u32,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow_cidrs: Vec::new(),
            allow_domains: Vec::new(),
            bandwidth_bytes_per_sec: 64 << 20,
            max_connections: 1024,
        }
    }
}

impl EgressConfig {
    /// True when only listed destinations are reachable.
    pub fn is_allow_list(&self) -> bool {
        !self.allow_cidrs.is_empty() || !self.allow_domains.is_empty()
    }
}

/// The agent bundle on the host: a directory holding the agent executable and the
/// Python driver, mounted read-only at [`AGENT_MOUNT_POINT`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentRuntime {
    pub host_dir: PathBuf,
    /// argv of the agent inside the sandbox, e.g. `["/opt/sandpool/sandpool", "agent"]`.
    pub argv: Vec<String>,
}

/// Everything a backend needs to create one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SandboxSpec {
    pub id: SandboxId,
    /// Root filesystem of the image on the host; mounted read-only.
    pub rootfs: PathBuf,
    /// Content address of the image, part of a template's key.
    pub image_digest: String,
    pub kind: SandboxKind,
    pub limits: Limits,
    pub network: NetworkPolicy,
    pub agent: AgentRuntime,
    /// Extra environment for the agent (and so the user code).
    pub env: Vec<(String, String)>,
    /// What a [`SandboxKind::Custom`] sandbox runs; `None` for the other kinds.
    pub workload: Option<Workload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_ids_are_path_safe() {
        assert!(SandboxId::new("sp-python-0001").is_ok());
        for bad in ["", "../x", "A", "a/b", "a b", &"x".repeat(65)] {
            assert!(SandboxId::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
