//! Runs a build tool, streaming its output lines (throttled) to the progress callback while
//! keeping the last lines and the current hook stage for error reports.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::hook::STAGE_MARKER;

/// How many trailing output lines an error report keeps.
const TAIL_LINES: usize = 25;
/// Minimum interval between two forwarded tool output lines.
const THROTTLE: Duration = Duration::from_millis(250);

/// What a finished tool run left behind.
pub(crate) struct RunOutcome {
    pub status: ExitStatus,
    /// Last hook stage announced, or the initial stage.
    pub stage: String,
    /// Last output lines, joined with newlines.
    pub tail: String,
}

/// Spawns `cmd` with piped stdout/stderr and waits for it. Stage markers are always forwarded
/// as `stage: <name>`; other lines at most every [`THROTTLE`].
pub(crate) fn run_streaming(
    mut cmd: Command,
    initial_stage: &str,
    progress: &mut dyn FnMut(&str),
) -> std::io::Result<RunOutcome> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || forward_lines(stream, tx))
    })
    .collect();
    drop(tx);

    let mut stage = initial_stage.to_string();
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut last_forwarded: Option<Instant> = None;
    for line in rx {
        if let Some(name) = line.strip_prefix(STAGE_MARKER) {
            stage = name.trim().to_string();
            progress(&format!("stage: {stage}"));
            continue;
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        if !matches!(last_forwarded, Some(t) if t.elapsed() < THROTTLE) {
            progress(&line);
            last_forwarded = Some(Instant::now());
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait()?;
    Ok(RunOutcome {
        status,
        stage,
        tail: Vec::from(tail).join("\n"),
    })
}

fn forward_lines(stream: Box<dyn Read + Send>, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
        for part in String::from_utf8_lossy(&buf).split(['\r', '\n']) {
            let part = part.trim_end();
            if !part.is_empty() && tx.send(part.to_string()).is_err() {
                return;
            }
        }
        buf.clear();
    }
}

/// Does this output look like the network (DNS, connection, mirror fetch) failed?
pub(crate) fn looks_like_network_failure(tail: &str) -> bool {
    const PATTERNS: [&str; 10] = [
        "Temporary failure resolving",
        "Temporary failure in name resolution",
        "Could not resolve",
        "Failed to fetch",
        "Name or service not known",
        "Network is unreachable",
        "Connection timed out",
        "Connection refused",
        "NewConnectionError",
        "Max retries exceeded",
    ];
    PATTERNS.iter().any(|p| tail.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_patterns() {
        assert!(looks_like_network_failure(
            "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease"
        ));
        assert!(looks_like_network_failure(
            "  ... NewConnectionError('...: Failed to establish a new connection')"
        ));
        assert!(!looks_like_network_failure(
            "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES"
        ));
    }
}
