//! Time as the engine sees it, behind a trait so tests can move it by hand.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time, for cooldowns and timeouts.
    fn now(&self) -> Instant;
    /// Wall-clock time, for timestamps shown to users and stored.
    fn wall(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(Instant, SystemTime)>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            state: Mutex::new((
                Instant::now(),
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let mut s = self.state.lock().expect("clock poisoned");
        s.0 += by;
        s.1 += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.state.lock().expect("clock poisoned").0
    }
    fn wall(&self) -> SystemTime {
        self.state.lock().expect("clock poisoned").1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::default();
        let (t0, w0) = (c.now(), c.wall());
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_secs(5));
        assert_eq!(c.now() - t0, Duration::from_secs(5));
        assert_eq!(c.wall().duration_since(w0).unwrap(), Duration::from_secs(5));
    }
}
