//! Where the suite finds things on the host: workspace root, shared test data dir,
//! host test Python and the agent executable.

use crate::SetupError;
use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives at <root>/crates/<name>")
        .to_path_buf()
}

/// `SANDPOOL_TEST_DATA` if set, else `<workspace root>/target/test-data`; images are
/// cached here across runs.
pub fn test_data_dir() -> PathBuf {
    match std::env::var_os("SANDPOOL_TEST_DATA") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("test-data"),
    }
}

/// `SANDPOOL_TEST_PYTHON` if set, else `<workspace root>/.venv-driver/bin/python3`.
pub fn test_python() -> Result<PathBuf, SetupError> {
    let python = match std::env::var_os("SANDPOOL_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv-driver").join("bin").join("python3"),
    };
    if python.exists() {
        Ok(python)
    } else {
        Err(SetupError::PythonMissing(python))
    }
}

/// Which build of the agent to prefer when both exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

/// `SANDPOOL_AGENT_EXE` if set, else `target/<profile>/sandpool-agent`, falling back to
/// the other profile. The agent cannot be built from here: cargo holds the build lock
/// while tests run.
pub fn agent_exe(preferred: Profile) -> Result<PathBuf, SetupError> {
    if let Some(exe) = std::env::var_os("SANDPOOL_AGENT_EXE").filter(|p| !p.is_empty()) {
        let exe = PathBuf::from(exe);
        return if exe.is_file() {
            Ok(exe)
        } else {
            Err(SetupError::AgentMissing { looked_at: vec![exe] })
        };
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    };
    let order = match preferred {
        Profile::Debug => ["debug", "release"],
        Profile::Release => ["release", "debug"],
    };
    let candidates: Vec<PathBuf> = order
        .iter()
        .map(|p| target.join(p).join("sandpool-agent"))
        .collect();
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or(SetupError::AgentMissing {
            looked_at: candidates,
        })
}
