//! Children the agent owns (the driver, shell commands), and reaping of the orphans it
//! inherits when it runs as PID 1 of a sandbox.

use std::collections::HashSet;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Registry of the process groups the agent started. Every child is spawned as the leader
/// of its own process group, so a whole command tree can be signalled at once.
#[derive(Default)]
pub struct Processes {
    owned: Mutex<Owned>,
}

#[derive(Default)]
struct Owned {
    pids: HashSet<i32>,
    /// Set on shutdown: nothing new may start once everything has been killed.
    closed: bool,
}

impl Processes {
    /// Spawns `cmd` (which must set `process_group(0)`) and records it as owned, under the
    /// same lock the reaper takes, so the reaper can never steal its exit status.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<Child> {
        let mut owned = self.owned.lock().expect("process registry poisoned");
        if owned.closed {
            return Err(std::io::Error::other("the agent is shutting down"));
        }
        let child = cmd.spawn()?;
        owned.pids.insert(child.id() as i32);
        Ok(child)
    }

    /// Forgets a child once its status has been collected.
    pub fn release(&self, pid: i32) {
        self.owned
            .lock()
            .expect("process registry poisoned")
            .pids
            .remove(&pid);
    }

    /// SIGKILLs every owned process group and refuses to start new ones (on shutdown).
    pub fn kill_all(&self) {
        let mut owned = self.owned.lock().expect("process registry poisoned");
        owned.closed = true;
        for pid in owned.pids.iter() {
            signal_group(*pid, libc::SIGKILL);
        }
    }

    /// When the agent is PID 1, reaps zombie orphans it did not start, every second.
    pub fn start_reaper(self: &Arc<Self>) {
        // SAFETY: getpid has no preconditions.
        if unsafe { libc::getpid() } != 1 {
            return;
        }
        let me = Arc::clone(self);
        let _ = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                me.reap_orphans();
            });
    }

    fn reap_orphans(&self) {
        let owned = self.owned.lock().expect("process registry poisoned");
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if owned.pids.contains(&pid) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            if let Some((state, ppid)) = parse_state_and_ppid(&stat) {
                if state == 'Z' && ppid == me {
                    let mut status = 0;
                    // SAFETY: reaps one specific zombie child; WNOHANG never blocks.
                    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                }
            }
        }
    }
}

/// Sends `signal` to the process group led by `pid`.
pub fn signal_group(pid: i32, signal: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill has no memory-safety preconditions; a stale group yields ESRCH.
        unsafe { libc::kill(-pid, signal) };
    }
}

/// Extracts (state, ppid) from `/proc/<pid>/stat`; the command name may contain spaces and
/// parentheses, so parsing starts after the last `)`.
fn parse_state_and_ppid(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(parse_state_and_ppid("42 (a) b) Z 1 42 42"), Some(('Z', 1)));
        assert_eq!(parse_state_and_ppid("7 (bash) S 3 7 7 0"), Some(('S', 3)));
        assert_eq!(parse_state_and_ppid("garbage"), None);
    }
}
