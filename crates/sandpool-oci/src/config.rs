//! The subset of the OCI runtime specification (`config.json`) sandpool writes.

use serde::Serialize;

/// An OCI runtime `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    pub oci_version: String,
    pub process: Process,
    pub root: Root,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    pub linux: Linux,
}

/// OCI lifecycle hooks (runc only).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Run in the container's namespaces before `pivot_root`, with the runtime's
    /// privileges and the host's filesystem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    pub path: String,
    pub args: Vec<String>,
    pub timeout: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub capabilities: Capabilities,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(rename = "additionalGids")]
    pub additional_gids: Vec<u32>,
}

/// Every capability set empty: the sandbox process has no capabilities at all.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    pub cgroups_path: String,
    pub resources: Resources,
    pub namespaces: Vec<Namespace>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resources {
    pub memory: MemoryResources,
    pub cpu: CpuResources,
    pub pids: PidsResources,
    pub devices: Vec<DeviceRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryResources {
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuResources {
    pub quota: i64,
    pub period: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PidsResources {
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub access: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    /// Join this namespace (e.g. `/run/netns/<name>`) instead of creating one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
