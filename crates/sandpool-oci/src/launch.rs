//! Starts a sandbox: spawns the runtime's `run` or `restore` with the agent channel on
//! its piped stdin/stdout (stderr to a log file) and waits for the agent's `Hello`.
//! On any failure everything created for the sandbox is removed again and the error
//! carries the runtime's log tail.

use crate::running::HostParts;
use crate::{BundleLayout, OciRuntime, OciSandbox, SandboxCgroup};
use sandpool_sandbox::{AgentClient, Sandbox, SandboxError, SandboxId};
use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One `run`/`restore` invocation. The bundle (`config.json`) and the cgroup must exist.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    pub runtime: OciRuntime,
    pub id: SandboxId,
    pub bundle: BundleLayout,
    pub cgroup: SandboxCgroup,
    /// Global flags for this invocation only (e.g. `--log <file>`).
    pub extra_global: Vec<OsString>,
    /// The subcommand and its arguments, e.g. `run --bundle <dir> <id>`.
    pub args: Vec<OsString>,
    pub restored: bool,
    pub hello_timeout: Duration,
    /// Run the runtime with `/proc/sys/net` hidden (runsc `--network=sandbox`, see
    /// [`crate::network`]).
    pub hide_proc_sys_net: bool,
}

impl LaunchRequest {
    fn parts(&self) -> HostParts {
        HostParts {
            runtime: self.runtime.clone(),
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            cgroup: self.cgroup.clone(),
        }
    }
}

/// Removes what was created for a sandbox that never started, returning `error` with
/// the runtime's log tail appended.
pub(crate) async fn abandon(parts: &HostParts, action: &str, error: impl std::fmt::Display) -> SandboxError {
    let tail = parts.log_tail();
    if let Err(e) = parts.remove().await {
        tracing::warn!(sandbox = %parts.id, error = %e, "cleanup after a failed start failed");
    }
    SandboxError::Runtime {
        runtime: parts.runtime.name,
        action: action.to_string(),
        message: if tail.is_empty() {
            error.to_string()
        } else {
            format!("{error}\n{tail}")
        },
    }
}

/// Spawns the runtime and waits (bounded) for the agent's `Hello`.
pub async fn launch(request: LaunchRequest) -> Result<OciSandbox, SandboxError> {
    let parts = request.parts();
    let action = if request.restored {
        "restore the sandbox"
    } else {
        "start the sandbox"
    };
    let started = Instant::now();
    let stderr = match std::fs::File::create(request.bundle.stderr_log()) {
        Ok(f) => f,
        Err(e) => return Err(abandon(&parts, action, e).await),
    };
    let mut cmd = request.runtime.command(&request.extra_global, &request.args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .current_dir(&request.bundle.dir)
        .process_group(0);
    if request.hide_proc_sys_net {
        crate::network::hide_proc_sys_net(&mut cmd);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let e = format!("cannot start {}: {e}", request.runtime.binary.display());
            return Err(abandon(&parts, action, e).await);
        }
    };
    let (Some(to_agent), Some(from_agent)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(abandon(&parts, action, "the runtime's stdio is not piped").await);
    };
    let sandbox = OciSandbox::start(
        child,
        AgentClient::new(from_agent, to_agent),
        request.restored,
        parts,
    );
    match tokio::time::timeout(request.hello_timeout, sandbox.agent().hello()).await {
        Ok(Ok(agent_version)) => {
            tracing::info!(
                sandbox = %request.id,
                runtime = request.runtime.name,
                restored = request.restored,
                agent_version,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "sandbox started"
            );
            Ok(sandbox)
        }
        Ok(Err(e)) => Err(fail(sandbox, action, e).await),
        Err(_) => Err(fail(
            sandbox,
            action,
            SandboxError::Timeout(request.hello_timeout, "the agent's hello"),
        )
        .await),
    }
}

/// Destroys a sandbox that did not come up, returning `error` with the log tail.
pub(crate) async fn fail(sandbox: OciSandbox, action: &str, error: SandboxError) -> SandboxError {
    let tail = sandbox.log_tail();
    if let Err(e) = sandbox.destroy().await {
        tracing::warn!(sandbox = %sandbox.id(), error = %e, "cleanup after a failed start failed");
    }
    SandboxError::Runtime {
        runtime: sandbox.parts.runtime.name,
        action: action.to_string(),
        message: if tail.is_empty() {
            error.to_string()
        } else {
            format!("{error}\n{tail}")
        },
    }
}

/// Sandboxes left behind by an earlier run: containers the runtime still lists, and
/// bundle directories under `bundles_dir` (a sandbox whose runtime state is gone but
/// whose bundle and cgroup remain).
pub async fn list_leftovers(
    runtime: &OciRuntime,
    bundles_dir: &std::path::Path,
) -> Result<Vec<SandboxId>, SandboxError> {
    let mut ids: Vec<SandboxId> = runtime
        .list()
        .await?
        .into_iter()
        .filter_map(|id| SandboxId::new(id).ok())
        .collect();
    for entry in std::fs::read_dir(bundles_dir)? {
        if let Some(id) = entry?.file_name().to_str().and_then(|n| SandboxId::new(n).ok()) {
            ids.push(id);
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Kills and removes a sandbox this process did not start (a leftover of an earlier
/// run): its container, bundle directory and cgroup. Idempotent.
pub async fn remove_leftover(
    runtime: &OciRuntime,
    id: &SandboxId,
    bundle: BundleLayout,
    cgroup: SandboxCgroup,
) -> Result<(), SandboxError> {
    // A running container is killed first: `runsc delete --force` on a live sandbox
    // takes seconds, on a dead one milliseconds. Failure here (nothing running) is fine.
    let kill = ["kill".into(), id.as_str().into(), "KILL".into()];
    if let Err(e) = runtime
        .run("kill the container", &kill, crate::runtime::COMMAND_TIMEOUT)
        .await
    {
        tracing::debug!(sandbox = %id, error = %e, "kill before delete");
    }
    HostParts {
        runtime: runtime.clone(),
        id: id.clone(),
        bundle,
        cgroup,
    }
    .remove()
    .await
}
