//! The minimum send rate of a response (`limits.min_send_rate`): a client that takes
//! a response body slower than that, while refproxy has bytes of it waiting, has the
//! response cut, so that it cannot hold an origin slot for as long as it likes by
//! granting a byte of window (HTTP/2) or reading a few bytes (HTTP/1.1) now and then.
//!
//! What counts is only the time refproxy spends waiting on the client: a write (or a
//! flush) that the client does not take at once. Time spent reading from the origin
//! never counts, nor does a write that completes at its first poll (the hot path reads
//! no clock). The waits are added up into tumbling windows of `limits.min_send_rate_window`
//! of waiting; when a window is full, the bytes the client took since the window began
//! (in writes that waited or not) must be at least `min_send_rate` × the window, or the
//! response is cut ([`TooSlow`]); otherwise a new window begins. A response that never
//! keeps refproxy waiting a whole window is never cut.
//!
//! What a window took beyond its due is kept as credit, up to [`CREDIT_WINDOWS`]
//! windows' worth, for windows in which the client took less: TCP delivers to a slow
//! reader in bursts (a receiver whose buffer grew large while it read fast opens its
//! closed window only once a sixteenth of that buffer is free, 384 KiB of a 6 MiB
//! buffer), so an honest client reading steadily can show whole windows without
//! progress. With the defaults (128 bytes/s over 30 s), a client reading 820 bytes/s or
//! more is never cut whatever its buffer, and one that stops after a fast start is cut
//! after at most 16 windows of waiting (a client that takes nothing is also cut by
//! `timeouts.body`).
//!
//! The streams of one HTTP/2 connection share its bandwidth, and h2 does not share it
//! evenly: a stream may wait while its neighbours take the connection. For them the
//! client's progress is the connection's ([`SendRate::sharing`]): a window in which the
//! connection's socket took enough bytes, whichever streams they were for, is enough.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A response's client took fewer bytes than `limits.min_send_rate` asks over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client took {took} bytes in {window:?} of waiting (at least {need} asked)")]
pub(crate) struct TooSlow {
    /// Bytes the client took in the window.
    pub(crate) took: u64,
    /// Bytes it had to take.
    pub(crate) need: u64,
    /// The window.
    pub(crate) window: Duration,
}

/// Windows' worth of bytes a response may keep as credit (see the module docs).
pub(crate) const CREDIT_WINDOWS: u64 = 16;

/// The send-rate account of one response.
#[derive(Debug, Clone)]
pub(crate) struct SendRate {
    /// Bytes due per window; 0: no minimum.
    need: u64,
    window: Duration,
    /// Time waited on the client in the current window.
    waited: Duration,
    /// Bytes the client took in the current window.
    took: u64,
    /// Bytes taken in past windows beyond their due, at most [`CREDIT_WINDOWS`] × `need`.
    credit: u64,
    /// When responses share a connection: the bytes written to its socket so far, and
    /// their count when the current window began.
    shared: Option<(Arc<AtomicU64>, u64)>,
}

impl SendRate {
    /// An account for `rate` bytes per second over `window` of waiting (0: off).
    pub(crate) fn new(rate: u32, window: Duration) -> SendRate {
        let need = (f64::from(rate) * window.as_secs_f64()).ceil();
        SendRate {
            // An `as` cast from f64 saturates: a huge product asks the most there is.
            need: if rate == 0 { 0 } else { (need as u64).max(1) },
            window,
            waited: Duration::ZERO,
            took: 0,
            credit: 0,
            shared: None,
        }
    }

    /// The account of a response on a connection shared with others, whose socket has
    /// taken `written` bytes so far: a window passes when the response or the
    /// connection took enough in it.
    pub(crate) fn sharing(mut self, written: Option<&Arc<AtomicU64>>) -> SendRate {
        self.shared = written.map(|w| (w.clone(), w.load(Ordering::Relaxed)));
        self
    }

    /// No minimum (request bodies, tunnels, the proxy's own writes).
    pub(crate) fn off() -> SendRate {
        SendRate::new(0, Duration::MAX)
    }

    /// Whether a minimum applies.
    pub(crate) fn is_on(&self) -> bool {
        self.need > 0
    }

    /// How much longer refproxy may wait on the client before the window is full.
    pub(crate) fn left(&self) -> Duration {
        self.window.saturating_sub(self.waited)
    }

    /// The client took `n` bytes.
    pub(crate) fn took(&mut self, n: usize) {
        self.took = self.took.saturating_add(n as u64);
    }

    /// Refproxy waited `d` on the client: when that fills the window, the client must
    /// have taken enough in it, and a new window begins.
    pub(crate) fn waited(&mut self, d: Duration) -> Result<(), TooSlow> {
        if !self.is_on() {
            return Ok(());
        }
        self.waited = self.waited.saturating_add(d);
        if self.waited < self.window {
            return Ok(());
        }
        let shared_now = self.shared.as_ref().map(|(w, _)| w.load(Ordering::Relaxed));
        let connection_took = match (&self.shared, shared_now) {
            (Some((_, at)), Some(now)) => now.saturating_sub(*at),
            _ => 0,
        };
        let took = self.took.max(connection_took);
        let held = self.credit.saturating_add(took);
        if held < self.need {
            return Err(TooSlow {
                took,
                need: self.need,
                window: self.window,
            });
        }
        self.credit = (held - self.need).min(self.need.saturating_mul(CREDIT_WINDOWS));
        self.waited = Duration::ZERO;
        self.took = 0;
        if let (Some((_, at)), Some(now)) = (&mut self.shared, shared_now) {
            *at = now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_window_of_waiting_needs_rate_times_window_bytes() {
        let mut r = SendRate::new(1024, 10 * SEC);
        assert!(r.is_on());
        r.took(10_000);
        assert_eq!(r.waited(9 * SEC), Ok(()));
        assert_eq!(r.left(), SEC);
        assert_eq!(
            r.waited(SEC),
            Err(TooSlow {
                took: 10_000,
                need: 10_240,
                window: 10 * SEC
            })
        );
    }

    #[test]
    fn a_full_window_with_enough_bytes_starts_a_new_one() {
        let mut r = SendRate::new(100, SEC);
        r.took(100);
        assert_eq!(r.waited(SEC), Ok(()));
        assert_eq!(r.left(), SEC, "a new window");
        // What the last window got does not carry over.
        assert_eq!(r.waited(SEC).unwrap_err().took, 0);
    }

    #[test]
    fn no_waiting_never_cuts_and_off_never_cuts() {
        let mut r = SendRate::new(1024, SEC);
        for _ in 0..1000 {
            r.took(1);
            assert_eq!(r.waited(Duration::ZERO), Ok(()));
        }
        let mut off = SendRate::off();
        assert!(!off.is_on());
        assert_eq!(off.waited(Duration::from_secs(1 << 40)), Ok(()));
        assert_eq!(off.left(), Duration::MAX);
    }

    #[test]
    fn a_burst_is_credit_for_later_windows_up_to_the_cap() {
        let mut r = SendRate::new(100, SEC);
        // A burst of 100 windows' worth: credit for 16 windows (the first is paid).
        r.took(100 * 100);
        for w in 0..=CREDIT_WINDOWS {
            assert_eq!(r.waited(SEC), Ok(()), "window {w}");
        }
        assert_eq!(r.waited(SEC).unwrap_err().took, 0);
        // Steady bursts of 4 windows' worth every 4 windows never run out.
        let mut r = SendRate::new(100, SEC);
        for w in 0..100 {
            if w % 4 == 0 {
                r.took(400);
            }
            assert_eq!(r.waited(SEC), Ok(()), "window {w}");
        }
    }

    #[test]
    fn a_shared_connections_progress_counts_for_a_waiting_response() {
        let written = Arc::new(AtomicU64::new(5_000));
        let mut r = SendRate::new(100, SEC).sharing(Some(&written));
        // Others' bytes on the connection since the account began.
        written.fetch_add(100, Ordering::Relaxed);
        assert_eq!(r.waited(SEC), Ok(()));
        // Nothing on the connection and nothing of its own: cut.
        let e = r.waited(SEC).unwrap_err();
        assert_eq!((e.took, e.need), (0, 100));
        let mut alone = SendRate::new(100, SEC);
        written.fetch_add(1_000, Ordering::Relaxed);
        assert!(
            alone.waited(SEC).is_err(),
            "not shared: the connection's bytes do not count"
        );
    }

    #[test]
    fn a_tiny_rate_over_a_short_window_asks_at_least_one_byte() {
        let mut r = SendRate::new(1, Duration::from_millis(10));
        assert_eq!(r.waited(SEC).unwrap_err().need, 1);
    }
}
