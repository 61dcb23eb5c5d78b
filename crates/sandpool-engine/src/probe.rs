//! Startup and liveness probes of custom containers, run through the agent channel
//! (`AgentClient::connect`), so no host network is ever opened into a sandbox.

use crate::custom_spec::{Probe, ProbeCheck};
use sandpool_sandbox::AgentClient;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest probe response head read.
const HEAD_LIMIT: usize = 8192;

/// One check: `Ok(())` when it passes, else why not.
pub(crate) async fn check_once(
    agent: &AgentClient,
    check: &ProbeCheck,
    timeout: Duration,
) -> Result<(), String> {
    let work = async {
        match check {
            ProbeCheck::TcpSocket { port } => agent.connect(*port).await.map(drop).map_err(|e| e.to_string()),
            ProbeCheck::HttpGet { path, port } => http_get(agent, *port, path).await,
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

async fn http_get(agent: &AgentClient, port: u16, path: &str) -> Result<(), String> {
    let mut stream = agent.connect(port).await.map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: sandpool-probe\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < HEAD_LIMIT {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", line.lines().next().unwrap_or("")))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

/// Tracks consecutive outcomes against a probe's thresholds.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    successes: u32,
    failures: u32,
}

/// What a run of checks has decided so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Pass,
    Fail,
    Undecided,
}

impl Verdict {
    pub(crate) fn record(&mut self, probe: &Probe, ok: bool) -> Decision {
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= probe.success_threshold {
                return Decision::Pass;
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= probe.failure_threshold {
                return Decision::Fail;
            }
        }
        Decision::Undecided
    }
}

/// Runs `probe` until it passes or fails (after its initial delay); the last error on failure.
pub(crate) async fn until_decided(agent: &AgentClient, probe: &Probe) -> Result<(), String> {
    tokio::time::sleep(probe.initial_delay).await;
    let mut verdict = Verdict::default();
    loop {
        let outcome = check_once(agent, &probe.check, probe.timeout).await;
        match verdict.record(probe, outcome.is_ok()) {
            Decision::Pass => return Ok(()),
            Decision::Fail => return Err(outcome.err().unwrap_or_default()),
            Decision::Undecided => tokio::time::sleep(probe.period).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_count_consecutive_outcomes() {
        let mut probe = Probe::with_defaults(ProbeCheck::TcpSocket { port: 1 });
        probe.failure_threshold = 2;
        probe.success_threshold = 2;
        let mut v = Verdict::default();
        assert_eq!(v.record(&probe, false), Decision::Undecided);
        assert_eq!(v.record(&probe, true), Decision::Undecided);
        assert_eq!(v.record(&probe, false), Decision::Undecided);
        assert_eq!(v.record(&probe, false), Decision::Fail);
        let mut v = Verdict::default();
        assert_eq!(v.record(&probe, true), Decision::Undecided);
        assert_eq!(v.record(&probe, true), Decision::Pass);
    }
}
