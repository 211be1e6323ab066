//! One HTTP/2 connection's account of premature resets ("open, wait, reset": the client
//! resets a stream refproxy has already forwarded, so refproxy must close its origin
//! connection mid-response).
//!
//! Only forwarded streams count: a stream is forwarded once an origin slot is taken for
//! it (an origin connection is committed to it: a pooled one taken or a new one being
//! opened). Streams refproxy ends without an origin (its own answers: 400, 431, 501 for
//! a plain `CONNECT`, 502 when no slot came; streams reset while waiting for a place in
//! the connection's share) are not counted at all, neither premature nor otherwise, so
//! that they cannot pad the span.
//!
//! A forwarded stream is reset prematurely when the client resets it less than
//! `limits.h2_premature_reset_window` after it was forwarded and before its response
//! ended (for an extended CONNECT: before the tunnel was established; tunnels are not
//! counted once established). The account looks at the connection's last
//! `2 × limits.h2_max_premature_resets` forwarded streams that ended (served, failed or
//! reset alike): more than `limits.h2_max_premature_resets` premature resets among them
//! trip it, once, and the connection is closed with `GOAWAY ENHANCE_YOUR_CALM`. So a
//! client may reset at most about as many young forwarded streams as it lets live (or
//! finish), however long its connection lives, and however fast it goes: the bound is a
//! ratio, not a rate. A connection that has ended fewer forwarded streams than the span
//! trips once it has more than the limit (Envoy's early trip at half of
//! `premature_reset_total_stream_count`). 0 turns it off.

use std::collections::VecDeque;
use std::time::Duration;

/// How a stream of the connection ended, as the account sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Never forwarded (answered by refproxy itself, or ended while it waited for a
    /// place or a slot): not counted.
    Unforwarded,
    /// Forwarded, then answered, failed, or anything else but a client reset before the
    /// response ended (an established tunnel too).
    Other,
    /// Forwarded, then reset by the client before its response ended, this long after it
    /// was forwarded.
    Reset(Duration),
    /// Forwarded, then ended without a whole response and without a reset by the client
    /// (its connection gone, the exchange aborted), this long after it was forwarded:
    /// as `Other` for the account; a premature end for the address's budget (`budget`)
    /// when the client ended the connection.
    Cut(Duration),
}

impl End {
    /// A premature reset: reset by the client less than `window` after it was forwarded.
    pub(crate) fn premature_reset(self, window: Duration) -> bool {
        matches!(self, End::Reset(lived) if lived < window)
    }

    /// Cut (or reset) with its response not ended, less than `window` after it was
    /// forwarded: a premature end when its client's connection ended under it.
    pub(crate) fn young_cut(self, window: Duration) -> bool {
        matches!(self, End::Reset(lived) | End::Cut(lived) if lived < window)
    }

    /// Forwarded, and lived: answered (or failed on the origin's side), or ended older
    /// than `window`.
    pub(crate) fn lived(self, window: Duration) -> bool {
        !matches!(self, End::Unforwarded) && !self.young_cut(window)
    }
}

/// The premature resets among a connection's last ended streams.
#[derive(Debug)]
pub(crate) struct Account {
    window: Duration,
    max: u32,
    /// Forwarded streams ended so far.
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
    /// that are not counted). Streams never forwarded are not counted.
    pub(crate) fn record(&mut self, end: End) -> bool {
        if self.max == 0 || self.tripped || end == End::Unforwarded {
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

    /// Premature resets among the last `2 × max` forwarded streams that ended.
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
    fn streams_never_forwarded_do_not_pad_the_span() {
        let mut a = Account::new(WINDOW, 3);
        // 3 young resets, then many streams refproxy answered itself: they neither push
        // the resets out of the span nor count as resets.
        for _ in 0..3 {
            assert!(!a.record(YOUNG));
        }
        for _ in 0..1000 {
            assert!(!a.record(End::Unforwarded));
        }
        assert_eq!(a.recent(), 3);
        assert!(
            a.record(YOUNG),
            "the 4th young reset among 4 forwarded streams"
        );
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
