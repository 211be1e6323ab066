//! Counting the connections the drain deadline cuts with a response in progress.
//!
//! A connection closed at the deadline is counted in [`super::DrainReport::forced`]
//! whatever it was doing; only some of those cost a client a response: the ones with
//! an exchange in progress (a request read whose response was not all written, or an
//! HTTP/2 connection with a stream open that is not a tunnel). A connection lingering
//! after its last response, or idle between requests, is forced without a loss; tunnels
//! are counted apart (`cut` of [`crate::tunnel::TunnelReport`]). [`InProgress`] marks
//! such a stretch, with the number of exchanges in progress (1 over HTTP/1.1, the open
//! streams over HTTP/2); dropped while marked after the deadline (the connection's future
//! is dropped by force), it counts the connection in [`super::DrainReport::cut`] and its
//! exchanges in [`super::DrainReport::cut_requests`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Shared, Stage};

/// Marks a connection's exchanges in progress; see the module docs.
pub(super) struct InProgress {
    shared: Arc<Shared>,
    exchanges: u64,
}

impl InProgress {
    /// A mark that is off.
    pub(super) fn new(shared: Arc<Shared>) -> InProgress {
        InProgress {
            shared,
            exchanges: 0,
        }
    }

    /// Sets how many exchanges are in progress (0: none).
    pub(super) fn set(&mut self, exchanges: u64) {
        self.exchanges = exchanges;
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if self.exchanges > 0 && *self.shared.stage.borrow() == Stage::Force {
            self.shared.cut.fetch_add(1, Ordering::Relaxed);
            self.shared
                .cut_requests
                .fetch_add(self.exchanges, Ordering::Relaxed);
        }
    }
}
