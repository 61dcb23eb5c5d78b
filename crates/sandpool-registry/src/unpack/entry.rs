//! Writes one tar entry (directory, file, symlink, hard link) at a path already resolved
//! inside the root, replacing what is there without ever following a symlink.

use std::ffi::OsString;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::path::{normalise, resolve_dir, Ctx};
use crate::RegistryError;

/// Permission bits kept on files: setuid and setgid are dropped.
const FILE_MODE_MASK: u32 = 0o1777;
/// Permission bits kept on directories: setgid (group inheritance) and sticky stay.
const DIR_MODE_MASK: u32 = 0o3777;

/// Ownership and mode from the tar header.
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

/// Removes whatever is at `path` (file, symlink or directory tree); missing is fine.
pub(crate) fn remove_any(path: &Path) -> Result<(), RegistryError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(path).map_err(|e| RegistryError::io("remove directory", path, e))
        }
        Ok(_) => fs::remove_file(path).map_err(|e| RegistryError::io("remove", path, e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RegistryError::io("inspect", path, e)),
    }
}

pub(crate) fn write_dir(dest: &Path, meta: &Meta) -> Result<(), RegistryError> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            remove_any(dest)?;
            fs::create_dir(dest).map_err(|e| RegistryError::io("create directory", dest, e))?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir(dest).map_err(|e| RegistryError::io("create directory", dest, e))?;
        }
        Err(e) => return Err(RegistryError::io("inspect", dest, e)),
    }
    chown(dest, meta)?;
    fs::set_permissions(dest, Permissions::from_mode(meta.mode & DIR_MODE_MASK))
        .map_err(|e| RegistryError::io("set mode of", dest, e))
}

/// Writes a regular file and returns the number of content bytes written.
pub(crate) fn write_file(dest: &Path, meta: &Meta, data: &mut dyn Read) -> Result<u64, RegistryError> {
    remove_any(dest)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dest)
        .map_err(|e| RegistryError::io("create", dest, e))?;
    let written = std::io::copy(data, &mut file).map_err(|e| RegistryError::io("write", dest, e))?;
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime);
    file.set_modified(mtime)
        .map_err(|e| RegistryError::io("set mtime of", dest, e))?;
    chown(dest, meta)?;
    file.set_permissions(Permissions::from_mode(meta.mode & FILE_MODE_MASK))
        .map_err(|e| RegistryError::io("set mode of", dest, e))?;
    Ok(written)
}

pub(crate) fn write_symlink(dest: &Path, meta: &Meta, target: &Path) -> Result<(), RegistryError> {
    remove_any(dest)?;
    std::os::unix::fs::symlink(target, dest).map_err(|e| RegistryError::io("create symlink", dest, e))?;
    chown(dest, meta)
}

/// Hard-links `dest` to the archive path `link_name`, which must name an existing
/// non-directory inside the root (resolved with the same rules as parents).
pub(crate) fn write_hardlink(
    ctx: &Ctx<'_>,
    root: &Path,
    dest: &Path,
    link_name: &Path,
) -> Result<(), RegistryError> {
    let mut parts: Vec<OsString> = normalise(ctx, link_name).map_err(|_| {
        ctx.refuse(format!(
            "hard link target `{}` escapes the root",
            link_name.display()
        ))
    })?;
    let Some(last) = parts.pop() else {
        return Err(ctx.refuse("hard link to the root directory"));
    };
    let missing = || {
        ctx.refuse(format!(
            "hard link target `{}` does not exist",
            link_name.display()
        ))
    };
    let parent = resolve_dir(ctx, root, &parts, false)?.ok_or_else(missing)?;
    let target = parent.join(&last);
    match fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => {
            return Err(ctx.refuse(format!(
                "hard link target `{}` is a directory",
                link_name.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(RegistryError::io("inspect", &target, e)),
    }
    if target == dest {
        return Ok(());
    }
    remove_any(dest)?;
    // linkat(2) without AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
    fs::hard_link(&target, dest).map_err(|e| RegistryError::io("create hard link", dest, e))
}

/// `lchown`: never follows a symlink. EPERM is tolerated when not running as root.
fn chown(path: &Path, meta: &Meta) -> Result<(), RegistryError> {
    match std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid)) {
        Ok(()) => Ok(()),
        // SAFETY: geteuid has no preconditions and cannot fail.
        Err(e) if e.kind() == ErrorKind::PermissionDenied && unsafe { libc::geteuid() } != 0 => {
            tracing::debug!(path = %path.display(), "not root: keeping current ownership");
            Ok(())
        }
        Err(e) => Err(RegistryError::io("change owner of", path, e)),
    }
}
