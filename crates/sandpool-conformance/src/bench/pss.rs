//! Proportional set size of a sandbox's host processes: every process whose command
//! line names the sandbox id (the runtime's sandbox, gofer and monitor processes) and
//! all their descendants, summed from `/proc/<pid>/smaps_rollup` once per address space.
//!
//! Processes can share one address space without being threads of one process: gVisor's
//! systrap stubs are clones with `CLONE_VM`, three per sandbox process here, and each
//! reports the whole PSS of the memory they share. Counting each would add it three times.

use std::collections::{BTreeSet, HashMap};

/// Host processes belonging to sandbox `id`.
pub fn sandbox_host_pids(id: &str) -> BTreeSet<u32> {
    let me = std::process::id();
    let mut parent_of = HashMap::new();
    let mut roots = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return roots;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some(ppid) = parse_ppid(&stat) {
                parent_of.insert(pid, ppid);
            }
        }
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if cmdline_names(&cmdline, id) {
                roots.insert(pid);
            }
        }
    }
    let mut all = roots.clone();
    loop {
        let more: Vec<u32> = parent_of
            .iter()
            .filter(|(pid, ppid)| all.contains(ppid) && !all.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            return all;
        }
        all.extend(more);
    }
}

/// One host process's share of memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPss {
    pub pid: u32,
    pub comm: String,
    pub pss_bytes: u64,
    /// An earlier process of the list with the same address space: this one's PSS is
    /// that one's and is not counted again.
    pub shares_memory_with: Option<u32>,
}

/// PSS of each of `pids` with its command name, marking processes that share an address
/// space with an earlier one; processes that exited meanwhile are left out.
pub fn pss_by_process(pids: &BTreeSet<u32>) -> Vec<ProcessPss> {
    let mut out: Vec<ProcessPss> = Vec::new();
    for &pid in pids {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        let Some(kib) = parse_pss_kib(&text) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let shares_memory_with = out
            .iter()
            .filter(|p| p.shares_memory_with.is_none())
            .find(|p| same_address_space(p.pid, pid))
            .map(|p| p.pid);
        out.push(ProcessPss {
            pid,
            comm: comm.trim().to_string(),
            pss_bytes: kib * 1024,
            shares_memory_with,
        });
    }
    out
}

/// Sum of PSS over `processes`, each address space once, in bytes.
pub fn total_pss_bytes(processes: &[ProcessPss]) -> u64 {
    processes
        .iter()
        .filter(|p| p.shares_memory_with.is_none())
        .map(|p| p.pss_bytes)
        .sum()
}

/// `kcmp(2)`'s "same virtual memory" comparison.
const KCMP_VM: libc::c_long = 1;

/// True when the two processes share one address space (`kcmp` with `KCMP_VM`).
fn same_address_space(a: u32, b: u32) -> bool {
    // SAFETY: kcmp only compares kernel objects of two pids; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            a as libc::c_long,
            b as libc::c_long,
            KCMP_VM,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    rc == 0
}

/// The `Pss:` line of an smaps_rollup, in KiB.
pub fn parse_pss_kib(smaps_rollup: &str) -> Option<u64> {
    smaps_rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The parent pid from `/proc/<pid>/stat` (the command name may contain spaces and
/// parentheses, so parse after the last `)`).
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// True when a NUL-separated command line has `id` as an argument or as a path
/// component or `=`-value of one.
pub fn cmdline_names(cmdline: &[u8], id: &str) -> bool {
    cmdline
        .split(|b| *b == 0)
        .filter_map(|a| std::str::from_utf8(a).ok())
        .any(|arg| arg.split(['/', '=', ',']).any(|part| part == id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_space_counts_once() {
        let p = |pid, pss_bytes, shares_memory_with| ProcessPss {
            pid,
            comm: "exe".into(),
            pss_bytes,
            shares_memory_with,
        };
        let list = [
            p(1, 100, None),
            p(2, 40, None),
            p(3, 40, Some(2)),
            p(4, 40, Some(2)),
        ];
        assert_eq!(total_pss_bytes(&list), 140);
    }

    #[test]
    fn parses_pss_from_smaps_rollup() {
        let text = "55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:     12345 kB\nPss:      6789 kB\nPss_Anon: 1 kB\n";
        assert_eq!(parse_pss_kib(text), Some(6789));
        assert_eq!(parse_pss_kib("Rss: 1 kB\n"), None);
    }

    #[test]
    fn parses_ppid_after_odd_command_names() {
        assert_eq!(parse_ppid("42 (exe (x) y) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn matches_whole_ids_only() {
        let cmd = b"runsc-sandbox\0--root=/x/state\0boot\0--bundle=/x/cf-1-2-a/bundle\0cf-1-2-a\0";
        assert!(cmdline_names(cmd, "cf-1-2-a"));
        assert!(!cmdline_names(cmd, "cf-1-2"));
        assert!(!cmdline_names(b"sleep\0forever\0", "cf-1-2-a"));
    }

    #[test]
    fn finds_this_process_children_by_ancestry() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        // The test process itself is excluded, so ask for the sleep by its argument. Right
        // after spawn returns the child may not show its new command line yet (the parent
        // of a vfork-style spawn resumes before exec has set it up), so look a few times.
        let mut pids = BTreeSet::new();
        for _ in 0..100 {
            pids = sandbox_host_pids("30");
            if pids.contains(&child.id()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(pids.contains(&child.id()), "{pids:?}");
    }
}
