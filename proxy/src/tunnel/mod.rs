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
//! - `Tunnels::close_all` ends every WebSocket tunnel of the process the same way,
//!   whatever the policy: a master asks it of its oldest draining worker when
//!   `reload.max_old_generations` is reached (SIGUSR1).
//!
//! - An HTTP/2 extended CONNECT stream for a WebSocket (RFC 8441, `serve::h2::connect`)
//!   is the same kind of tunnel: its client side is the stream (`stream::H2Stream`: DATA
//!   frames, END_STREAM as FIN), relayed, counted and drained by the same code.
//!
//! `Tunnels` counts the open tunnels of a process and how they ended, for the
//! `tunnels` events of a drain.

pub(crate) mod frames;
pub(crate) mod relay;
pub(crate) mod stream;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// How long a generation told to close its tunnels (SIGUSR1) is given to exit: its close
/// frames go out at once, then it reads its clients' answers for up to `drain.linger`.
pub(crate) fn close_wait(linger: Duration) -> Duration {
    linger + Duration::from_secs(2)
}

/// The tunnels of one serving process, over all its serving threads.
#[derive(Debug)]
pub(crate) struct Tunnels {
    /// Tunnels ever opened.
    opened: AtomicU64,
    open: AtomicU64,
    going_away: AtomicU64,
    cut: AtomicU64,
    /// Set to end every WebSocket tunnel with 1001 now, whatever the policy.
    close_all: watch::Sender<bool>,
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
    /// Tunnels dropped by force (the drain deadline) without a close frame.
    pub cut: u64,
}

impl Default for Tunnels {
    fn default() -> Self {
        Tunnels {
            opened: AtomicU64::new(0),
            open: AtomicU64::new(0),
            going_away: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            close_all: watch::Sender::new(false),
        }
    }
}

impl Tunnels {
    /// Counts one more open tunnel until the guard is dropped.
    pub(crate) fn guard(&self) -> TunnelGuard<'_> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        TunnelGuard {
            tunnels: self,
            ended: false,
        }
    }

    /// Ends every WebSocket tunnel with a close frame 1001, now and for tunnels that
    /// start later.
    pub(crate) fn close_all(&self) {
        self.close_all.send_replace(true);
    }

    /// Resolves once [`Tunnels::close_all`] was called.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.close_all.subscribe()
    }

    /// The counts so far.
    pub(crate) fn report(&self) -> TunnelReport {
        TunnelReport {
            opened: self.opened.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            going_away: self.going_away.load(Ordering::Relaxed),
            cut: self.cut.load(Ordering::Relaxed),
        }
    }
}

/// One open tunnel; dropped without [`TunnelGuard::ended`] (its task dropped at the
/// drain deadline), it counts as cut.
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
