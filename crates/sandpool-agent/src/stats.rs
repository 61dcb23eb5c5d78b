//! Resource usage as seen inside the sandbox: resident memory and number of processes from
//! `/proc`, usage of the data directory from `statvfs`.

use sandpool_proto::AgentStats;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Samples `/proc` and the data directory's filesystem.
pub fn collect(data_dir: &Path) -> AgentStats {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let mut memory_bytes = 0;
    let mut processes = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.as_bytes().iter().all(u8::is_ascii_digit) {
                continue;
            }
            if let Ok(statm) = std::fs::read_to_string(entry.path().join("statm")) {
                processes += 1;
                memory_bytes += resident_pages(&statm).unwrap_or(0) * page;
            }
        }
    }
    let (data_used_bytes, data_total_bytes) = filesystem_usage(data_dir).unwrap_or((0, 0));
    AgentStats {
        memory_bytes,
        processes,
        data_used_bytes,
        data_total_bytes,
    }
}

/// Second field of `/proc/<pid>/statm`.
fn resident_pages(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

fn filesystem_usage(dir: &Path) -> Option<(u64, u64)> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills a zeroed buffer for a NUL-terminated path.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) < 0 {
            return None;
        }
        st
    };
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let used = (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize;
    Some((used, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_resident_field_parses() {
        assert_eq!(resident_pages("1000 250 30 1 0 80 0\n"), Some(250));
        assert_eq!(resident_pages(""), None);
    }
}
