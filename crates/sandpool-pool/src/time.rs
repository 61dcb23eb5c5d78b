//! Monotonic time as the pool core sees it: milliseconds from an origin the caller picks.

use std::time::{Duration, Instant};

/// A point on the caller's monotonic clock, in milliseconds since an arbitrary origin.
/// The pool core never reads a clock: every call passes `now` as one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// This instant moved `d` later (saturating).
    pub fn plus(self, d: Duration) -> Millis {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Millis(self.0.saturating_add(ms))
    }

    /// `now` on a clock whose zero is `origin` (e.g. when the pool was created);
    /// instants before `origin` map to zero. Reads no clock.
    pub fn from_instant(origin: Instant, now: Instant) -> Millis {
        Millis(u64::try_from(now.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX))
    }

    /// The [`Instant`] this is, on a clock whose zero is `origin`.
    pub fn to_instant(self, origin: Instant) -> Instant {
        origin + Duration::from_millis(self.0)
    }

    /// How long after `earlier` this instant is (zero if it is not later).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Millis(5).plus(Duration::from_millis(7)), Millis(12));
        assert_eq!(
            Millis(u64::MAX - 1).plus(Duration::from_secs(1)),
            Millis(u64::MAX)
        );
        assert_eq!(Millis(12).since(Millis(5)), Duration::from_millis(7));
        assert_eq!(Millis(5).since(Millis(12)), Duration::ZERO);
    }

    #[test]
    fn converts_to_and_from_instants_around_an_origin() {
        let origin = Instant::now();
        let later = origin + Duration::from_millis(1_234);
        assert_eq!(Millis::from_instant(origin, later), Millis(1_234));
        assert_eq!(Millis(1_234).to_instant(origin), later);
        assert_eq!(Millis::from_instant(later, origin), Millis(0));
    }
}
