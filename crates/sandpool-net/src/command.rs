//! Host commands (`ip`, `nft`), bounded in time, with their stderr in the error.

use crate::NetError;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `program args` with `stdin` fed to it; returns stdout.
pub async fn run(
    program: &'static str,
    args: &[&str],
    stdin: Option<&str>,
    action: &str,
) -> Result<String, NetError> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let failed = |message: String| NetError::Command {
        program,
        action: action.to_string(),
        message,
    };
    let mut child = cmd.spawn().map_err(|e| failed(format!("cannot start: {e}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await?;
        drop(pipe);
    }
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| NetError::Timeout(format!("{program} {action}")))??;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failed(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Blocking best-effort variant for `Drop`; returns whether it succeeded.
pub fn run_blocking(program: &str, args: &[&str], stdin: Option<&str>) -> bool {
    use std::io::Write;
    let child = std::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes());
    }
    child.wait().map(|s| s.success()).unwrap_or(false)
}
