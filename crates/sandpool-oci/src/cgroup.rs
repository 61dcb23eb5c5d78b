//! The per-sandbox cgroup (v1 hierarchies), created by sandpool before the runtime
//! starts so that it survives the sandbox: its OOM-kill counter is read after the
//! sandbox died, then sandpool removes it. `runsc` leaves pre-created controllers alone
//! (it neither sets their limits nor removes them), so sandpool writes the limits itself.
//!
//! The CPU limit is a CFS quota per 100 ms period with an equal burst allowance
//! (`cpu.cfs_burst_us`, Linux 5.14+; skipped where absent): a sandbox that was idle may
//! spend up to one period of saved quota above its limit. Interactive sessions need it:
//! a gVisor sandbox answering `print(1)` cells back to back briefly uses more than one
//! CPU (the Sentry and the cell), and without the burst it was throttled in half of all
//! periods, stalling cells for up to 20 ms (p99 of the round trip 17 ms instead of ~5).

use crate::OciError;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Controllers sandpool creates and limits; the runtime creates any others it wants.
const OWNED_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// Limits written into the cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory_bytes: u64,
    pub cpu_quota_us: u64,
    pub cpu_period_us: u64,
    pub pids: u64,
}

/// One sandbox's cgroup, at the same relative path in every v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxCgroup {
    relative: String,
    root: PathBuf,
}

impl SandboxCgroup {
    /// `relative` is the OCI `cgroupsPath`, e.g. `/sandpool/gvisor/<id>`.
    pub fn new(relative: &str) -> Result<Self, OciError> {
        Self::with_root(Path::new(CGROUP_ROOT), relative)
    }

    fn with_root(root: &Path, relative: &str) -> Result<Self, OciError> {
        let ok = relative.starts_with('/')
            && relative
                .split('/')
                .skip(1)
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !ok {
            return Err(OciError::InvalidSpec(format!("bad cgroup path {relative:?}")));
        }
        Ok(SandboxCgroup {
            relative: relative.to_string(),
            root: root.to_path_buf(),
        })
    }

    /// Fails unless this host has the cgroup v1 memory, cpu and pids hierarchies.
    pub fn check_host() -> Result<(), OciError> {
        for controller in OWNED_CONTROLLERS {
            let dir = Path::new(CGROUP_ROOT).join(controller);
            if !dir.join("cgroup.procs").exists() || !dir.join("tasks").exists() {
                return Err(OciError::CgroupSetup(format!(
                    "{} is not a cgroup v1 hierarchy (sandpool needs v1 or hybrid cgroups with the memory, cpu and pids controllers)",
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// The OCI `cgroupsPath`.
    pub fn relative(&self) -> &str {
        &self.relative
    }

    fn dir(&self, controller: &str) -> PathBuf {
        self.root
            .join(controller)
            .join(self.relative.trim_start_matches('/'))
    }

    fn write(&self, controller: &str, file: &str, value: &str) -> Result<(), OciError> {
        let path = self.dir(controller).join(file);
        std::fs::write(&path, value).map_err(|source| OciError::Cgroup {
            path: path.display().to_string(),
            source,
        })
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir(controller).join(file)).ok()
    }

    /// Creates the memory, cpu and pids cgroups and writes `limits` into them. Swap is
    /// capped at zero where the kernel accounts it.
    pub fn create(&self, limits: &CgroupLimits) -> Result<(), OciError> {
        for controller in OWNED_CONTROLLERS {
            let dir = self.dir(controller);
            std::fs::create_dir_all(&dir).map_err(|source| OciError::Cgroup {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let memory = limits.memory_bytes.to_string();
        self.write("memory", "memory.limit_in_bytes", &memory)?;
        if self.dir("memory").join("memory.memsw.limit_in_bytes").exists() {
            self.write("memory", "memory.memsw.limit_in_bytes", &memory)?;
        }
        self.write("cpu", "cpu.cfs_period_us", &limits.cpu_period_us.to_string())?;
        self.set_cpu_quota(Some(limits.cpu_quota_us))?;
        self.write("pids", "pids.max", &limits.pids.to_string())?;
        Ok(())
    }

    /// Sets the CFS quota per period, with a burst allowance of the same size; `None`
    /// lifts it (`-1`). Lets a sandbox start unthrottled before its limit applies.
    pub fn set_cpu_quota(&self, quota_us: Option<u64>) -> Result<(), OciError> {
        let value = quota_us.map_or_else(|| "-1".to_string(), |q| q.to_string());
        self.write("cpu", "cpu.cfs_quota_us", &value)?;
        if let Some(quota) = quota_us {
            // The kernel refuses a burst above the quota, so it follows the quota.
            if self.dir("cpu").join("cpu.cfs_burst_us").exists() {
                self.write("cpu", "cpu.cfs_burst_us", &quota.to_string())?;
            }
        }
        Ok(())
    }

    /// How many processes the kernel OOM-killed in this cgroup (`None` once removed).
    pub fn oom_kills(&self) -> Option<u64> {
        parse_keyed(&self.read("memory", "memory.oom_control")?, "oom_kill")
    }

    /// Memory charged to the sandbox right now.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.read("memory", "memory.usage_in_bytes")?.trim().parse().ok()
    }

    /// Host tasks (threads) in the sandbox right now.
    pub fn pids(&self) -> Option<u64> {
        self.read("pids", "pids.current")?.trim().parse().ok()
    }

    /// Removes the cgroup from every hierarchy (the runtime may have created more than
    /// sandpool did). Retries for a while when it still holds dying processes; missing
    /// directories are fine, so this is idempotent.
    pub async fn remove(&self) -> Result<(), OciError> {
        for _ in 0..50 {
            if self.remove_once()? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match self.remove_once()? {
            true => Ok(()),
            false => Err(OciError::CgroupSetup(format!(
                "cgroup {} still has processes after 5 s",
                self.relative
            ))),
        }
    }

    /// One removal attempt in every hierarchy: true when none is left, false when some
    /// are still busy.
    pub fn remove_once(&self) -> Result<bool, OciError> {
        let hierarchies = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let mut all_gone = true;
        for hierarchy in hierarchies {
            let dir = hierarchy.join(self.relative.trim_start_matches('/'));
            match std::fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    tracing::debug!(dir = %dir.display(), "cgroup still busy");
                    all_gone = false;
                }
                Err(source) => {
                    return Err(OciError::Cgroup {
                        path: dir.display().to_string(),
                        source,
                    })
                }
            }
        }
        Ok(all_gone)
    }
}

fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_control_is_parsed() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_keyed(text, "oom_kill"), Some(3));
        assert_eq!(parse_keyed(text, "missing"), None);
    }

    #[test]
    fn cgroup_paths_cannot_escape() {
        for bad in ["relative", "/a/../b", "/a//b", "/"] {
            assert!(SandboxCgroup::new(bad).is_err(), "{bad:?} accepted");
        }
        let cg = SandboxCgroup::with_root(Path::new("/cg"), "/sandpool/x").unwrap();
        assert_eq!(cg.dir("memory"), PathBuf::from("/cg/memory/sandpool/x"));
    }
}
