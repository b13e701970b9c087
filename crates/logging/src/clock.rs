//! Where the formats get the time of a line from, so tests can fix it.

use std::fmt;

use time::OffsetDateTime;

/// A source of the current time for the timestamps of log lines.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time; the formats convert it to UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real time of the system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Always the same instant: makes log lines reproducible in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_fixed_clock_always_tells_the_same_time() {
        let clock = FixedClock(datetime!(2024-01-15 10:30:45.123 UTC));
        assert_eq!(clock.now(), datetime!(2024-01-15 10:30:45.123 UTC));
        assert_eq!(clock.now(), clock.now());
    }

    #[test]
    fn the_system_clock_tells_the_current_time_in_utc() {
        let before = OffsetDateTime::now_utc();
        let now = SystemClock.now();
        let after = OffsetDateTime::now_utc();
        assert!(before <= now && now <= after);
        assert!(now.offset().is_utc());
    }
}
