//! One HTTP/2 client connection's share of the origin slots: its streams may hold at
//! most [`crate::config::Config::h2_origin_share`] origin slots at once, so that one
//! connection whose streams stall (a client that never reads its responses) cannot take
//! every slot of `limits.origin_connections` and starve the other clients.
//!
//! A stream takes a place in its connection's share before it asks for an origin slot,
//! and keeps it until its exchange ends (the slot is given back just before). A stream
//! that finds the share full waits for a place, first come first served, at most
//! `timeouts.connect` (as for a free origin slot), then gets 502 like a request that
//! found no free origin slot. Waiting streams hold nothing of the origin and no
//! response bytes.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::forward::Failure;

/// The places of one connection's share.
#[derive(Debug)]
pub(crate) struct Share(Semaphore);

impl Share {
    /// A share of `places` (at least 1).
    pub(crate) fn new(places: u32) -> Share {
        let n = usize::try_from(places).unwrap_or(usize::MAX);
        Share(Semaphore::new(n.clamp(1, Semaphore::MAX_PERMITS)))
    }

    /// A place, waiting for one at most `wait`; [`Failure::NoSlot`] when none came.
    pub(crate) async fn take(&self, wait: Duration) -> Result<SemaphorePermit<'_>, Failure> {
        if let Ok(place) = self.0.try_acquire() {
            return Ok(place);
        }
        // The semaphore is never closed; if it were, `acquire` would fail at once, and
        // that is no place too.
        tokio::time::timeout(wait, self.0.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Failure::NoSlot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_share_waits_then_fails_with_no_slot() {
        let share = Share::new(2);
        let a = share.take(Duration::from_secs(1)).await.unwrap();
        let _b = share.take(Duration::from_secs(1)).await.unwrap();
        let third = share.take(Duration::from_secs(1)).await;
        assert!(matches!(third, Err(Failure::NoSlot)));
        drop(a);
        assert!(share.take(Duration::from_secs(1)).await.is_ok());
    }
}
