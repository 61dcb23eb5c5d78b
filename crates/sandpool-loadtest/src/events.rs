//! Pool events read from the server's JSON log: sandboxes started, sessions allocated
//! and ended. The data plane has no "ready sandboxes" figure, so the bench derives it:
//! every started sandbox is either still ready or has been allocated.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Lines of server log kept for error messages.
const TAIL_LINES: usize = 60;

/// Counters of one pool since the server started.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PoolCounters {
    /// `sandbox ready` events: sandboxes that finished starting.
    pub started: i64,
    /// Of those, restored from the warm-start template.
    pub restored: i64,
    /// Start durations the server reported (`took_ms`).
    pub start_ms: Vec<u64>,
    pub allocated: i64,
    pub ended: i64,
    pub start_failures: i64,
    pub died: i64,
}

impl PoolCounters {
    /// Sandboxes started and not (yet) handed to a session.
    pub fn ready(&self) -> i64 {
        self.started - self.allocated - self.died
    }
}

/// Shared view of the log, updated by the reader task.
#[derive(Debug, Clone, Default)]
pub struct Events {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    pools: HashMap<String, PoolCounters>,
    tail: VecDeque<String>,
}

impl Events {
    /// Folds one log line in; lines that are not engine events only go to the tail.
    pub fn observe(&self, line: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.tail.len() == TAIL_LINES {
            inner.tail.pop_front();
        }
        inner.tail.push_back(line.to_owned());
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        let fields = &value["fields"];
        let (Some(message), Some(pool)) = (fields["message"].as_str(), fields["pool"].as_str()) else {
            return;
        };
        let c = inner.pools.entry(pool.to_owned()).or_default();
        match message {
            "sandbox ready" => {
                c.started += 1;
                if fields["restored"].as_bool() == Some(true) {
                    c.restored += 1;
                }
                if let Some(ms) = fields["took_ms"].as_u64() {
                    c.start_ms.push(ms);
                }
            }
            "session allocated" => c.allocated += 1,
            "session ended" => c.ended += 1,
            "sandbox failed to start" => c.start_failures += 1,
            "sandbox died" => c.died += 1,
            _ => {}
        }
    }

    pub fn pool(&self, name: &str) -> PoolCounters {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.pools.get(name).cloned().unwrap_or_default()
    }

    pub fn tail(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str, extra: &str) -> String {
        format!(
            r#"{{"timestamp":"t","level":"INFO","fields":{{"message":"{message}","pool":"p"{extra}}},"target":"sandpool_engine::runner"}}"#
        )
    }

    #[test]
    fn ready_is_started_minus_allocated() {
        let e = Events::default();
        for _ in 0..3 {
            e.observe(&line(
                "sandbox ready",
                r#","sandbox":"s","restored":true,"took_ms":812"#,
            ));
        }
        e.observe(&line("sandbox ready", r#","restored":false,"took_ms":90"#));
        e.observe(&line("session allocated", r#","identifier":"a""#));
        e.observe(&line("session ended", r#","reason":"deleted""#));
        let c = e.pool("p");
        assert_eq!((c.started, c.restored, c.allocated, c.ended), (4, 3, 1, 1));
        assert_eq!(c.ready(), 3);
        assert_eq!(c.start_ms, vec![812, 812, 812, 90]);
        assert_eq!(e.pool("other"), PoolCounters::default());
    }

    #[test]
    fn other_lines_only_reach_the_tail() {
        let e = Events::default();
        e.observe("not json");
        e.observe(r#"{"fields":{"message":"sandbox ready"}}"#);
        assert_eq!(e.pool("p"), PoolCounters::default());
        for i in 0..100 {
            e.observe(&format!("line {i}"));
        }
        let tail = e.tail();
        assert!(tail.ends_with("line 99") && !tail.contains("line 39\n"));
    }
}
