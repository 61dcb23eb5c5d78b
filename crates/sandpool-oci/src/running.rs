//! A running sandbox: the runtime's `run`/`restore` child process, the agent channel on
//! its stdio, and a monitor task that records why the sandbox ended.

use crate::{tail_of_files, BundleLayout, OciRuntime, SandboxCgroup};
use async_trait::async_trait;
use sandpool_sandbox::{AgentClient, ExitReason, Sandbox, SandboxError, SandboxId, SandboxStats};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Child;
use tokio::sync::{oneshot, watch};

/// How long destroy waits for the runtime child to exit after asking it to.
const EXIT_GRACE: Duration = Duration::from_secs(30);

/// A sandbox started by an OCI runtime CLI.
pub struct OciSandbox {
    id: SandboxId,
    agent: AgentClient,
    restored: bool,
    pub(crate) parts: HostParts,
    exit: watch::Receiver<Option<ExitReason>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    destroying: Arc<AtomicBool>,
    destroyed: tokio::sync::Mutex<bool>,
}

/// Everything on the host that belongs to one sandbox.
#[derive(Debug, Clone)]
pub(crate) struct HostParts {
    pub runtime: OciRuntime,
    pub id: SandboxId,
    pub bundle: BundleLayout,
    pub cgroup: SandboxCgroup,
}

impl HostParts {
    /// The last lines of the runtime's logs.
    pub fn log_tail(&self) -> String {
        tail_of_files(&[self.bundle.stderr_log(), self.bundle.runtime_log()], 1500)
    }

    /// Deletes the container, the bundle directory and the cgroup. Idempotent.
    pub async fn remove(&self) -> Result<(), SandboxError> {
        let deleted = self.runtime.delete_force(self.id.as_str()).await;
        match tokio::fs::remove_dir_all(&self.bundle.dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.cgroup.remove().await?;
        deleted?;
        Ok(())
    }

    /// Blocking best-effort [`HostParts::remove`], for `Drop`.
    fn remove_blocking(&self) {
        let status = std::process::Command::new(&self.runtime.binary)
            .args(&self.runtime.global_args)
            .args(["delete", "--force", self.id.as_str()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        tracing::debug!(sandbox = %self.id, ?status, "blocking delete");
        let _ = std::fs::remove_dir_all(&self.bundle.dir);
        for _ in 0..30 {
            if matches!(self.cgroup.remove_once(), Ok(true)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl OciSandbox {
    /// Wraps a spawned runtime child whose stdin/stdout have been taken for `agent`.
    pub(crate) fn start(child: Child, agent: AgentClient, restored: bool, parts: HostParts) -> Self {
        let (exit_tx, exit) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel();
        let destroying = Arc::new(AtomicBool::new(false));
        tokio::spawn(monitor(
            child,
            kill_rx,
            parts.clone(),
            destroying.clone(),
            exit_tx,
        ));
        OciSandbox {
            id: parts.id.clone(),
            agent,
            restored,
            parts,
            exit,
            kill: Mutex::new(Some(kill_tx)),
            destroying,
            destroyed: tokio::sync::Mutex::new(false),
        }
    }

    /// The last lines of the runtime's logs (for error messages).
    pub fn log_tail(&self) -> String {
        self.parts.log_tail()
    }
}

async fn monitor(
    mut child: Child,
    mut kill: oneshot::Receiver<()>,
    parts: HostParts,
    destroying: Arc<AtomicBool>,
    exit: watch::Sender<Option<ExitReason>>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        Ok(()) = &mut kill => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let reason = if destroying.load(Ordering::SeqCst) {
        ExitReason::Destroyed
    } else if parts.cgroup.oom_kills().unwrap_or(0) > 0 {
        ExitReason::OutOfMemory
    } else {
        ExitReason::Crashed {
            detail: describe(status),
        }
    };
    tracing::info!(sandbox = %parts.id, ?reason, "sandbox ended");
    let _ = exit.send(Some(reason));
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("the sandbox exited with status {code}"),
            (_, Some(signal)) => format!("the runtime was killed by signal {signal}"),
            _ => format!("the sandbox ended: {s}"),
        },
        Err(e) => format!("cannot wait for the runtime: {e}"),
    }
}

#[async_trait]
impl Sandbox for OciSandbox {
    fn id(&self) -> &SandboxId {
        &self.id
    }

    fn agent(&self) -> &AgentClient {
        &self.agent
    }

    fn restored(&self) -> bool {
        self.restored
    }

    async fn stats(&self) -> Result<SandboxStats, SandboxError> {
        Ok(SandboxStats {
            memory_bytes: self.parts.cgroup.memory_bytes().unwrap_or(0),
            host_pids: self.parts.cgroup.pids().unwrap_or(0),
        })
    }

    async fn wait_exit(&self) -> ExitReason {
        let mut exit = self.exit.clone();
        let reason = match exit.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(ExitReason::Destroyed),
            Err(_) => ExitReason::Crashed {
                detail: "the sandbox monitor ended".to_string(),
            },
        };
        reason
    }

    async fn destroy(&self) -> Result<(), SandboxError> {
        let mut destroyed = self.destroyed.lock().await;
        if *destroyed {
            return Ok(());
        }
        self.destroying.store(true, Ordering::SeqCst);
        // Killing the runtime child first takes an attached runsc sandbox down with it;
        // `delete --force` then only removes state (and kills a detached runc container).
        if let Some(kill) = self.kill.lock().expect("kill lock poisoned").take() {
            let _ = kill.send(());
        }
        if tokio::time::timeout(EXIT_GRACE, self.wait_exit()).await.is_err() {
            tracing::warn!(sandbox = %self.id, "runtime child did not exit in time");
        }
        self.parts.remove().await?;
        *destroyed = true;
        tracing::debug!(sandbox = %self.id, "sandbox destroyed");
        Ok(())
    }
}

impl Drop for OciSandbox {
    fn drop(&mut self) {
        if *self.destroyed.get_mut() {
            return;
        }
        tracing::warn!(sandbox = %self.id, "sandbox dropped without destroy; cleaning up");
        self.destroying.store(true, Ordering::SeqCst);
        if let Some(kill) = self.kill.get_mut().ok().and_then(Option::take) {
            let _ = kill.send(());
        }
        self.parts.remove_blocking();
    }
}
