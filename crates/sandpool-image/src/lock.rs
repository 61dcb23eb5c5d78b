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

#[cfg(test)]
mod tests {
    //! Touches a temporary file: flock semantics cannot be checked without one.
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn second_holder_waits_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = BuildLock::acquire(&path, || panic!("free lock must not wait")).unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let (path2, released2) = (path.clone(), released.clone());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            let mut waited = false;
            let _second = BuildLock::acquire(&path2, || waited = true).unwrap();
            assert!(
                released2.load(Ordering::SeqCst),
                "acquired while the first holder still held it"
            );
            waited
        });
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        released.store(true, Ordering::SeqCst);
        drop(first);
        assert!(waiter.join().unwrap(), "waiting callback not called");
    }
}
