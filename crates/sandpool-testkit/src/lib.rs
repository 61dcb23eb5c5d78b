//! What the backend and network integration tests share: the real agent bundle, real
//! images, throwaway directories, and agent calls with bounded waits. Test support only:
//! no product crate depends on it.

pub mod internet;
pub mod serve;

use sandpool_proto::{ExecutionResult, Request, Response, ShellResult};
use sandpool_sandbox::{AgentRuntime, Limits, NetworkPolicy, Sandbox, SandboxId, SandboxKind, SandboxSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `SANDPOOL_TEST_DATA`, else `<workspace>/target/test-data`.
pub fn test_data() -> PathBuf {
    let dir = std::env::var_os("SANDPOOL_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-data"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh directory under the test data directory, removed at the end of the test.
pub fn scratch(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(test_data())
        .unwrap()
}

/// The agent executable: `SANDPOOL_AGENT_EXE` if set, else the one cargo built beside
/// the running test (`target/<profile>/sandpool-agent`, wherever `CARGO_TARGET_DIR`
/// puts it), else `<workspace>/target/debug/sandpool-agent`.
pub fn agent_exe() -> PathBuf {
    if let Some(exe) = std::env::var_os("SANDPOOL_AGENT_EXE").filter(|p| !p.is_empty()) {
        return PathBuf::from(exe);
    }
    let beside_test = std::env::current_exe().ok().and_then(|test| {
        // A test binary lives in target/<profile>/deps/.
        let profile_dir = test.parent()?.parent()?;
        Some(profile_dir.join("sandpool-agent"))
    });
    match beside_test {
        Some(exe) if exe.is_file() => exe,
        _ => workspace_root().join("target/debug/sandpool-agent"),
    }
}

/// Installs the real agent (see [`agent_exe`]) into `dir`.
pub fn agent_bundle(dir: &Path) -> AgentRuntime {
    let exe = agent_exe();
    assert!(
        exe.is_file(),
        "agent executable {} missing: run `cargo build -p sandpool-agent` first",
        exe.display()
    );
    sandpool_agent::install_bundle(dir, &exe).unwrap();
    AgentRuntime {
        host_dir: dir.to_path_buf(),
        argv: vec!["/opt/sandpool/sandpool-agent".into()],
    }
}

/// The real image for `kind`, built into the test data directory if needed.
pub async fn image(kind: SandboxKind) -> sandpool_image::Image {
    tokio::task::spawn_blocking(move || {
        let recipe = match kind {
            SandboxKind::Python => sandpool_image::recipes::python(),
            SandboxKind::Shell => sandpool_image::recipes::shell(),
            SandboxKind::Custom => panic!("custom sandboxes use the python image with a workload"),
        };
        sandpool_image::ImageStore::new(test_data())
            .ensure(&recipe, &mut |line| eprintln!("image: {line}"))
            .unwrap()
    })
    .await
    .unwrap()
}

pub fn spec(id: &str, kind: SandboxKind, image: &sandpool_image::Image, agent: &AgentRuntime) -> SandboxSpec {
    SandboxSpec {
        id: SandboxId::new(id).unwrap(),
        rootfs: image.rootfs.clone(),
        image_digest: image.digest.clone(),
        kind,
        limits: Limits::default(),
        network: NetworkPolicy::Disabled,
        agent: agent.clone(),
        env: vec![],
        workload: None,
    }
}

pub async fn shell(sandbox: &dyn Sandbox, command: &str) -> ShellResult {
    let request = Request::Shell {
        command: command.into(),
        timeout_ms: 60_000,
    };
    match tokio::time::timeout(CALL_TIMEOUT, sandbox.agent().call(request)).await {
        Ok(Ok(Response::Shell(result))) => result,
        other => panic!("shell {command:?}: {other:?}"),
    }
}

pub async fn execute(sandbox: &dyn Sandbox, code: &str) -> ExecutionResult {
    let request = Request::Execute {
        code: code.into(),
        timeout_ms: 60_000,
    };
    match tokio::time::timeout(CALL_TIMEOUT, sandbox.agent().call(request)).await {
        Ok(Ok(Response::Execution(result))) => result,
        other => panic!("execute {code:?}: {other:?}"),
    }
}

/// The `text/plain` value of a cell's last expression.
pub fn value(result: &ExecutionResult) -> String {
    result
        .result
        .as_ref()
        .and_then(|bundle| bundle.get("text/plain"))
        .cloned()
        .unwrap_or_else(|| panic!("no value: {result:?}"))
}

/// Cgroup directories named `id` below `/sys/fs/cgroup/*/sandpool/*/`.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let Ok(instances) = std::fs::read_dir(hierarchy.path().join("sandpool")) else {
            continue;
        };
        for instance in instances.flatten() {
            let dir = instance.path().join(id);
            if dir.is_dir() {
                found.push(dir);
            }
        }
    }
    found
}

/// The CFS quota (`cpu.cfs_quota_us`) of sandbox `id`'s cpu cgroup.
pub fn cpu_quota(id: &str) -> Option<i64> {
    cpu_setting(id, "cpu.cfs_quota_us")
}

/// The CFS burst allowance (`cpu.cfs_burst_us`) of sandbox `id`'s cpu cgroup; `None` also
/// on kernels without it (before 5.14).
pub fn cpu_burst(id: &str) -> Option<i64> {
    cpu_setting(id, "cpu.cfs_burst_us")
}

fn cpu_setting(id: &str, file: &str) -> Option<i64> {
    cgroup_dirs(id)
        .iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join(file)).ok())
        .find_map(|text| text.trim().parse().ok())
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
