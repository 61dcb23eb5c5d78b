//! An exclusive `flock` on a lock file, so two processes never build the same image at once.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::ImageError;

/// Holds the lock until dropped (closing the file releases it).
pub(crate) struct BuildLock {
    _file: File,
}

impl BuildLock {
    /// Takes the lock on `path`, blocking while another process holds it. `waiting` is called
    /// once if the lock is busy.
    pub(crate) fn acquire(path: &Path, waiting: impl FnOnce()) -> Result<Self, ImageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(ImageError::io("opening lock file", path))?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            waiting();
            flock(&file, libc::LOCK_EX).map_err(ImageError::io("locking", path))?;
        }
        Ok(BuildLock { _file: file })
    }
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
