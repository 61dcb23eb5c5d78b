//! The user a custom image's workload runs as, resolved from the image's `User` setting
//! and, for names, its `/etc/passwd` and `/etc/group`. The image is untrusted: those
//! files are opened component by component below the rootfs without following any
//! symlink, must be regular files and are size-capped, so a hostile image cannot make
//! sandpool read anything outside its rootfs.

use crate::OciError;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Largest `/etc/passwd` or `/etc/group` read from an image.
const MAX_ACCOUNT_FILE: u64 = 1 << 20;

/// The resolved identity of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub uid: u32,
    pub gid: u32,
    /// Home directory from `/etc/passwd`, `/` when the user has no entry.
    pub home: String,
}

/// Resolves an OCI image `User` (`""`, `uid`, `name`, `uid:gid`, `name:group`, …)
/// inside `rootfs`. Empty or `None` means root, as for Docker.
pub fn resolve_image_user(rootfs: &Path, user: Option<&str>) -> Result<ImageUser, OciError> {
    let user = user.unwrap_or("").trim();
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    // Read even for numeric users: it gives the home directory and the default group.
    let passwd = read_account_file(rootfs, "passwd")?;
    let entry = passwd
        .lines()
        .filter_map(parse_passwd)
        .find(|e| match user_part.parse::<u32>() {
            Ok(uid) => e.uid == uid,
            Err(_) => e.name == user_part,
        });
    let uid = match (user_part.parse::<u32>(), &entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(e)) => e.uid,
        (Err(_), None) => {
            return Err(OciError::InvalidSpec(format!(
                "the image's user {user_part:?} is not in its /etc/passwd"
            )))
        }
    };
    let gid = match group_part.filter(|g| !g.is_empty()) {
        None => entry.as_ref().map_or(0, |e| e.gid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read_account_file(rootfs, "group")?
                .lines()
                .filter_map(parse_group)
                .find(|(name, _)| name == g)
                .map(|(_, gid)| gid)
                .ok_or_else(|| {
                    OciError::InvalidSpec(format!("the image's group {g:?} is not in its /etc/group"))
                })?,
        },
    };
    let home = entry
        .map(|e| e.home)
        .filter(|h| h.starts_with('/'))
        .unwrap_or_else(|| "/".to_string());
    Ok(ImageUser { uid, gid, home })
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// `name:x:uid:gid:gecos:home:shell`
fn parse_passwd(line: &str) -> Option<PasswdEntry> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some(PasswdEntry {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: f[5].to_string(),
    })
}

/// `name:x:gid:members`
fn parse_group(line: &str) -> Option<(String, u32)> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 3 {
        return None;
    }
    Some((f[0].to_string(), f[2].parse().ok()?))
}

/// Reads `<rootfs>/etc/<name>` without following symlinks; a missing file reads as empty.
fn read_account_file(rootfs: &Path, name: &str) -> Result<String, OciError> {
    let refuse = |why: String| OciError::InvalidSpec(format!("cannot read /etc/{name} of the image: {why}"));
    let root = File::open(rootfs).map_err(|e| refuse(format!("rootfs {}: {e}", rootfs.display())))?;
    let etc = match open_at(&root, "etc", libc::O_DIRECTORY) {
        Ok(fd) => File::from(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(String::new()),
        Err(e) => return Err(refuse(describe(e))),
    };
    let file = match open_at(&etc, name, libc::O_NONBLOCK) {
        Ok(fd) => File::from(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(String::new()),
        Err(e) => return Err(refuse(describe(e))),
    };
    let meta = file.metadata().map_err(|e| refuse(e.to_string()))?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    if meta.len() > MAX_ACCOUNT_FILE {
        return Err(refuse(format!("larger than {MAX_ACCOUNT_FILE} bytes")));
    }
    let mut text = String::new();
    file.take(MAX_ACCOUNT_FILE)
        .read_to_string(&mut text)
        .map_err(|e| refuse(e.to_string()))?;
    Ok(text)
}

fn describe(e: std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
        "it is (or lies below) a symlink, which sandpool does not follow in images".into()
    } else {
        e.to_string()
    }
}

/// `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | extra)`.
fn open_at(dir: &File, name: &str, extra: libc::c_int) -> std::io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: openat with a valid directory fd and a NUL-terminated name; the result is checked.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | extra,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\nbroken line\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        dir
    }

    fn user(uid: u32, gid: u32, home: &str) -> ImageUser {
        ImageUser {
            uid,
            gid,
            home: home.into(),
        }
    }

    #[test]
    fn names_and_numbers_resolve() {
        let r = rootfs();
        let resolve = |u: Option<&str>| resolve_image_user(r.path(), u);
        assert_eq!(resolve(None).unwrap(), user(0, 0, "/root"));
        assert_eq!(resolve(Some("")).unwrap(), user(0, 0, "/root"));
        assert_eq!(resolve(Some("app")).unwrap(), user(1234, 2345, "/home/app"));
        assert_eq!(resolve(Some("1234")).unwrap(), user(1234, 2345, "/home/app"));
        assert_eq!(resolve(Some("app:staff")).unwrap(), user(1234, 50, "/home/app"));
        assert_eq!(resolve(Some("777:888")).unwrap(), user(777, 888, "/"));
        assert_eq!(resolve(Some("777")).unwrap(), user(777, 0, "/"));
        assert!(resolve(Some("nobody-here")).is_err());
        assert!(resolve(Some("app:nogroup")).is_err());
    }

    #[test]
    fn symlinks_out_of_the_image_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        // /etc/passwd as a symlink to a host file.
        let r = tempfile::tempdir().unwrap();
        std::fs::create_dir(r.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("passwd"), r.path().join("etc/passwd")).unwrap();
        let err = resolve_image_user(r.path(), Some("evil")).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        // /etc as a symlink to a host directory.
        let r = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), r.path().join("etc")).unwrap();
        let err = resolve_image_user(r.path(), Some("evil")).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        // A FIFO would block a naive reader forever.
        let r = tempfile::tempdir().unwrap();
        std::fs::create_dir(r.path().join("etc")).unwrap();
        let fifo = CString::new(r.path().join("etc/passwd").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path in a temporary directory.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(resolve_image_user(r.path(), Some("x")).is_err());
    }

    #[test]
    fn an_image_without_passwd_accepts_numbers_only() {
        let r = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_image_user(r.path(), Some("10:20")).unwrap(),
            user(10, 20, "/")
        );
        assert!(resolve_image_user(r.path(), Some("app")).is_err());
    }
}
