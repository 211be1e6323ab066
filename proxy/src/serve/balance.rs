//! Spreading client connections over the serving threads by their open connections.
//!
//! Every serving thread accepts on its own handle of each listening socket, but the
//! kernel wakes them all and the first awake accepts everything queued: a burst of
//! connections (a client opening its 10 HTTP/2 connections at once) often lands on one
//! thread while the other idles. A connection then lives on the thread that serves
//! it, so the imbalance lasts as long as the connections do; HTTP/2 makes it worse, as
//! each connection carries many streams.
//!
//! So an accepted connection is served by the thread with the fewest open connections
//! (the accepting thread on a tie): one with more open than another thread hands it
//! over (the socket leaves its reactor and joins the other runtime's, served with that
//! thread's [`Forwarder`] and origin pool). A thread whose accept loops have ended
//! takes no more connections from others ([`Balance::close`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;
use tokio::runtime::Handle;

use super::conn::{self, Handshake, OpenGuard};
use crate::forward::Forwarder;

/// A serving thread as a place to serve connections.
struct Slot {
    handle: Handle,
    forwarder: Arc<Forwarder>,
    /// Its open client connections.
    load: Arc<AtomicUsize>,
    /// Still takes connections (its accept loops have not ended).
    open: bool,
}

/// The serving threads of a server, by index.
#[derive(Default)]
pub(crate) struct Balance {
    slots: Mutex<Vec<Option<Slot>>>,
}

impl std::fmt::Debug for Balance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balance").finish_non_exhaustive()
    }
}

/// Counts one connection on its thread while it is open.
struct Load(Arc<AtomicUsize>);

impl Load {
    fn new(load: &Arc<AtomicUsize>) -> Load {
        load.fetch_add(1, Ordering::Relaxed);
        Load(load.clone())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted connection, not served yet.
pub(super) struct Accepted {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) open: OpenGuard,
    pub(super) tls: Option<Handshake>,
}

impl Balance {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers serving thread `index`, running on `handle` with `forwarder`.
    pub(super) fn register(&self, index: usize, handle: Handle, forwarder: Arc<Forwarder>) {
        let mut slots = self.lock();
        if slots.len() <= index {
            slots.resize_with(index + 1, || None);
        }
        if let Some(s) = slots.get_mut(index) {
            *s = Some(Slot {
                handle,
                forwarder,
                load: Arc::new(AtomicUsize::new(0)),
                open: true,
            });
        }
    }

    /// Thread `index` takes no more connections from other threads.
    pub(super) fn close(&self, index: usize) {
        if let Some(Some(s)) = self.lock().get_mut(index) {
            s.open = false;
        }
    }

    /// Open connections of each thread (tests).
    #[cfg(test)]
    pub(super) fn loads(&self) -> Vec<usize> {
        self.lock()
            .iter()
            .map(|s| s.as_ref().map_or(0, |s| s.load.load(Ordering::Relaxed)))
            .collect()
    }

    /// Serves `accepted`, taken by thread `own` (the current runtime, with `forwarder`),
    /// on the thread with the fewest open connections.
    pub(super) fn serve(&self, own: usize, forwarder: &Arc<Forwarder>, accepted: Accepted) {
        let slots = self.lock();
        let own_load = slots
            .get(own)
            .and_then(Option::as_ref)
            .map(|s| s.load.clone());
        let least = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| s.open && i != own))
            .min_by_key(|s| s.load.load(Ordering::Relaxed));
        let elsewhere = match (&own_load, least) {
            (Some(mine), Some(other))
                if other.load.load(Ordering::Relaxed) < mine.load(Ordering::Relaxed) =>
            {
                Some(other)
            }
            _ => None,
        };
        if let Some(target) = elsewhere {
            match accepted.stream.into_std() {
                Ok(std) => {
                    let load = Load::new(&target.load);
                    let forwarder = target.forwarder.clone();
                    let Accepted {
                        peer, open, tls, ..
                    } = accepted;
                    // Spawned while the lock is held: `close` cannot come in between,
                    // and the thread waits for `open` (counted in the guard) to reach 0
                    // before its runtime ends.
                    target.handle.spawn(async move {
                        let _load = load;
                        match TcpStream::from_std(std) {
                            Ok(stream) => {
                                forwarder.counters.accepted();
                                conn::serve_connection(stream, peer, open, forwarder, tls).await;
                            }
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "connection hand-over failed");
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::debug!(peer = %accepted.peer, error = %e, "connection hand-over failed");
                }
            }
            return;
        }
        let load = own_load.as_ref().map(Load::new);
        drop(slots);
        forwarder.counters.accepted();
        let forwarder = forwarder.clone();
        let Accepted {
            stream,
            peer,
            open,
            tls,
        } = accepted;
        tokio::spawn(async move {
            let _load = load;
            conn::serve_connection(stream, peer, open, forwarder, tls).await;
        });
    }
}
