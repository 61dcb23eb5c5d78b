//! Removes a (possibly half-built) rootfs safely: first detaches anything still mounted
//! inside it (a killed mmdebstrap can leave /proc, /sys or /dev mounts behind), then deletes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::ImageError;

/// Mount points at or below `dir`, deepest first, from `/proc/self/mountinfo` text.
pub(crate) fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Deletes `dir` recursively after lazily unmounting anything mounted inside it. Refuses to
/// delete if a mount cannot be detached.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), ImageError> {
    if !dir.exists() {
        return Ok(());
    }
    let dir = dir.canonicalize().map_err(ImageError::io("resolving", dir))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(ImageError::io("reading", "/proc/self/mountinfo"))?;
    for mount in mounts_below(&mountinfo, &dir) {
        tracing::warn!(mount = %mount.display(), "detaching leftover mount before removal");
        let c = CString::new(mount.as_os_str().as_bytes())
            .map_err(|_| ImageError::InvalidRecipe("NUL in path".into()))?;
        // SAFETY: umount2 with a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(ImageError::io("detaching leftover mount", mount)(
                std::io::Error::last_os_error(),
            ));
        }
    }
    std::fs::remove_dir_all(&dir).map_err(ImageError::io("removing", &dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_mounts_deepest_first() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
            90 1 0:50 / /data/images/.tmp-x/rootfs/proc rw - proc proc rw\n\
            91 90 0:51 / /data/images/.tmp-x/rootfs/proc/sys/fs/binfmt_misc rw - x x rw\n\
            92 1 0:52 / /data/images/.tmp-xy/rootfs/sys rw - sysfs sysfs rw\n";
        let m = mounts_below(info, Path::new("/data/images/.tmp-x"));
        assert_eq!(
            m,
            [
                PathBuf::from("/data/images/.tmp-x/rootfs/proc/sys/fs/binfmt_misc"),
                PathBuf::from("/data/images/.tmp-x/rootfs/proc")
            ]
        );
    }
}
