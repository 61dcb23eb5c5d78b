//! Proportional set size of a sandbox's host processes: every process whose command
//! line names the sandbox id (the runtime's sandbox, gofer and monitor processes) and
//! all their descendants, summed from `/proc/<pid>/smaps_rollup`.

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

/// PSS in bytes of each of `pids` with its command name; processes that exited
/// meanwhile are left out.
pub fn pss_by_process(pids: &BTreeSet<u32>) -> Vec<(u32, String, u64)> {
    pids.iter()
        .filter_map(|&pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            Some((pid, comm.trim().to_string(), parse_pss_kib(&text)? * 1024))
        })
        .collect()
}

/// Sum of PSS over `pids`, in bytes.
pub fn total_pss_bytes(pids: &BTreeSet<u32>) -> u64 {
    pss_by_process(pids).iter().map(|(_, _, bytes)| bytes).sum()
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
        // The test process itself is excluded, so ask for the sleep by its argument.
        let pids = sandbox_host_pids("30");
        let _ = child.kill();
        let _ = child.wait();
        assert!(pids.contains(&child.id()), "{pids:?}");
    }
}
