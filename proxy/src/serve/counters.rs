//! What a server counts for the three-way ledger (see `reloadbench_model::ledger`):
//! client connections accepted, requests forwarded to an origin, responses relayed in
//! full, exchanges aborted, and requests the proxy answered itself, by kind (with the
//! responses cut for a client below `limits.min_send_rate`, `slow_client`, and the HTTP/2
//! connections closed for premature resets, `premature_reset`, or for their address's
//! premature ends across connections, `address_premature_reset`).
//!
//! Each serving thread has its own [`ThreadCounters`] on its own cache lines, bumped
//! with relaxed atomic adds by that thread only (no sharing between cores on the hot
//! path); [`Counters::snapshot`] sums them when the generation reports, at its exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reloadbench_model::ledger::ProxyCounters;

use crate::forward::Failure;

/// Kinds of answers the proxy gives itself, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// No origin connection could be made.
    Connect,
    /// No origin connection slot became free in time.
    NoSlot,
    /// The origin connection broke before the response head.
    Broken,
    /// The origin's response head cannot be relayed.
    BadResponse,
    /// The origin's chunked body was malformed from its start.
    BadResponseBody,
    /// The origin did not answer in time.
    Timeout,
    /// The client's request body was malformed.
    BadBody,
    /// The client stalled in its request body.
    ClientStalled,
    /// The client's request head was refused (4xx before any forwarding).
    BadRequest,
    /// An upgrade request found `limits.tunnels` tunnels open (503, not forwarded).
    TunnelsFull,
    /// A response was cut because its client took it slower than
    /// `limits.min_send_rate` (no answer of the proxy: the client sees it truncated).
    SlowClient,
    /// An HTTP/2 connection closed (`GOAWAY ENHANCE_YOUR_CALM`) because its client reset
    /// more streams soon after they were forwarded than
    /// `limits.h2_max_premature_resets` allows (one per connection, not per request).
    PrematureReset,
    /// A new HTTP/2 connection refused (`GOAWAY ENHANCE_YOUR_CALM`, last-stream-id 0)
    /// because its client address has no token left of
    /// `limits.h2_address_premature_resets_burst` (one per connection).
    AddressPrematureReset,
}

const KINDS: [(ErrorKind, &str); 13] = [
    (ErrorKind::Connect, "connect"),
    (ErrorKind::NoSlot, "no_slot"),
    (ErrorKind::Broken, "broken"),
    (ErrorKind::BadResponse, "bad_response"),
    (ErrorKind::BadResponseBody, "bad_response_body"),
    (ErrorKind::Timeout, "timeout"),
    (ErrorKind::BadBody, "bad_body"),
    (ErrorKind::ClientStalled, "client_stalled"),
    (ErrorKind::BadRequest, "bad_request"),
    (ErrorKind::TunnelsFull, "tunnels_full"),
    (ErrorKind::SlowClient, "slow_client"),
    (ErrorKind::PrematureReset, "premature_reset"),
    (ErrorKind::AddressPrematureReset, "address_premature_reset"),
];

impl ErrorKind {
    /// The kind of a forwarding failure.
    pub(crate) fn of(failure: &Failure) -> ErrorKind {
        match failure {
            Failure::Connect(_) => ErrorKind::Connect,
            Failure::NoSlot => ErrorKind::NoSlot,
            Failure::Broken(_) => ErrorKind::Broken,
            Failure::BadResponse(_) => ErrorKind::BadResponse,
            Failure::BadResponseBody(_) => ErrorKind::BadResponseBody,
            Failure::Timeout => ErrorKind::Timeout,
            Failure::BadBody(_) => ErrorKind::BadBody,
            Failure::ClientStalled => ErrorKind::ClientStalled,
            Failure::TunnelsFull => ErrorKind::TunnelsFull,
        }
    }

    fn index(self) -> usize {
        KINDS.iter().position(|(k, _)| *k == self).unwrap_or(0)
    }
}

/// One serving thread's counters, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ThreadCounters {
    accepted: AtomicU64,
    forwarded: AtomicU64,
    completed: AtomicU64,
    aborted: AtomicU64,
    errors: [AtomicU64; KINDS.len()],
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl ThreadCounters {
    /// Requests completed on this thread so far (tests).
    #[cfg(test)]
    pub(crate) fn completed_now(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// A client connection was accepted.
    pub(crate) fn accepted(&self) {
        bump(&self.accepted);
    }

    /// A request head was written to an origin.
    pub(crate) fn forwarded(&self) {
        bump(&self.forwarded);
    }

    /// A response was relayed to the client in full.
    pub(crate) fn completed(&self) {
        bump(&self.completed);
    }

    /// An exchange broke after the response began, or the client went away.
    pub(crate) fn aborted(&self) {
        bump(&self.aborted);
    }

    /// The proxy answered a request itself with an error.
    pub(crate) fn error(&self, kind: ErrorKind) {
        bump(&self.errors[kind.index()]);
    }
}

/// The counters of every serving thread of one server.
#[derive(Debug, Default)]
pub(crate) struct Counters(Vec<Arc<ThreadCounters>>);

impl Counters {
    /// Counters for `threads` serving threads.
    pub(crate) fn new(threads: usize) -> Counters {
        Counters((0..threads).map(|_| Arc::default()).collect())
    }

    /// Thread `index`'s counters (a detached set when out of range).
    pub(crate) fn thread(&self, index: usize) -> Arc<ThreadCounters> {
        self.0.get(index).cloned().unwrap_or_default()
    }

    /// The sum over all threads now.
    pub(crate) fn snapshot(&self) -> ProxyCounters {
        let mut out = ProxyCounters::default();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for t in &self.0 {
            out.accepted += get(&t.accepted);
            out.forwarded += get(&t.forwarded);
            out.completed += get(&t.completed);
            out.aborted += get(&t.aborted);
            for (i, (_, name)) in KINDS.iter().enumerate() {
                let n = get(&t.errors[i]);
                if n > 0 {
                    *out.errors.entry((*name).to_owned()).or_default() += n;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_threads_and_names_error_kinds() {
        let c = Counters::new(2);
        let (a, b) = (c.thread(0), c.thread(1));
        a.accepted();
        b.accepted();
        a.forwarded();
        a.completed();
        b.aborted();
        b.error(ErrorKind::Connect);
        b.error(ErrorKind::BadRequest);
        b.error(ErrorKind::BadRequest);
        let s = c.snapshot();
        assert_eq!(
            (s.accepted, s.forwarded, s.completed, s.aborted),
            (2, 1, 1, 1)
        );
        assert_eq!(
            s.errors.into_iter().collect::<Vec<_>>(),
            vec![("bad_request".to_owned(), 2), ("connect".to_owned(), 1)]
        );
        assert!(std::mem::align_of::<ThreadCounters>() >= 128);
    }
}
