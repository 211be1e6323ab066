//! Serving client connections on given listeners, and draining them.
//!
//! [`Server::start`] takes already-bound listening sockets (bound here, inherited
//! or received by fd passing) and starts one serving thread per core (`threads`):
//! each runs a single-threaded tokio runtime, accepts on its own handle of every
//! listening socket, and serves every connection it accepts on its own task, forwarding
//! its requests through the thread's own [`Forwarder`] (see `conn`). A server with
//! `T` threads holds `T` handles per listening address.
//!
//! Drain policy (what makes a reload lose nothing):
//! - once draining, the next response on every connection carries
//!   `Connection: close`, and the connection closes after it, gracefully: refproxy
//!   shuts its side down and reads what still comes for up to `drain.linger` (a request
//!   the client sent before it read the response gets no reset);
//! - an idle keep-alive connection is kept, and read from, until it sends its next
//!   request (answered with `Connection: close`), or closed once it has been idle for
//!   `drain.idle_close` (counted from the drain's start at the earliest; nginx's
//!   `keepalive_min_timeout`). A connection that has started sending a request head is
//!   not idle. The close (`close`) serves a request that is already in the receive
//!   queue when the timer fires; otherwise it shuts the sending side down (FIN) and
//!   reads until the client closes or `drain.linger` passes, so that a request racing
//!   the close is read and dropped: the client sees EOF, never a reset. That race is
//!   the residual risk, counted in [`DrainReport::raced`]; the closes are counted in
//!   [`DrainReport::idle_closed`];
//! - no socket is closed with unread bytes in its receive queue by any of these paths
//!   (that makes the kernel send a reset);
//! - tunnels (upgraded connections) follow `drain.tunnels` (see [`crate::tunnel`]):
//!   kept until they end, or WebSockets ended at once with a close frame 1001;
//! - `drain.deadline` bounds the whole drain, lingering included: connections still
//!   open then are closed ([`DrainReport::forced`]); of those, the ones with a
//!   response in progress are counted in [`DrainReport::cut`] (see `cut`);
//! - [`Server::drain`] resolves as soon as the last connection is done.
//!
//! Listening sockets are never `shutdown()`: another process may share them.
//! Stopping to accept only drops this process's handles. [`Server::stop_accepting`]
//! and [`Server::drain`] wait until the accept loops of every thread have ended and
//! dropped their handles; connections are counted across all threads.

mod accept;
mod balance;
mod close;
mod conn;
pub(crate) mod counters;
mod cut;
mod h2;
mod stream;
mod threads;
pub(crate) mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::watch;

use crate::config::Config;
#[cfg(doc)]
use crate::forward::Forwarder;
use crate::forward::OriginSlots;
pub(crate) use stream::ClientStream;

/// Who is serving: put in events and the optional generation header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Process id of the serving process.
    pub pid: u32,
    /// Generation of the serving process: 1 for the first, +1 per reload.
    pub generation: u64,
}

/// What a drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Client connections open when the drain started.
    pub open_at_start: u64,
    /// Connections still open at the drain deadline, closed by force.
    pub forced: u64,
    /// Of those, the ones cut with a response in progress (an HTTP/1.1 request read and
    /// its response not all written, or an HTTP/2 connection with a stream open); the
    /// others were lingering after their last response or idle. Tunnels are counted
    /// apart ([`crate::tunnel::TunnelReport`]).
    pub cut: u64,
    /// The requests those connections were answering when cut: one per HTTP/1.1
    /// connection, the open streams (tunnels apart) of an HTTP/2 connection.
    pub cut_requests: u64,
    /// Idle keep-alive connections closed after `drain.idle_close`.
    pub idle_closed: u64,
    /// Of those, the ones on which request bytes arrived after the close went out (the
    /// residual risk: the client saw EOF before any response byte, never a reset).
    pub raced: u64,
}

/// Errors of starting a server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// [`Server::start`] was called outside a tokio runtime.
    #[error("the server must be started inside a tokio runtime")]
    NoRuntime,
    /// No listener was given.
    #[error("no listening socket to serve on")]
    NoListeners,
    /// A serving thread or its runtime could not be started.
    #[error("cannot start a serving thread: {source}")]
    Thread {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS config could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    /// A listening socket could not be prepared for tokio.
    #[error("cannot use listening socket {addr}: {source}")]
    Listener {
        /// The socket's local address, or `?` when it cannot be read.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ServeError {
    /// A [`ServeError::Listener`] for the socket whose local address is `addr`.
    fn listener(addr: std::io::Result<SocketAddr>, source: std::io::Error) -> ServeError {
        let addr = addr.map_or_else(|_| "?".to_owned(), |a| a.to_string());
        ServeError::Listener { addr, source }
    }
}

/// Where the server is in its life (serving, draining, forced to close); connection tasks
/// watch it. Not to be confused with [`crate::phase`], the lifecycle events reported outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Serving normally.
    Serving,
    /// Draining since the given instant.
    Draining(Instant),
    /// The drain deadline passed: close now.
    Force,
}

/// State shared by the server handle and the accept loops and connection tasks
/// of every serving thread.
pub(crate) struct Shared {
    pub(crate) cfg: Arc<Config>,
    /// Checked when each response is built: set means `Connection: close`.
    pub(crate) draining: AtomicBool,
    pub(crate) stage: watch::Sender<Stage>,
    /// Open client connections, over all threads.
    pub(crate) open: watch::Sender<u64>,
    /// Accept loops still running, over all threads.
    pub(crate) accepting: watch::Sender<usize>,
    /// Set to make the accept loops stop.
    pub(crate) stop_accept: watch::Sender<bool>,
    /// The accept gate: accept loops wait until it is open (see [`Server::start_held`]).
    pub(crate) accept_open: watch::Sender<bool>,
    pub(crate) idle_closed: AtomicU64,
    /// Idle connections closed while draining on which a request raced the close.
    pub(crate) idle_raced: AtomicU64,
    /// Connections dropped at the drain deadline with a response in progress.
    pub(crate) cut: AtomicU64,
    /// Requests in progress on the connections counted in `cut`.
    pub(crate) cut_requests: AtomicU64,
    /// Which accept errors are logged, over all threads.
    pub(crate) accept_errors: throttle::Throttle,
    /// Connection slots of each origin, over all threads.
    pub(crate) origin_slots: OriginSlots,
    /// Each serving thread's ledger counters.
    pub(crate) counters: counters::Counters,
    /// The open tunnels (upgraded connections), over all threads.
    pub(crate) tunnels: crate::tunnel::Tunnels,
    /// The serving threads, by open connections: where an accepted connection is served.
    pub(crate) balance: balance::Balance,
    /// Each client address's budget of premature HTTP/2 stream ends, over all threads.
    pub(crate) h2_budget: h2::Budget,
}

/// A running HTTP server on a set of listeners. Dropping it stops accepting;
/// connections already open are served until they end.
pub struct Server {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
}

impl Server {
    /// Starts accepting on the given (already bound) listeners and serving with `cfg`,
    /// on one serving thread per available core (`REFPROXY_THREADS` overrides the
    /// count). The listeners are switched to non-blocking mode here; the first thread
    /// takes them, every other thread a dup of each.
    ///
    /// Must be called inside a tokio runtime.
    pub fn start(
        listeners: Vec<std::net::TcpListener>,
        cfg: Arc<Config>,
        id: Identity,
    ) -> Result<Server, ServeError> {
        let server = Server::start_held(listeners, cfg, id)?;
        server.open_gate();
        Ok(server)
    }

    /// Like [`Server::start`], but the accept loops wait until [`Server::open_gate`]: a new
    /// generation is fully set up before its commit and accepts nothing until its
    /// predecessor has confirmed it (a crash before that loses no connection).
    ///
    /// With a `[tls]` config, the listeners it names terminate TLS with fresh ticket keys
    /// (see [`Server::start_held_tls`] to give them).
    pub fn start_held(
        listeners: Vec<std::net::TcpListener>,
        cfg: Arc<Config>,
        id: Identity,
    ) -> Result<Server, ServeError> {
        let tls = match &cfg.tls {
            Some(t) => {
                let keys = Arc::new(crate::tls::Terminator::ticket_keys(t, None));
                Some(crate::tls::Terminator::new(t, listeners.len(), keys)?)
            }
            None => None,
        };
        Server::start_held_tls(listeners, cfg, id, tls)
    }

    /// Like [`Server::start_held`], with the TLS side given: the listeners (in config
    /// order) that `tls` names terminate TLS.
    pub fn start_held_tls(
        listeners: Vec<std::net::TcpListener>,
        cfg: Arc<Config>,
        id: Identity,
        tls: Option<crate::tls::Terminator>,
    ) -> Result<Server, ServeError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ServeError::NoRuntime);
        }
        if listeners.is_empty() {
            return Err(ServeError::NoListeners);
        }
        // With HTTP/2 on, TLS listeners offer `h2` first in ALPN.
        let tls = tls.map(|t| {
            if cfg.http2.enabled {
                t.offering_h2()
            } else {
                t
            }
        });
        let mut addrs = Vec::with_capacity(listeners.len());
        for l in &listeners {
            l.set_nonblocking(true)
                .map_err(|source| ServeError::listener(l.local_addr(), source))?;
            if let Ok(a) = l.local_addr() {
                addrs.push(a);
            }
        }
        let threads = threads::thread_count();
        // Each thread's own handles, duplicated before any thread starts.
        let mut per_thread = Vec::with_capacity(threads);
        for _ in 1..threads {
            let dups = listeners
                .iter()
                .map(|l| {
                    l.try_clone()
                        .map_err(|source| ServeError::listener(l.local_addr(), source))
                })
                .collect::<Result<Vec<_>, _>>()?;
            per_thread.push(dups);
        }
        per_thread.insert(0, listeners);
        let shared = Arc::new(Shared {
            draining: AtomicBool::new(false),
            stage: watch::Sender::new(Stage::Serving),
            open: watch::Sender::new(0),
            accepting: watch::Sender::new(0),
            stop_accept: watch::Sender::new(false),
            accept_open: watch::Sender::new(false),
            idle_closed: AtomicU64::new(0),
            idle_raced: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            cut_requests: AtomicU64::new(0),
            accept_errors: throttle::Throttle::new(accept::ERROR_LOG_EVERY),
            origin_slots: OriginSlots::new(&cfg),
            counters: counters::Counters::new(threads),
            tunnels: crate::tunnel::Tunnels::new(cfg.limits.tunnels),
            balance: balance::Balance::default(),
            h2_budget: h2::Budget::new(
                cfg.http2.address_premature_resets_per_second,
                cfg.http2.address_premature_resets_burst,
            ),
            cfg,
        });
        let handshakes: Vec<Option<conn::Handshake>> = (0..addrs.len().max(per_thread[0].len()))
            .map(|i| {
                let t = tls.as_ref()?;
                t.on_listener
                    .get(i)
                    .copied()
                    .unwrap_or(false)
                    .then(|| conn::Handshake {
                        acceptor: t.acceptor.clone(),
                        timeout: t.handshake_timeout,
                    })
            })
            .collect();
        for (index, handles) in per_thread.into_iter().enumerate() {
            let handles = handles
                .into_iter()
                .zip(handshakes.iter().cloned())
                .collect();
            if let Err(e) = threads::spawn(index, handles, &shared, id) {
                // The threads already started stop accepting and end on their own.
                shared.stop_accept.send_replace(true);
                return Err(e);
            }
        }
        Ok(Server { shared, addrs })
    }

    /// Lets the accept loops start accepting (a no-op once open).
    pub fn open_gate(&self) {
        self.shared.accept_open.send_replace(true);
    }

    /// The local addresses of the listeners being served.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Open client connections right now.
    pub fn connections(&self) -> u64 {
        *self.shared.open.borrow()
    }

    /// What the server counted so far, summed over its serving threads: the `counters`
    /// event of the three-way ledger.
    pub fn counters(&self) -> reloadbench_model::ledger::ProxyCounters {
        self.shared.counters.snapshot()
    }

    /// What the tunnels (upgraded connections) did so far, and how many are open.
    pub fn tunnels(&self) -> crate::tunnel::TunnelReport {
        self.shared.tunnels.report()
    }

    /// Ends every WebSocket tunnel open now with a close frame 1001 (Going Away),
    /// whatever `drain.tunnels` says; once draining, tunnels that start later too (see
    /// [`crate::tunnel`]).
    pub fn close_tunnels(&self) {
        self.shared.tunnels.close_all(self.is_draining());
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// Stops accepting: the accept tasks of every serving thread end and drop
    /// their listener handles (listening sockets are never shut down: another
    /// process may share them). Returns once every thread's accept loops have
    /// ended and dropped their handles, so no accept is in progress anywhere.
    pub async fn stop_accepting(&self) {
        self.shared.stop_accept.send_replace(true);
        let mut rx = self.shared.accepting.subscribe();
        // The sender lives in `shared`, which we hold: the wait cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Switches to draining without waiting: the accept loops are told to stop,
    /// every next response carries `Connection: close`, and the idle-close timers
    /// start. [`Server::drain`] does this first; calling it earlier is harmless.
    pub fn start_drain(&self) {
        self.shared.stop_accept.send_replace(true);
        self.shared.draining.store(true, Ordering::SeqCst);
        self.shared.stage.send_if_modified(|p| {
            if *p == Stage::Serving {
                *p = Stage::Draining(Instant::now());
                true
            } else {
                false
            }
        });
    }

    /// Drains (stops accepting first) per the policy in the module docs. Resolves
    /// when the last connection is done or, at the latest, at `drain.deadline`
    /// plus the time to close what is left.
    pub async fn drain(&self) -> DrainReport {
        let deadline = crate::deadline::from_now(self.shared.cfg.drain.deadline);
        self.start_drain();
        self.stop_accepting().await;
        let open_at_start = self.connections();
        let mut open = self.shared.open.subscribe();
        let done = tokio::time::timeout_at(deadline, open.wait_for(|n| *n == 0))
            .await
            .is_ok();
        let forced = if done {
            0
        } else {
            let left = *open.borrow();
            self.shared.stage.send_replace(Stage::Force);
            // Connection tasks drop their sockets as soon as they see `Force`.
            let _ = open.wait_for(|n| *n == 0).await;
            left
        };
        DrainReport {
            open_at_start,
            forced,
            // Counted as each forced connection's future was dropped, before its
            // `open` count went: all in by now.
            cut: self.shared.cut.load(Ordering::Relaxed),
            cut_requests: self.shared.cut_requests.load(Ordering::Relaxed),
            idle_closed: self.shared.idle_closed.load(Ordering::Relaxed),
            raced: self.shared.idle_raced.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Server {
    /// A dropped server stops accepting (its listener handles are dropped);
    /// connections already open are served until they end.
    fn drop(&mut self) {
        self.shared.stop_accept.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
