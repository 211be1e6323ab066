//! One HTTP/2 connection's account of premature resets ("open, wait, reset": the client
//! resets a stream refproxy has already forwarded, so refproxy must close its origin
//! connection mid-response).
//!
//! A stream is reset prematurely when the client resets it less than
//! `limits.h2_premature_reset_window` after refproxy took it and before its response
//! ended. The account looks at the connection's last `2 × limits.h2_max_premature_resets`
//! ended streams (served, failed or reset alike; tunnels are not counted): more than
//! `limits.h2_max_premature_resets` premature resets among them trip it, once, and the
//! connection is closed with `GOAWAY ENHANCE_YOUR_CALM`. So a client may reset at most
//! about as many young streams as it lets live (or finish), however long its connection
//! lives, and however fast it goes: the bound is a ratio, not a rate. A connection that
//! has ended fewer streams than the span trips once it has more than the limit
//! (Envoy's early trip at half of `premature_reset_total_stream_count`). 0 turns it off.

use std::collections::VecDeque;
use std::time::Duration;

/// How a stream of the connection ended, as the account sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Answered, failed, or anything else but a client reset before the response ended
    /// (a tunnel too).
    Other,
    /// The client reset the stream before its response ended, this long after refproxy
    /// took it.
    Reset(Duration),
}

/// The premature resets among a connection's last ended streams.
#[derive(Debug)]
pub(crate) struct Account {
    window: Duration,
    max: u32,
    /// Streams ended so far.
    ended: u64,
    /// The sequence numbers (in `ended`) of the premature resets among the last
    /// `2 × max` ended streams: at most `max + 1`, allocated only once a stream is
    /// reset prematurely.
    premature: VecDeque<u64>,
    tripped: bool,
}

impl Account {
    /// An account for `limits.h2_premature_reset_window` and
    /// `limits.h2_max_premature_resets` (0: never trips).
    pub(crate) fn new(window: Duration, max: u32) -> Account {
        Account {
            window,
            max,
            ended: 0,
            premature: VecDeque::new(),
            tripped: false,
        }
    }

    /// Records a stream's end; true when this end trips the limit (only once: ends after
    /// that are not counted).
    pub(crate) fn record(&mut self, end: End) -> bool {
        if self.max == 0 || self.tripped {
            return false;
        }
        let seq = self.ended;
        self.ended += 1;
        let span = 2 * u64::from(self.max);
        while self.premature.front().is_some_and(|&s| s + span <= seq) {
            self.premature.pop_front();
        }
        match end {
            End::Reset(lived) if lived < self.window => self.premature.push_back(seq),
            _ => return false,
        }
        self.tripped = self.premature.len() > self.max as usize;
        self.tripped
    }

    /// Premature resets among the last `2 × max` ended streams.
    #[cfg(test)]
    fn recent(&self) -> usize {
        self.premature.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(1);
    const YOUNG: End = End::Reset(Duration::from_millis(20));
    const OLD: End = End::Reset(Duration::from_secs(1));

    #[test]
    fn more_than_max_premature_resets_trip_it_once() {
        let mut a = Account::new(WINDOW, 3);
        for _ in 0..3 {
            assert!(!a.record(YOUNG));
        }
        assert!(a.record(YOUNG), "the 4th of 3 allowed");
        assert!(!a.record(YOUNG), "tripped once only");
    }

    #[test]
    fn resets_after_the_window_and_other_ends_do_not_count() {
        let mut a = Account::new(WINDOW, 3);
        for _ in 0..100 {
            assert!(!a.record(OLD));
            assert!(!a.record(End::Other));
        }
        assert_eq!(a.recent(), 0);
    }

    #[test]
    fn only_the_last_two_max_streams_are_judged() {
        let mut a = Account::new(WINDOW, 3);
        // Resets and served streams alternating: 3 resets among any 6 ends, never 4,
        // for as long as the connection lives.
        for _ in 0..1000 {
            assert!(!a.record(YOUNG));
            assert!(!a.record(End::Other));
        }
        assert_eq!(a.recent(), 3);
        // 3 young resets, then 6 served streams push them out of the span: 3 more are
        // fine, and a 4th within the span trips it.
        let mut a = Account::new(WINDOW, 3);
        for _ in 0..3 {
            assert!(!a.record(YOUNG));
        }
        for _ in 0..6 {
            assert!(!a.record(End::Other));
        }
        assert_eq!(a.recent(), 0);
        for _ in 0..3 {
            assert!(!a.record(YOUNG));
        }
        assert!(a.record(YOUNG));
    }

    #[test]
    fn zero_is_off() {
        let mut a = Account::new(WINDOW, 0);
        for _ in 0..10_000 {
            assert!(!a.record(YOUNG));
        }
        assert_eq!(a.recent(), 0);
    }
}
