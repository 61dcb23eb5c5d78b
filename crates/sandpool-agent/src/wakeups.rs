//! The two kernel objects the supervisor thread sleeps on besides the driver's pipe: a
//! timer armed with the current deadline (by whichever thread starts a job, so starting one
//! wakes nobody) and a counter other threads bump to hand it work.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A monotonic one-shot timer (`timerfd`); readable once it has expired.
pub struct DeadlineTimer {
    fd: OwnedFd,
}

impl DeadlineTimer {
    pub fn new() -> std::io::Result<DeadlineTimer> {
        // SAFETY: timerfd_create returns a new descriptor we then own, or -1.
        let fd =
            unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        Ok(DeadlineTimer {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Expires `after` from now (at least 1 ns later: zero would disarm it).
    pub fn arm(&self, after: Duration) {
        let after = after.max(Duration::from_nanos(1));
        self.set(libc::timespec {
            tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        });
    }

    /// Stops the timer; an expiry not yet consumed is cleared too.
    pub fn disarm(&self) {
        self.set(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
    }

    fn set(&self, value: libc::timespec) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: spec is a valid itimerspec; the old value is not requested.
        let rc = unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            tracing::error!(error = %std::io::Error::last_os_error(), "cannot set the driver deadline timer");
        }
    }

    /// Consumes an expiry so the descriptor stops being readable.
    pub fn clear(&self) {
        drain(self.fd.as_raw_fd());
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An `eventfd` used as a doorbell.
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    pub fn new() -> std::io::Result<Doorbell> {
        // SAFETY: eventfd returns a new descriptor we then own, or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        Ok(Doorbell {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to an eventfd we own.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Consumes every ring so far.
    pub fn clear(&self) {
        drain(self.fd.as_raw_fd());
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn drain(fd: RawFd) {
    let mut count: u64 = 0;
    // SAFETY: reads at most 8 bytes into a valid u64 from a non-blocking descriptor we own.
    unsafe { libc::read(fd, (&mut count as *mut u64).cast(), 8) };
}

/// Which of the watched descriptors are ready.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// The driver's pipe has data or was closed.
    pub driver: bool,
    pub timer: bool,
    pub doorbell: bool,
}

/// Blocks until one of the descriptors is ready (the driver's pipe only if given).
pub fn wait(driver: Option<RawFd>, timer: &DeadlineTimer, doorbell: &Doorbell) -> std::io::Result<Ready> {
    let mut fds = [
        pollfd(timer.raw()),
        pollfd(doorbell.raw()),
        pollfd(driver.unwrap_or(-1)),
    ];
    loop {
        // SAFETY: fds is a valid array of 3 pollfd; a negative fd is ignored by poll.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let ready = |p: &libc::pollfd| p.revents != 0;
    Ok(Ready {
        timer: ready(&fds[0]),
        doorbell: ready(&fds[1]),
        driver: driver.is_some() && ready(&fds[2]),
    })
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_timer_wakes_the_waiter_and_a_disarmed_one_does_not() {
        let timer = DeadlineTimer::new().unwrap();
        let bell = Doorbell::new().unwrap();
        timer.arm(Duration::from_millis(1));
        let ready = wait(None, &timer, &bell).unwrap();
        assert_eq!(
            ready,
            Ready {
                timer: true,
                ..Ready::default()
            }
        );
        timer.clear();
        timer.arm(Duration::from_secs(3600));
        timer.disarm();
        bell.ring();
        bell.ring();
        let ready = wait(None, &timer, &bell).unwrap();
        assert_eq!(
            ready,
            Ready {
                doorbell: true,
                ..Ready::default()
            }
        );
        bell.clear();
        timer.arm(Duration::ZERO);
        assert!(
            wait(None, &timer, &bell).unwrap().timer,
            "a zero deadline still expires"
        );
    }
}
