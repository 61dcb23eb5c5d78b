//! The last lines of runtime log files, for error messages.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// The last `max_bytes` of each existing, non-empty file, labelled by file name and
/// joined; empty when there is nothing to show.
pub fn tail_of_files(paths: &[PathBuf], max_bytes: u64) -> String {
    let mut parts = Vec::new();
    for path in paths {
        let Ok(mut file) = std::fs::File::open(path) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 || file.seek(SeekFrom::Start(len.saturating_sub(max_bytes))).is_err() {
            continue;
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_ok() {
            let text = String::from_utf8_lossy(&bytes);
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            parts.push(format!("[{name}] {}", text.trim()));
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_tail_of_existing_files_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        std::fs::write(&a, "0123456789").unwrap();
        let tail = super::tail_of_files(&[a, dir.path().join("missing.log")], 4);
        assert_eq!(tail, "[a.log] 6789");
    }
}
