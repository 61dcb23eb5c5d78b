//! Chooses the gVisor platform: the first of systrap, kvm, ptrace that runs a trivial
//! container within a short time (kvm can hang instead of failing, so every try is
//! bounded and its whole process group killed when it overruns).

use crate::GvisorError;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Platforms in order of preference.
pub const PLATFORM_CANDIDATES: [&str; 3] = ["systrap", "kvm", "ptrace"];
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `runsc do /bin/true` on each candidate platform under `work_dir` (removed
/// afterwards) and returns the first that works.
pub async fn probe_platform(runsc: &Path, work_dir: &Path) -> Result<String, GvisorError> {
    let mut details = Vec::new();
    for platform in PLATFORM_CANDIDATES {
        let started = Instant::now();
        let outcome = try_platform(runsc, work_dir, platform).await;
        let _ = tokio::fs::remove_dir_all(work_dir).await;
        match outcome {
            Ok(()) => {
                tracing::info!(
                    platform,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "gVisor platform chosen"
                );
                return Ok(platform.to_string());
            }
            Err(why) => {
                tracing::info!(platform, why, "gVisor platform unusable");
                details.push(format!("{platform}: {why}"));
            }
        }
    }
    Err(GvisorError::NoPlatform {
        tried: PLATFORM_CANDIDATES.join(", "),
        details: details.join("; "),
    })
}

async fn try_platform(runsc: &Path, work_dir: &Path, platform: &str) -> Result<(), String> {
    let tmp = work_dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(runsc)
        .arg("--root")
        .arg(work_dir.join("root"))
        .args(["--platform", platform, "--network", "none", "do", "/bin/true"])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start runsc: {e}"))?;
    let pid = child.id();
    let mut stderr = child.stderr.take();
    let waited = tokio::time::timeout(TRY_TIMEOUT, child.wait()).await;
    let status = match waited {
        Ok(status) => status.map_err(|e| e.to_string())?,
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: kill(2) on the process group this probe created.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            return Err(format!("no answer within {TRY_TIMEOUT:?}"));
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    if let Some(stderr) = stderr.as_mut() {
        use tokio::io::AsyncReadExt;
        let _ = stderr.read_to_string(&mut text).await;
    }
    let last = text.lines().last().unwrap_or("").trim().to_string();
    Err(format!("{status}: {last}"))
}
