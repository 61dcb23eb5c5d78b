//! Moves the host channel off fds 0/1 so no child process can read or write it.

use crate::AgentError;
use std::fs::File;
use std::os::fd::FromRawFd;

/// Lowest descriptor the channel is moved to, clear of the 3/4 the driver uses.
const CHANNEL_FD_MIN: libc::c_int = 10;

/// Duplicates stdin/stdout to close-on-exec descriptors, then points fd 0 at `/dev/null` and
/// fd 1 at stderr. Returns (from host, to host).
pub fn take_stdio() -> Result<(File, File), AgentError> {
    let err = |what: &str| {
        let e = std::io::Error::last_os_error();
        AgentError::Channel(std::io::Error::new(e.kind(), format!("{what}: {e}")))
    };
    // SAFETY: plain descriptor syscalls on fds this process owns; results are checked.
    unsafe {
        let input = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, CHANNEL_FD_MIN);
        if input < 0 {
            return Err(err("dup stdin"));
        }
        let output = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, CHANNEL_FD_MIN);
        if output < 0 {
            return Err(err("dup stdout"));
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0 {
            return Err(err("open /dev/null"));
        }
        if libc::dup2(null, 0) < 0 {
            return Err(err("redirect stdin"));
        }
        libc::close(null);
        if libc::dup2(2, 1) < 0 {
            return Err(err("redirect stdout"));
        }
        Ok((File::from_raw_fd(input), File::from_raw_fd(output)))
    }
}
