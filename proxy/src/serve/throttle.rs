//! A log throttle for an error that can recur thousands of times a second (accept
//! failing with EMFILE while connections wait in the backlog): at most one line per
//! interval, and a count of the occurrences that were not logged.

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
        let at = u64::try_from(now.saturating_duration_since(self.base).as_millis())
            .unwrap_or(u64::MAX - 1);
        let last = self.last.load(Ordering::Relaxed);
        let due = last == NEVER || at.saturating_sub(last) >= self.every_ms;
        if due
            && self
                .last
                .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Takes the count of occurrences not logged yet, when there are any (to report
    /// them once the error stopped). One relaxed load when there are none.
    pub(crate) fn take_suppressed(&self) -> Option<u64> {
        if self.suppressed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        match self.suppressed.swap(0, Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
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
        assert_eq!(t.take_suppressed(), Some(19));
        assert_eq!(t.take_suppressed(), None);
        assert_eq!(t.note(at(3000)), Some(0));
    }
}
