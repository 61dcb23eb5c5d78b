//! An OCI runtime CLI (`runsc`, `runc`) and its one-shot subcommands, each bounded in time.

use crate::OciError;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// How long a one-shot runtime subcommand (`list`, `delete`, `kill`, …) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A runtime binary and the global flags every invocation gets (e.g. `--root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRuntime {
    pub name: &'static str,
    pub binary: PathBuf,
    pub global_args: Vec<OsString>,
}

impl OciRuntime {
    /// A command with the global flags, `extra_global` flags, then `args`.
    pub fn command(&self, extra_global: &[OsString], args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.global_args).args(extra_global).args(args);
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }

    /// Runs a subcommand to completion within `timeout`; returns its stdout, or an error
    /// carrying the tail of its stderr.
    pub async fn run(&self, action: &str, args: &[OsString], timeout: Duration) -> Result<String, OciError> {
        self.run_with(action, &[], args, timeout).await
    }

    /// [`OciRuntime::run`] with extra global flags.
    pub async fn run_with(
        &self,
        action: &str,
        extra_global: &[OsString],
        args: &[OsString],
        timeout: Duration,
    ) -> Result<String, OciError> {
        let mut cmd = self.command(extra_global, args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        tracing::debug!(runtime = self.name, action, "running runtime command");
        let child = cmd.spawn().map_err(|e| OciError::Runtime {
            runtime: self.name,
            action: action.to_string(),
            message: format!("cannot start {}: {e}", self.binary.display()),
        })?;
        let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(output) => output?,
            Err(_) => {
                return Err(OciError::Timeout {
                    runtime: self.name,
                    action: action.to_string(),
                    timeout,
                })
            }
        };
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(OciError::Runtime {
            runtime: self.name,
            action: action.to_string(),
            message: format!("{}: {}", output.status, tail.trim()),
        })
    }

    /// Ids of the containers this runtime (with these global flags) knows about.
    pub async fn list(&self) -> Result<Vec<String>, OciError> {
        let out = self
            .run(
                "list containers",
                &["list".into(), "--format".into(), "json".into()],
                COMMAND_TIMEOUT,
            )
            .await?;
        parse_list(&out)
    }

    /// Kills and deletes a container; a container that does not exist is not an error.
    pub async fn delete_force(&self, id: &str) -> Result<(), OciError> {
        let args = ["delete".into(), "--force".into(), id.into()];
        match self.run("delete the container", &args, COMMAND_TIMEOUT).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if self.list().await?.iter().any(|c| c == id) {
                    Err(e)
                } else {
                    Ok(())
                }
            }
        }
    }
}

fn parse_list(out: &str) -> Result<Vec<String>, OciError> {
    let value: serde_json::Value = if out.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(out)?
    };
    Ok(value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("id").and_then(|id| id.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_output_is_parsed() {
        assert_eq!(super::parse_list("null").unwrap(), Vec::<String>::new());
        assert_eq!(super::parse_list("").unwrap(), Vec::<String>::new());
        let out = r#"[{"ociVersion":"1.0.2","id":"sb-1","pid":12,"status":"running"}]"#;
        assert_eq!(super::parse_list(out).unwrap(), vec!["sb-1".to_string()]);
        assert!(super::parse_list("garbage").is_err());
    }
}
