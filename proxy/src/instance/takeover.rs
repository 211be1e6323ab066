//! The new-process side of a takeover, once the instance is set up with its accept gate
//! closed: the same steps, in the same order, for an upgraded process and for a worker.
//!
//! 1. [`Instance::commit`]: send `Commit` and read `Committed` (nothing accepted yet, so a
//!    failure here loses nothing).
//! 2. [`Instance::serve_and_confirm`]: open the gate, report `ready`, say `Serving` and
//!    wait for `Release`.
//!
//! What a failure means (step back, or take over alone because the old process is gone)
//! is the caller's decision.

use std::time::Duration;

use super::Instance;
use crate::cli::FreezePoint;
use crate::control::protocol::{self, HandoffError};
use crate::fdpass::Channel;

impl Instance {
    /// Commits this generation to its predecessor (or master) and waits for `Committed`.
    /// `freeze` stops the process before the commit or right after sending it (tests).
    pub async fn commit(
        &self,
        chan: &mut Channel,
        takes_path: bool,
        freeze: Option<FreezePoint>,
    ) -> Result<(), HandoffError> {
        FreezePoint::apply(freeze, FreezePoint::BeforeCommit);
        protocol::commit(chan, self.generation, takes_path, || {
            FreezePoint::apply(freeze, FreezePoint::AfterCommit);
        })
        .await
    }

    /// Starts accepting, reports `ready`, says `Serving` and waits up to `within` for the
    /// predecessor to release the path. `freeze` stops the process before it accepts.
    pub async fn serve_and_confirm(
        &self,
        chan: &mut Channel,
        within: Duration,
        freeze: Option<FreezePoint>,
    ) -> Result<(), HandoffError> {
        FreezePoint::apply(freeze, FreezePoint::AfterCommitted);
        self.open();
        self.announce_ready();
        protocol::serving(chan, within).await
    }
}
