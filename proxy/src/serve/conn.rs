//! One client connection: hyper's HTTP/1.1 server with the forwarding service,
//! `Connection: close` while draining, and the idle, head and drain timers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderValue;
use http::header::CONNECTION;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::TrackedBody;
use super::io::WatchedStream;
use super::{Phase, Shared};
use crate::forward::{Forwarder, client_ip_value};

/// Counts one open connection; created at accept, dropped when its task ends
/// (or is dropped without running), which wakes a waiting drain.
pub(super) struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    pub(super) fn new(shared: Arc<Shared>) -> OpenGuard {
        shared.open.send_modify(|n| *n += 1);
        OpenGuard(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Activity of one connection, read by its timers.
pub(crate) struct ConnState {
    shared: Arc<Shared>,
    /// Requests being handled (from the service call until the response body is done).
    active: AtomicU32,
    /// Requests handled so far.
    requests: AtomicU64,
    /// When the connection last became idle, ns since the shared epoch.
    idle_since_ns: AtomicU64,
    /// When bytes of a new request head started to arrive on the idle
    /// connection, ns since the epoch plus one; 0 when none did.
    head_since_ns: AtomicU64,
}

impl ConnState {
    fn new(shared: Arc<Shared>) -> ConnState {
        let now = shared.now_ns();
        ConnState {
            shared,
            active: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            idle_since_ns: AtomicU64::new(now),
            head_since_ns: AtomicU64::new(0),
        }
    }

    /// Bytes arrived from the client.
    pub(crate) fn received(&self) {
        if self.active.load(Ordering::Relaxed) == 0
            && self.head_since_ns.load(Ordering::Relaxed) == 0
        {
            self.head_since_ns
                .store(self.shared.now_ns() + 1, Ordering::Relaxed);
        }
    }

    /// A request is being handled until the returned mark is dropped.
    fn begin(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.head_since_ns.store(0, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Whether no request was ever handled on this connection.
    fn never_busy(&self) -> bool {
        self.requests.load(Ordering::Relaxed) == 0
    }

    /// How long a graceful close may take before the socket is closed.
    fn grace(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Draining(_) => self.shared.cfg.drain.idle_close,
            Phase::Serving | Phase::Force => self.shared.cfg.timeouts.header_read,
        }
    }

    /// When to look again and what to do then: `(at_ns, close_reason)`.
    fn next_check(&self, phase: Phase, now_ns: u64) -> (u64, Option<Close>) {
        let cfg = &self.shared.cfg;
        let (period, since_floor) = match phase {
            Phase::Draining(since) => {
                let since = u64::try_from(
                    since
                        .saturating_duration_since(self.shared.epoch)
                        .as_nanos(),
                )
                .unwrap_or(u64::MAX);
                (cfg.drain.idle_close, since)
            }
            Phase::Serving | Phase::Force => (cfg.timeouts.idle, 0),
        };
        // A head may start arriving at any moment: look again within `header_read`.
        let head_read = nanos(cfg.timeouts.header_read);
        let recheck = now_ns.saturating_add(head_read);
        if self.active.load(Ordering::Relaxed) > 0 {
            return (recheck.min(now_ns.saturating_add(nanos(period))), None);
        }
        let head = self.head_since_ns.load(Ordering::Relaxed);
        if head != 0 {
            return (
                (head - 1).saturating_add(head_read),
                Some(Close::HeadTimeout),
            );
        }
        let idle = self.idle_since_ns.load(Ordering::Relaxed).max(since_floor);
        let idle_at = idle.saturating_add(nanos(period));
        if idle_at > recheck {
            return (recheck, None);
        }
        let reason = match phase {
            Phase::Draining(_) => Close::DrainIdle,
            _ => Close::Idle,
        };
        (idle_at, Some(reason))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Why a connection is closed by its timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// Idle longer than `timeouts.idle`.
    Idle,
    /// The request head took longer than `timeouts.header_read`.
    HeadTimeout,
    /// Idle for `drain.idle_close` while draining.
    DrainIdle,
}

/// Marks its connection busy while alive.
pub(crate) struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        let state = &self.0;
        state
            .idle_since_ns
            .store(state.shared.now_ns(), Ordering::Relaxed);
        state.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted client connection until it ends, is closed by a timer,
/// or the drain deadline forces it closed.
/// Requests go to the origins through `forwarder`, the pool of the serving thread.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    open: OpenGuard,
    forwarder: Arc<Forwarder>,
) {
    let shared = open.0.clone();
    // Small responses must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnState::new(shared.clone()));
    let ctx = Arc::new((state.clone(), client_ip_value(peer.ip()), forwarder));
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let ctx = ctx.clone();
        let busy = ctx.0.begin();
        async move {
            let shared = &ctx.0.shared;
            let mut resp = ctx.2.forward(req, &ctx.1).await;
            if shared.draining.load(Ordering::Relaxed) {
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, busy)))
        }
    });
    let io = TokioIo::new(WatchedStream::new(stream, state.clone()));
    let mut conn = pin!(shared.http.serve_connection(io, service));
    let mut phase_rx = shared.phase.subscribe();
    // Set once a graceful close was asked for: when it must be done at the latest.
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let phase = *phase_rx.borrow_and_update();
        if phase == Phase::Force {
            // Dropping the connection closes the socket.
            return;
        }
        let (at, reason) = state.next_check(phase, shared.now_ns());
        let wake = match closing {
            Some(hard) => hard,
            None => tokio::time::Instant::from_std(shared.epoch) + Duration::from_nanos(at),
        };
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "client connection ended with an error");
                }
                return;
            }
            Ok(()) = phase_rx.changed() => {}
            () = tokio::time::sleep_until(wake) => {
                if closing.is_some() {
                    // hyper did not finish the graceful close in time (a client that
                    // never sent a request, or stopped reading): close the socket.
                    return;
                }
                let now = shared.now_ns();
                let (at, reason_now) = state.next_check(phase, now);
                let Some(why) = reason_now.filter(|_| reason_now == reason && at <= now) else {
                    continue;
                };
                if why == Close::DrainIdle {
                    shared.idle_closed.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(%peer, reason = ?why, "closing client connection");
                if why == Close::HeadTimeout || state.never_busy() {
                    // Nothing is buffered for the client: close right away.
                    return;
                }
                // Lets hyper flush what it still holds for the client, then close.
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + state.grace(phase));
            }
        }
    }
}
