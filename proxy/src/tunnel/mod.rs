//! Tunnels: client connections that switched protocols (`Upgrade`, e.g. WebSockets)
//! after the origin's `101`, relayed as bytes both ways until either side ends.
//!
//! - The proxy forwards an upgrade request with its `Upgrade` and `Connection: upgrade`
//!   headers on a fresh origin connection (see `forward`); on `101` the connection becomes
//!   a tunnel (it holds its origin connection slot and is never returned to the pool), on
//!   any other answer the exchange is an ordinary one.
//! - Bytes go both ways as they come (`relay`); `timeouts.body` is the idle bound: a
//!   tunnel in which no byte moved either way for that long is closed.
//! - An end of stream on one side is passed on (FIN) to the other; the tunnel ends once
//!   both sides ended.
//! - Draining (`drain.tunnels`): with `keep`, a tunnel runs on until it ends or
//!   `drain.deadline` cuts it, as every connection. With `close`, each WebSocket tunnel
//!   is ended at the drain's start: the proxy waits for the end of the frame the origin is
//!   sending (it follows frame headers in that direction only, `frames`), writes one
//!   close frame with status 1001 (Going Away) to the client (unmasked, server to client),
//!   closes the origin connection without a close frame (the origin sees the TCP close),
//!   then closes the client connection gracefully (FIN, then reads what the client still
//!   sends, its close frame answer included, for up to `drain.linger`). Tunnels of other
//!   protocols are kept: the proxy knows no polite close for them.
//! - `Tunnels::close_all` ends every WebSocket tunnel open at that moment the same way,
//!   whatever the policy: a master asks it of its oldest draining worker when
//!   `reload.max_old_generations` is reached (SIGUSR1). In a draining process it also
//!   holds for tunnels that start later (an upgrade answered after the signal); in a
//!   process still serving it does not, so that the process goes on serving WebSockets.
//! - A polite close is bounded: a tunnel whose close frame is not written within
//!   `drain.linger` of the close being asked (a client that does not read, an origin
//!   frame that does not end) is cut (dropped without a close frame, counted `cut`), so
//!   that a generation told to close its tunnels exits within `close_wait`.
//! - Tunnels open at once in a process are bounded by `limits.tunnels`: an upgrade
//!   request beyond it is answered 503 without being forwarded (counted as the
//!   `tunnels_full` error). A tunnel's origin connection is counted there, not against
//!   `limits.origin_connections`, which bounds the connections carrying requests: idle
//!   tunnels cannot take every origin slot and starve ordinary requests (an origin sees
//!   at most `origin_connections` + `tunnels` connections from a process).
//!
//! - An HTTP/2 extended CONNECT stream for a WebSocket (RFC 8441, `serve::h2::connect`)
//!   is the same kind of tunnel: its client side is the stream (`reloadbench_h2io::H2Stream`: DATA
//!   frames, END_STREAM as FIN), relayed, counted and drained by the same code.
//!
//! `Tunnels` counts the open tunnels of a process and how they ended, for the
//! `tunnels` events of a drain.

pub(crate) mod frames;
pub(crate) mod relay;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How long a generation told to close its tunnels (SIGUSR1) is given to exit: its close
/// frames go out within `drain.linger` (a tunnel that cannot take its close frame by
/// then is cut), then it reads its clients' answers for up to `drain.linger`.
pub(crate) fn close_wait(linger: Duration) -> Duration {
    linger * 2 + Duration::from_secs(2)
}

/// What [`Tunnels::close_all`] asked so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CloseAll {
    /// How many times it was called: a tunnel is closed when this moved since it started.
    pub(crate) asked: u64,
    /// It was called while the process was draining: tunnels that start later are
    /// closed too.
    pub(crate) latched: bool,
}

impl CloseAll {
    /// Whether a tunnel that started when `asked` was `since` must close.
    pub(crate) fn closes(&self, since: u64) -> bool {
        self.latched || self.asked != since
    }
}

/// The tunnels of one serving process, over all its serving threads.
#[derive(Debug)]
pub(crate) struct Tunnels {
    /// Tunnels ever opened.
    opened: AtomicU64,
    open: AtomicU64,
    going_away: AtomicU64,
    cut: AtomicU64,
    /// Upgrade requests refused because `limits.tunnels` were open.
    refused: AtomicU64,
    /// `limits.tunnels`: a permit per open tunnel (taken before the upgrade is forwarded).
    slots: Arc<Semaphore>,
    /// Asks to end the WebSocket tunnels with 1001, whatever the policy.
    close_all: watch::Sender<CloseAll>,
}

/// What the tunnels of a process did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelReport {
    /// Tunnels ever opened.
    pub opened: u64,
    /// Tunnels open now.
    pub open: u64,
    /// Tunnels ended with a close frame 1001 written by the proxy.
    pub going_away: u64,
    /// Tunnels dropped by force without a close frame: at the drain deadline, or when
    /// their close frame could not be written within `drain.linger`.
    pub cut: u64,
    /// Upgrade requests answered 503 because `limits.tunnels` tunnels were open.
    pub refused: u64,
}

impl Tunnels {
    /// The tunnels of a process that lets `max` be open at once (`limits.tunnels`).
    pub(crate) fn new(max: u32) -> Tunnels {
        let max = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Tunnels {
            opened: AtomicU64::new(0),
            open: AtomicU64::new(0),
            going_away: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            slots: Arc::new(Semaphore::new(max)),
            close_all: watch::Sender::new(CloseAll::default()),
        }
    }

    /// A place for one more tunnel, held from before the upgrade is forwarded until the
    /// tunnel ends; `None` (counted) when `limits.tunnels` are open.
    pub(crate) fn slot(&self) -> Option<OwnedSemaphorePermit> {
        let slot = self.slots.clone().try_acquire_owned().ok();
        if slot.is_none() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        slot
    }

    /// Counts one more open tunnel until the guard is dropped.
    pub(crate) fn guard(&self) -> TunnelGuard<'_> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        TunnelGuard {
            tunnels: self,
            ended: false,
        }
    }

    /// Ends every WebSocket tunnel open now with a close frame 1001; when `draining`,
    /// tunnels that start later too.
    pub(crate) fn close_all(&self, draining: bool) {
        self.close_all.send_modify(|c| {
            c.asked += 1;
            c.latched |= draining;
        });
    }

    /// What [`Tunnels::close_all`] asked so far, and its changes.
    pub(crate) fn closing(&self) -> watch::Receiver<CloseAll> {
        self.close_all.subscribe()
    }

    /// The counts so far.
    pub(crate) fn report(&self) -> TunnelReport {
        TunnelReport {
            opened: self.opened.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            going_away: self.going_away.load(Ordering::Relaxed),
            cut: self.cut.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// One open tunnel; dropped without [`TunnelGuard::ended`] (its task dropped at the
/// drain deadline, or the tunnel cut after its close frame could not be written), it
/// counts as cut.
#[derive(Debug)]
pub(crate) struct TunnelGuard<'a> {
    tunnels: &'a Tunnels,
    ended: bool,
}

impl TunnelGuard<'_> {
    /// The tunnel ended on its own; `going_away` when the proxy ended it with 1001.
    pub(crate) fn ended(mut self, going_away: bool) {
        self.ended = true;
        if going_away {
            self.tunnels.going_away.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for TunnelGuard<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.tunnels.cut.fetch_add(1, Ordering::Relaxed);
        }
        self.tunnels.open.fetch_sub(1, Ordering::Relaxed);
    }
}
