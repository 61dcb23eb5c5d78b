//! The agent spawned directly on the host with the host venv's Python: the baseline
//! the sandboxed round trip is compared with.

use sandpool_sandbox::{AgentClient, SandboxError};
use std::path::Path;
use tokio::process::{Child, Command};

/// An agent process on the host and the channel to it; killed on drop.
pub struct HostAgent {
    pub client: AgentClient,
    child: Child,
}

impl HostAgent {
    /// Starts `agent_exe` as a python-kind agent using `python` and `driver`, working in
    /// `data_dir`, and says Hello.
    pub async fn spawn(
        agent_exe: &Path,
        python: &Path,
        driver: &Path,
        data_dir: &Path,
    ) -> Result<Self, SandboxError> {
        let home = data_dir.join("home");
        std::fs::create_dir_all(&home)?;
        let mut child = Command::new(agent_exe)
            .env_clear()
            .env("SANDPOOL_KIND", "python")
            .env("SANDPOOL_DATA_DIR", data_dir)
            .env("SANDPOOL_PYTHON", python)
            .env("SANDPOOL_DRIVER", driver)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("MPLCONFIGDIR", home.join(".matplotlib"))
            .env("IPYTHONDIR", home.join(".ipython"))
            .env("LANG", "C.UTF-8")
            .current_dir(data_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let client = AgentClient::new(stdout, stdin);
        client.hello().await?;
        Ok(HostAgent { client, child })
    }

    /// Kills the agent and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
