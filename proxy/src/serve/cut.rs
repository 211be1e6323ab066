//! Counting the connections the drain deadline cuts with a response in progress.
//!
//! A connection closed at the deadline is counted in [`super::DrainReport::forced`]
//! whatever it was doing; only some of those cost a client a response: the ones with
//! an exchange in progress (a request read whose response was not all written, or an
//! HTTP/2 connection with a stream open that is not a tunnel). A connection lingering
//! after its last response, or idle between requests, is forced without a loss; tunnels
//! are counted apart (`cut` of [`crate::tunnel::TunnelReport`]). [`InProgress`] marks
//! such a stretch; dropped while marked after the deadline (the connection's future is
//! dropped by force), it counts the connection in [`super::DrainReport::cut`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Shared, Stage};

/// Marks a connection's exchange in progress; see the module docs.
pub(super) struct InProgress {
    shared: Arc<Shared>,
    armed: bool,
}

impl InProgress {
    /// A mark that is off.
    pub(super) fn new(shared: Arc<Shared>) -> InProgress {
        InProgress {
            shared,
            armed: false,
        }
    }

    /// Sets whether an exchange is in progress.
    pub(super) fn set(&mut self, in_progress: bool) {
        self.armed = in_progress;
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if self.armed && *self.shared.stage.borrow() == Stage::Force {
            self.shared.cut.fetch_add(1, Ordering::Relaxed);
        }
    }
}
