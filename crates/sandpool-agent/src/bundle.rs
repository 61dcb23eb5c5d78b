//! The agent bundle: the directory mounted read-only at `/opt/sandpool` in every sandbox.

use std::path::Path;

/// File name of the agent executable inside the bundle.
pub const AGENT_EXE_NAME: &str = "sandpool-agent";
/// File name of the Python driver inside the bundle.
pub const DRIVER_FILE_NAME: &str = "sandpool_driver.py";
/// Source of the Python driver the agent runs for `SANDPOOL_KIND=python`.
pub const DRIVER_SOURCE: &str = include_str!("../driver/sandpool_driver.py");

/// Copies `agent_exe` to `dir/sandpool-agent` (mode 0755) and writes `dir/sandpool_driver.py`
/// (mode 0644), creating `dir` if needed. Files are replaced atomically, so a bundle that is
/// mounted by running sandboxes is never seen half-written.
pub fn install_bundle(dir: &Path, agent_exe: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let exe_tmp = dir.join(format!(".{AGENT_EXE_NAME}.tmp"));
    std::fs::copy(agent_exe, &exe_tmp)?;
    std::fs::set_permissions(&exe_tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&exe_tmp, dir.join(AGENT_EXE_NAME))?;
    let driver_tmp = dir.join(format!(".{DRIVER_FILE_NAME}.tmp"));
    std::fs::write(&driver_tmp, DRIVER_SOURCE)?;
    std::fs::set_permissions(&driver_tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&driver_tmp, dir.join(DRIVER_FILE_NAME))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_source_is_embedded() {
        assert!(DRIVER_SOURCE.contains("InteractiveShell"));
    }
}
