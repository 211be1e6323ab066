//! A log throttle for an event that can recur thousands of times a second (accept
//! failing with EMFILE while connections wait in the backlog, a peer of another uid
//! connecting to the control socket in a loop): at most one line per interval, and a
//! count of the occurrences that were not logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `last` before any occurrence was logged.
const NEVER: u64 = u64::MAX;

/// Decides which occurrences of one error are logged; shared by every thread.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// Time origin of `last`.
    base: Instant,
    every_ms: u64,
    /// When an occurrence was last logged, in ms since `base` ([`NEVER`] before that).
    last: AtomicU64,
    /// Occurrences not logged since the last logged one.
    suppressed: AtomicU64,
}

impl Throttle {
    /// A throttle that lets one occurrence per `every` through.
    pub(crate) fn new(every: Duration) -> Throttle {
        Throttle {
            base: Instant::now(),
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(NEVER),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Notes one occurrence at `now`. `Some(n)`: log it, and say that `n` occurrences
    /// since the last logged one were not logged; `None`: count it, do not log it.
    pub(crate) fn note(&self, now: Instant) -> Option<u64> {
        if self.claim(now) {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Takes the count of occurrences not logged yet, when there are any and a line is
    /// due at `now()` (to report them once the error stopped): the report is a logged
    /// line like any other, within the one line per interval. One relaxed load (and no
    /// clock read) when there are none.
    pub(crate) fn take_suppressed(&self, now: impl FnOnce() -> Instant) -> Option<u64> {
        if self.suppressed.load(Ordering::Relaxed) == 0 || !self.claim(now()) {
            return None;
        }
        match self.suppressed.swap(0, Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Takes the line of the interval at `now`, when one is due and no other thread
    /// took it first.
    fn claim(&self, now: Instant) -> bool {
        let at = u64::try_from(now.saturating_duration_since(self.base).as_millis())
            .unwrap_or(u64::MAX - 1);
        let last = self.last.load(Ordering::Relaxed);
        let due = last == NEVER || at.saturating_sub(last) >= self.every_ms;
        due && self
            .last
            .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_occurrence_per_interval_is_logged_with_the_count_of_the_others() {
        let t = Throttle::new(Duration::from_secs(1));
        let start = t.base;
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(t.note(at(0)), Some(0));
        // 20 per second, as the accept loop's 50 ms back-off produces.
        let logged: Vec<_> = (1..60).filter_map(|i| t.note(at(i * 50))).collect();
        assert_eq!(logged, vec![19, 19]);
        // The last line was at 2000 ms: the count waits for the next interval.
        assert_eq!(t.take_suppressed(|| at(2999)), None);
        assert_eq!(t.take_suppressed(|| at(3000)), Some(19));
        assert_eq!(t.take_suppressed(|| at(3000)), None);
        assert_eq!(t.note(at(4000)), Some(0));
    }

    #[test]
    fn recovery_reports_share_the_interval_with_errors() {
        // Near the fd limit accepts fail and succeed in turn: every success after a
        // suppressed error may report the count, but only within the one line a second.
        let t = Throttle::new(Duration::from_secs(1));
        let start = t.base;
        let at = |ms| start + Duration::from_millis(ms);
        let mut lines = Vec::new();
        for i in 0..60 {
            if t.note(at(i * 50)).is_some() {
                lines.push(i * 50);
            }
            if t.take_suppressed(|| at(i * 50 + 1)).is_some() {
                lines.push(i * 50 + 1);
            }
        }
        assert!(
            lines.windows(2).all(|w| w[1] - w[0] >= 1000),
            "more than one line a second: {lines:?}"
        );
        assert_eq!(lines, vec![0, 1000, 2000]);
    }
}
