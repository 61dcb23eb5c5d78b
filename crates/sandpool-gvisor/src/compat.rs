//! The statx compatibility shim (`compat/statx_compat.c`, built by `build.rs`): runsc
//! 20221219 answers `AT_NO_AUTOMOUNT` in `statx`/`newfstatat` with `EINVAL`, which breaks
//! coreutils 9.1's `ls -l` and `stat`. The shim is preloaded into every process of the
//! python and shell sandboxes (our Debian images) and drops the flag. It is installed content-addressed under the state directory so a
//! new build never changes the file under running sandboxes or templates.

use sandpool_oci::Preload;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The shared object, compiled for the host.
const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libsandpool_statx_compat.so"));
const LIBRARY_NAME: &str = "libsandpool_statx_compat.so";
/// Where the shim's directory is mounted read-only inside the sandbox.
pub const MOUNT_POINT: &str = "/opt/sandpool-compat";

/// Hex SHA-256 prefix of the shim (part of the template key).
pub fn digest() -> String {
    hex::encode(&Sha256::digest(LIBRARY)[..8])
}

/// Writes the shim to `<compat_root>/<digest>/` unless it is already there, and returns
/// how to preload it.
pub fn install(compat_root: &Path) -> std::io::Result<Preload> {
    let dir = compat_root.join(digest());
    let target = dir.join(LIBRARY_NAME);
    let present = std::fs::read(&target).map(|b| b == LIBRARY).unwrap_or(false);
    if !present {
        std::fs::create_dir_all(&dir)?;
        let partial = dir.join(format!(".{LIBRARY_NAME}.{}", std::process::id()));
        std::fs::write(&partial, LIBRARY)?;
        std::fs::rename(&partial, &target)?;
    }
    Ok(Preload {
        host_dir: dir,
        mount_point: MOUNT_POINT.to_string(),
        library: LIBRARY_NAME.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shim_is_an_elf_object_installed_once_under_its_digest() {
        assert_eq!(&super::LIBRARY[..4], b"\x7fELF");
        let root = tempfile::tempdir().unwrap();
        let preload = super::install(root.path()).unwrap();
        assert_eq!(preload.host_dir, root.path().join(super::digest()));
        let lib = preload.host_dir.join(&preload.library);
        assert_eq!(std::fs::read(&lib).unwrap(), super::LIBRARY);
        let again = super::install(root.path()).unwrap();
        assert_eq!(again, preload);
        assert_eq!(std::fs::read_dir(&preload.host_dir).unwrap().count(), 1);
    }
}
