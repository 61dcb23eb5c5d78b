//! File operations confined to the data directory. Every component is opened with
//! `openat(O_NOFOLLOW)` relative to the descriptor of its parent, so neither a symlink nor a
//! concurrent rename can lead an operation outside (no canonicalize-then-open).
//!
//! `O_NOFOLLOW` alone is not trusted: runsc 20221219 follows a symlink to a directory even
//! with `O_DIRECTORY|O_NOFOLLOW`. So every existing entry is `lstat`ed first and refused if
//! it is a symlink, and the descriptor opened must be that very inode (same device and inode
//! number), which also defeats swapping the entry for a symlink in between.

use crate::paths::{invalid_path, DataPath};
use sandpool_proto::{AgentError, ErrorKind, FileEntry, Response};
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Most bytes one `ReadFile` returns; callers read larger files in chunks.
pub const MAX_READ_BYTES: u32 = 16 << 20;
/// Most entries one `ListFiles` returns.
const MAX_LIST_ENTRIES: usize = 100_000;
/// Deepest directory a recursive listing descends into.
const MAX_LIST_DEPTH: usize = 64;

const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// The data directory all file operations are confined to.
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    pub fn new(path: PathBuf) -> DataDir {
        DataDir { path }
    }

    /// Writes (or appends) `data`, creating parent directories.
    pub fn write(&self, raw: &str, data: &[u8], append: bool) -> Result<Response, AgentError> {
        let path = DataPath::parse(raw)?;
        let (parents, name) = path
            .split_last()
            .ok_or_else(|| invalid_path("cannot write the data directory"))?;
        let dir = self.walk(parents, true)?;
        let mode = if append { libc::O_APPEND } else { libc::O_TRUNC };
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | mode;
        let fd =
            openat(dir.as_fd(), name.as_bytes(), flags, 0o644).map_err(|e| classify(e, dir.as_fd(), name))?;
        require_regular(&fd, &path)?;
        File::from(fd)
            .write_all(data)
            .map_err(|e| classify(e, dir.as_fd(), name))?;
        Ok(Response::Done)
    }

    /// Reads up to `len` bytes (at most [`MAX_READ_BYTES`]) at `offset`.
    pub fn read(&self, raw: &str, offset: u64, len: u32) -> Result<Response, AgentError> {
        let path = DataPath::parse(raw)?;
        let (parents, name) = path.split_last().ok_or_else(|| not_a_file(&path))?;
        let dir = self.walk(parents, false)?;
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let fd =
            openat(dir.as_fd(), name.as_bytes(), flags, 0).map_err(|e| classify(e, dir.as_fd(), name))?;
        let size = require_regular(&fd, &path)?.st_size as u64;
        let file = File::from(fd);
        let want = len.min(MAX_READ_BYTES) as usize;
        let mut data = vec![0u8; want.min(size.saturating_sub(offset) as usize)];
        let mut filled = 0;
        while filled < data.len() {
            match file.read_at(&mut data[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(classify(e, dir.as_fd(), name)),
            }
        }
        data.truncate(filled);
        let eof = offset + filled as u64 >= size;
        Ok(Response::FileChunk { data, eof })
    }

    /// Lists a directory (or describes a single file), optionally recursively. Symlinks are
    /// listed but never followed.
    pub fn list(&self, raw: &str, recursive: bool) -> Result<Response, AgentError> {
        let path = DataPath::parse(raw)?;
        let dir = match path.split_last() {
            None => self.walk(&[], false)?,
            Some((parents, name)) => {
                let parent = self.walk(parents, false)?;
                let st = lstat_at(parent.as_fd(), name.as_bytes())
                    .map_err(|e| classify(e, parent.as_fd(), name))?;
                match st.st_mode & libc::S_IFMT {
                    libc::S_IFDIR => openat(parent.as_fd(), name.as_bytes(), DIR_FLAGS, 0)
                        .map_err(|e| classify(e, parent.as_fd(), name))?,
                    libc::S_IFLNK => return Err(symlink_error(name)),
                    _ => return Ok(Response::Files(vec![entry(path.display(), &st)])),
                }
            }
        };
        let mut entries = Vec::new();
        list_into(dir.as_fd(), &path.display(), recursive, 0, &mut entries)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Response::Files(entries))
    }

    /// Metadata of one file or directory (symlinks are refused).
    pub fn stat(&self, raw: &str) -> Result<Response, AgentError> {
        let path = DataPath::parse(raw)?;
        let st = match path.split_last() {
            None => fstat(&self.walk(&[], false)?).map_err(internal)?,
            Some((parents, name)) => {
                let dir = self.walk(parents, false)?;
                let st =
                    lstat_at(dir.as_fd(), name.as_bytes()).map_err(|e| classify(e, dir.as_fd(), name))?;
                if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    return Err(symlink_error(name));
                }
                st
            }
        };
        Ok(Response::File(entry(path.display(), &st)))
    }

    /// Removes a file, a symlink (not its target) or an empty directory.
    pub fn delete(&self, raw: &str) -> Result<Response, AgentError> {
        let path = DataPath::parse(raw)?;
        let (parents, name) = path
            .split_last()
            .ok_or_else(|| invalid_path("cannot delete the data directory"))?;
        let dir = self.walk(parents, false)?;
        let st = lstat_at(dir.as_fd(), name.as_bytes()).map_err(|e| classify(e, dir.as_fd(), name))?;
        let flags = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            libc::AT_REMOVEDIR
        } else {
            0
        };
        let c_name = c_name(name.as_bytes())?;
        // SAFETY: unlinkat on a valid directory fd and NUL-terminated name; never follows.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), c_name.as_ptr(), flags) } < 0 {
            return Err(classify(std::io::Error::last_os_error(), dir.as_fd(), name));
        }
        Ok(Response::Done)
    }

    /// Opens the directory named by `components`, one `O_NOFOLLOW` step at a time, creating
    /// missing directories when `create` is set.
    fn walk(&self, components: &[String], create: bool) -> Result<OwnedFd, AgentError> {
        let root = CString::new(self.path.as_os_str().as_bytes()).map_err(|_| internal("data dir path"))?;
        // SAFETY: open with a NUL-terminated path; the result is checked before use.
        let fd = unsafe {
            libc::open(
                root.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(internal(format!(
                "cannot open the data directory: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: fd is a freshly opened descriptor nobody else owns.
        let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
        for name in components {
            let next = match openat(dir.as_fd(), name.as_bytes(), DIR_FLAGS, 0) {
                Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                    let c = c_name(name.as_bytes())?;
                    // SAFETY: mkdirat on a valid directory fd and NUL-terminated name.
                    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } < 0 {
                        let e = std::io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(classify(e, dir.as_fd(), name));
                        }
                    }
                    openat(dir.as_fd(), name.as_bytes(), DIR_FLAGS, 0)
                }
                other => other,
            };
            dir = next.map_err(|e| classify(e, dir.as_fd(), name))?;
        }
        Ok(dir)
    }
}

fn list_into(
    dir: BorrowedFd<'_>,
    prefix: &str,
    recursive: bool,
    depth: usize,
    out: &mut Vec<FileEntry>,
) -> Result<(), AgentError> {
    for name in read_names(dir).map_err(internal)? {
        let st = match lstat_at(dir, &name) {
            Ok(st) => st,
            Err(_) => continue, // removed while listing
        };
        if out.len() >= MAX_LIST_ENTRIES {
            return Err(AgentError {
                kind: ErrorKind::BadRequest,
                message: format!("more than {MAX_LIST_ENTRIES} entries; list a subdirectory"),
            });
        }
        let shown = String::from_utf8_lossy(&name);
        let path = if prefix.is_empty() {
            shown.into_owned()
        } else {
            format!("{prefix}/{shown}")
        };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        out.push(entry(path.clone(), &st));
        if recursive && is_dir && depth < MAX_LIST_DEPTH {
            if let Ok(child) = openat(dir, &name, DIR_FLAGS, 0) {
                list_into(child.as_fd(), &path, true, depth + 1, out)?;
            }
        }
    }
    Ok(())
}

/// Names in a directory, without `.` and `..`.
fn read_names(dir: BorrowedFd<'_>) -> std::io::Result<Vec<Vec<u8>>> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd; fdopendir takes ownership of the duplicate and
    // closedir releases it; readdir's entries are copied before the next call.
    unsafe {
        let dup = libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0);
        if dup < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = libc::fdopendir(dup);
        if stream.is_null() {
            let e = std::io::Error::last_os_error();
            libc::close(dup);
            return Err(e);
        }
        libc::rewinddir(stream);
        let mut names = Vec::new();
        loop {
            let ent = libc::readdir(stream);
            if ent.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()).to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        libc::closedir(stream);
        Ok(names)
    }
}

fn c_name(name: &[u8]) -> Result<CString, AgentError> {
    CString::new(name).map_err(|_| invalid_path("path contains a NUL byte"))
}

/// Opens `name` in `dir` without ever following a symlink (see the module docs). With
/// `O_CREAT`, a missing entry is created exclusively.
fn openat(
    dir: BorrowedFd<'_>,
    name: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::io::Result<OwnedFd> {
    let symlink = || std::io::Error::from_raw_os_error(libc::ELOOP);
    match lstat_at(dir, name) {
        Ok(checked) => {
            if checked.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(symlink());
            }
            let fd = raw_openat(dir, name, flags & !libc::O_CREAT, mode)?;
            let opened = fstat(&fd)?;
            if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino) {
                return Err(symlink());
            }
            Ok(fd)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && flags & libc::O_CREAT != 0 => {
            raw_openat(dir, name, flags | libc::O_EXCL, mode)
        }
        Err(e) => Err(e),
    }
}

fn raw_openat(
    dir: BorrowedFd<'_>,
    name: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: openat on a valid directory fd and NUL-terminated name; result checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly opened descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<libc::stat> {
    let c = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: fstatat fills a zeroed stat buffer; AT_SYMLINK_NOFOLLOW never follows.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn fstat(fd: &OwnedFd) -> std::io::Result<libc::stat> {
    // SAFETY: fstat fills a zeroed stat buffer for a valid fd.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn require_regular(fd: &OwnedFd, path: &DataPath) -> Result<libc::stat, AgentError> {
    let st = fstat(fd).map_err(internal)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(not_a_file(path));
    }
    Ok(st)
}

fn entry(path: String, st: &libc::stat) -> FileEntry {
    FileEntry {
        path,
        is_dir: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
        size: st.st_size as u64,
        modified_ms: st.st_mtime * 1000 + st.st_mtime_nsec / 1_000_000,
    }
}

/// Maps an OS error on `name` (inside `dir`) to the protocol's error kinds.
fn classify(e: std::io::Error, dir: BorrowedFd<'_>, name: &str) -> AgentError {
    let errno = e.raw_os_error();
    let maybe_symlink = matches!(
        errno,
        Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EMLINK)
    );
    let is_symlink = maybe_symlink
        && matches!(lstat_at(dir, name.as_bytes()), Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK);
    describe_errno(errno, is_symlink, name, &e)
}

/// The protocol error for `errno` on `name`; `is_symlink` when `name` turned out to be one.
fn describe_errno(errno: Option<i32>, is_symlink: bool, name: &str, e: &dyn std::fmt::Display) -> AgentError {
    let kind_message = |kind, message: String| AgentError { kind, message };
    if is_symlink {
        return symlink_error(name);
    }
    match errno {
        Some(libc::ENOTDIR) => kind_message(ErrorKind::NotFound, format!("{name:?} is not a directory")),
        Some(libc::ELOOP) | Some(libc::EMLINK) => invalid_path(&format!("{name:?}: {e}")),
        Some(libc::ENOENT) => kind_message(ErrorKind::NotFound, format!("{name:?} does not exist")),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            kind_message(ErrorKind::NoSpace, "the data directory is full".into())
        }
        Some(libc::EISDIR) => kind_message(ErrorKind::BadRequest, format!("{name:?} is a directory")),
        Some(libc::ENOTEMPTY) => {
            kind_message(ErrorKind::BadRequest, format!("directory {name:?} is not empty"))
        }
        Some(libc::ENAMETOOLONG) => invalid_path("path is too long"),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            kind_message(ErrorKind::BadRequest, format!("{name:?}: permission denied"))
        }
        _ => internal(format!("{name:?}: {e}")),
    }
}

fn symlink_error(name: &str) -> AgentError {
    invalid_path(&format!(
        "{name:?} is a symlink; file operations do not follow symlinks"
    ))
}

fn not_a_file(path: &DataPath) -> AgentError {
    AgentError {
        kind: ErrorKind::BadRequest,
        message: format!("{:?} is not a regular file", path.display()),
    }
}

fn internal(e: impl std::fmt::Display) -> AgentError {
    AgentError {
        kind: ErrorKind::Internal,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(errno: i32, is_symlink: bool) -> ErrorKind {
        describe_errno(Some(errno), is_symlink, "x", &"err").kind
    }

    #[test]
    fn os_errors_map_to_protocol_kinds() {
        assert_eq!(kind(libc::ENOSPC, false), ErrorKind::NoSpace);
        assert_eq!(kind(libc::EDQUOT, false), ErrorKind::NoSpace);
        assert_eq!(kind(libc::ENOENT, false), ErrorKind::NotFound);
        assert_eq!(kind(libc::ENOTDIR, false), ErrorKind::NotFound);
        assert_eq!(kind(libc::ENOTEMPTY, false), ErrorKind::BadRequest);
        assert_eq!(kind(libc::EIO, false), ErrorKind::Internal);
    }

    #[test]
    fn anything_that_hit_a_symlink_is_an_invalid_path() {
        assert_eq!(kind(libc::ELOOP, false), ErrorKind::InvalidPath);
        for errno in [libc::ELOOP, libc::ENOTDIR, libc::EMLINK] {
            assert_eq!(kind(errno, true), ErrorKind::InvalidPath);
        }
    }
}
