//! Remembers the probed gVisor platform in the state directory (`platform`), keyed by
//! the runsc binary's resolved path, its version and the host kernel release, so a
//! restart skips the probe (~10 s here: kvm hangs until its timeout) and a changed runsc
//! or kernel is probed again.

use crate::platform::{probe_platform, PLATFORM_CANDIDATES};
use crate::GvisorError;
use std::path::{Path, PathBuf};

const CACHE_FILE: &str = "platform";

/// What a probe result depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKey {
    pub runsc: PathBuf,
    pub version: String,
    pub kernel: String,
}

impl ProbeKey {
    /// The key for `runsc` (looked up in `PATH` if it has no directory part) with
    /// version line `version`, on this host.
    pub fn for_host(runsc: &Path, version: &str) -> Self {
        let resolved = resolve(runsc);
        ProbeKey {
            runsc: std::fs::canonicalize(&resolved).unwrap_or(resolved),
            version: version.to_string(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_string())
                .unwrap_or_default(),
        }
    }

    fn lines(&self) -> String {
        format!(
            "runsc {}\nversion {}\nkernel {}\n",
            self.runsc.display(),
            one_line(&self.version),
            one_line(&self.kernel)
        )
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// `runsc` itself if it names a directory, else the first match in `PATH`.
fn resolve(runsc: &Path) -> PathBuf {
    if runsc.components().count() > 1 {
        return runsc.to_path_buf();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(runsc))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| runsc.to_path_buf())
}

/// The cache file's text for `platform` probed under `key`.
fn encode(key: &ProbeKey, platform: &str) -> String {
    format!("platform {platform}\n{}", key.lines())
}

/// The cached platform, if `text` was written for exactly `key` and names a candidate.
fn decode(text: &str, key: &ProbeKey) -> Option<String> {
    let (first, rest) = text.split_once('\n')?;
    let platform = first.strip_prefix("platform ")?;
    (rest == key.lines() && PLATFORM_CANDIDATES.contains(&platform)).then(|| platform.to_string())
}

/// The platform to use: the cached one for `key`, else a fresh probe (run under
/// `state_dir/probe`) whose result is then cached. A cache that cannot be written only
/// costs the next start a probe.
pub async fn cached_or_probed_platform(
    runsc: &Path,
    key: &ProbeKey,
    state_dir: &Path,
) -> Result<String, GvisorError> {
    let file = state_dir.join(CACHE_FILE);
    if let Some(platform) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| decode(&text, key))
    {
        tracing::info!(platform, cache = %file.display(), "gVisor platform from the probe cache");
        return Ok(platform);
    }
    let platform = probe_platform(runsc, &state_dir.join("probe")).await?;
    let partial = state_dir.join(format!(".{CACHE_FILE}.{}", std::process::id()));
    let written =
        std::fs::write(&partial, encode(key, &platform)).and_then(|()| std::fs::rename(&partial, &file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        tracing::warn!(error = %e, cache = %file.display(), "cannot cache the gVisor platform");
    }
    Ok(platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ProbeKey {
        ProbeKey {
            runsc: "/usr/bin/runsc".into(),
            version: "runsc version 0.0~20221219.0".into(),
            kernel: "6.1.0-13-amd64".into(),
        }
    }

    #[test]
    fn a_cached_platform_is_used_only_for_the_same_runsc_version_and_kernel() {
        let text = encode(&key(), "ptrace");
        assert_eq!(decode(&text, &key()).as_deref(), Some("ptrace"));
        let mut other = key();
        other.version = "runsc version 0.0~20240101.0".into();
        assert_eq!(decode(&text, &other), None);
        let mut other = key();
        other.runsc = "/opt/bin/runsc".into();
        assert_eq!(decode(&text, &other), None);
        let mut other = key();
        other.kernel = "6.5.0".into();
        assert_eq!(decode(&text, &other), None);
    }

    #[test]
    fn damaged_or_foreign_cache_files_are_ignored() {
        assert_eq!(decode("", &key()), None);
        assert_eq!(decode("platform ptrace", &key()), None);
        let unknown = encode(&key(), "bogus");
        assert_eq!(decode(&unknown, &key()), None);
        let truncated = encode(&key(), "kvm");
        assert_eq!(decode(&truncated[..truncated.len() - 3], &key()), None);
    }

    #[test]
    fn multi_line_versions_cannot_forge_lines() {
        let mut k = key();
        k.version = "v1\nkernel x".into();
        let text = encode(&k, "kvm");
        assert_eq!(text.lines().count(), 4);
        assert_eq!(decode(&text, &k).as_deref(), Some("kvm"));
    }

    #[test]
    fn bare_names_are_looked_up_in_path() {
        let found = resolve(Path::new("sh"));
        assert!(found.is_absolute() && found.ends_with("sh"), "{found:?}");
        assert_eq!(resolve(Path::new("/x/runsc")), PathBuf::from("/x/runsc"));
    }
}
