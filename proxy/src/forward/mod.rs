//! Forwarding of client requests to the origins.
//!
//! A [`Forwarder`] belongs to one serving thread: it picks origins round robin, keeps
//! that thread's idle keep-alive connections to each origin (`pool`) and spare read
//! buffers. `Forwarder::forward` carries one request: it writes the rewritten request
//! head (see [`reloadbench_http1`]) and relays the request body, reads the origin's response
//! head (skipping interim 1xx responses), writes the response head for the client and
//! relays the response body (`relay`).
//!
//! A request with a body is relayed in both directions at once: an origin that answers
//! before it has read the whole body (an early 413, or a response streamed while the
//! upload goes on) is relayed as it comes; the client connection is then closed if the
//! request body was not read to its end.
//!
//! Failures before any response byte reached the client become proxy responses (see
//! `Failure`): 502 Bad Gateway when the origin cannot be reached or breaks the
//! exchange, 504 Gateway Timeout when its response head does not arrive within
//! `timeouts.request` of the request being sent, 400 for a malformed request body (431
//! for one whose trailer section is too large), 408
//! for a client that stalls in its request body for `timeouts.body`, 503 for an upgrade
//! request while `limits.tunnels` tunnels are open. Later failures close
//! the client connection: the client sees a truncated response, never a wrong one.
//!
//! A response body is held to a minimum send rate (`limits.min_send_rate` over
//! `limits.min_send_rate_window`, see `send_rate`): a client that takes it slower while
//! refproxy has bytes of it waiting has the response cut (`Outcome::SlowClient`), and
//! its origin connection is closed, which frees its slot. Time spent waiting for the
//! origin never counts against the client. Tunnels are not held to it.
//!
//! Origin connections in use are limited per origin over all serving threads
//! (`limits.origin_connections`, see `OriginSlots`): a request takes a slot of its
//! origin before it takes or opens a connection, and gives it back after the connection
//! went back to the pool or was closed. A request that finds no free slot waits for one,
//! first come first served, for at most `timeouts.connect`, then gets 502. (The streams
//! of one HTTP/2 client connection take a place in that connection's share first, see
//! `serve::h2`, so that one connection cannot hold every slot.)
//!
//! With more than one origin, a request whose connect failed (refused, timed out) is sent
//! once to the next origin in the round robin, which a dead origin cannot have received.
//!
//! One retry: an origin may close an idle keep-alive connection (its keep-alive timeout,
//! a reload) at the moment the proxy reuses it. A request caught that way, i.e. sent on
//! a reused connection that failed before any byte of a response came, is sent once more
//! on a fresh connection when its method is idempotent and it has no body, so that
//! sending it twice is harmless. A failure on a fresh connection is never retried: the
//! origin itself is broken.
//!
//! An upgrade request (`upgrade`) is carried on a fresh connection; a `101` answer turns
//! the client connection into a tunnel ([`crate::tunnel`]).

mod exchange;
mod pool;
pub(crate) mod relay;
mod send_rate;
mod upgrade;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::{Config, Timeouts};
use crate::serve::Identity;
use crate::serve::counters::ThreadCounters;
use pool::Pool;
use relay::RelayError;
use reloadbench_http1::ChunkError;
use send_rate::SendRate;

pub(crate) use exchange::{Outcome, ResponseOpts};
pub(crate) use upgrade::Switched;

/// Name of the optional generation header: `X-Served-By: gen=<g> pid=<pid>`.
pub const SERVED_BY: &str = "x-served-by";

/// Idle origin connections kept per origin and serving thread.
const POOL_MAX_IDLE_PER_ORIGIN: usize = 1024;

/// How long an idle origin connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the idle origin connections are looked over: expired ones and ones the
/// origin closed are released.
const POOL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Read buffers kept for reuse per serving thread.
const SPARE_BUFFERS: usize = 256;

/// One origin.
#[derive(Debug)]
struct Origin {
    addr: SocketAddr,
    /// `host: <addr>\r\n`, sent when the client gave no `Host`.
    host_line: Vec<u8>,
    pool: Pool,
    /// The origin's connection slots, shared by every serving thread.
    slots: Arc<Semaphore>,
}

/// The connection slots of every origin (`limits.origin_connections` each), shared by
/// the forwarders of all serving threads of a process.
#[derive(Debug)]
pub(crate) struct OriginSlots(Vec<Arc<Semaphore>>);

impl OriginSlots {
    /// Slots for each of `cfg.origins`.
    pub(crate) fn new(cfg: &Config) -> OriginSlots {
        let n = usize::try_from(cfg.limits.origin_connections).unwrap_or(usize::MAX);
        let n = n.min(Semaphore::MAX_PERMITS);
        OriginSlots(
            cfg.origins
                .iter()
                .map(|_| Arc::new(Semaphore::new(n)))
                .collect(),
        )
    }
}

/// Why an exchange failed before any response byte reached the client;
/// [`Failure::status`] is the answer to the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// No origin configured, or connecting failed or timed out.
    #[error("cannot connect to the origin: {0}")]
    Connect(#[source] io::Error),
    /// Every connection slot of the origin stayed in use for `timeouts.connect`.
    #[error("no connection to the origin free within timeouts.connect")]
    NoSlot,
    /// The connection broke before the response head was complete.
    #[error("origin connection failed: {0}")]
    Broken(#[source] io::Error),
    /// The origin's response head cannot be relayed.
    #[error("bad response from the origin: {0}")]
    BadResponse(#[from] reloadbench_http1::BadResponse),
    /// The origin's chunked body is malformed from its start.
    #[error("bad response body from the origin: {0}")]
    BadResponseBody(#[source] RelayError),
    /// The response head did not arrive within `timeouts.request`.
    #[error("the origin did not answer in time")]
    Timeout,
    /// The client's chunked request body is malformed (400), or its trailer section is
    /// too large (431).
    #[error("malformed request body: {0}")]
    BadBody(#[source] RelayError),
    /// The client stalled in its request body for `timeouts.body`.
    #[error("the client stalled in its request body")]
    ClientStalled,
    /// An upgrade request while `limits.tunnels` tunnels were open (not forwarded).
    #[error("limits.tunnels tunnels are open")]
    TunnelsFull,
}

impl Failure {
    /// The status answered to the client.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Failure::Timeout => 504,
            Failure::BadBody(
                RelayError::Chunked(ChunkError::TrailersTooLarge { .. })
                | RelayError::ChunkedBeforeHead(ChunkError::TrailersTooLarge { .. }),
            ) => 431,
            Failure::BadBody(_) => 400,
            Failure::ClientStalled => 408,
            Failure::TunnelsFull => 503,
            _ => 502,
        }
    }
}

/// Forwards requests to the configured origins.
#[derive(Debug)]
pub struct Forwarder {
    origins: Vec<Origin>,
    next: AtomicUsize,
    timeouts: Timeouts,
    /// The minimum send rate a response starts with (`limits.min_send_rate`).
    send_rate: SendRate,
    served_by: Vec<u8>,
    buffers: Mutex<Vec<Vec<u8>>>,
    /// This serving thread's ledger counters.
    pub(crate) counters: Arc<ThreadCounters>,
}

impl Forwarder {
    /// A forwarder to `cfg.origins` with `cfg.timeouts`, taking connection slots from
    /// `slots` (made for the same `cfg`); when `cfg.generation_header` is set, responses
    /// carry `X-Served-By` for `id`.
    pub(crate) fn new(
        cfg: &Config,
        id: Identity,
        slots: &OriginSlots,
        counters: Arc<ThreadCounters>,
    ) -> Forwarder {
        Forwarder {
            origins: cfg
                .origins
                .iter()
                .zip(&slots.0)
                .map(|(addr, slots)| Origin {
                    addr: *addr,
                    host_line: format!("host: {}\r\n", authority_of(addr)).into_bytes(),
                    pool: Pool::new(POOL_MAX_IDLE_PER_ORIGIN, POOL_IDLE_TIMEOUT),
                    slots: slots.clone(),
                })
                .collect(),
            next: AtomicUsize::new(0),
            timeouts: cfg.timeouts,
            send_rate: SendRate::new(cfg.limits.min_send_rate, cfg.limits.min_send_rate_window),
            served_by: if cfg.generation_header {
                format!("{SERVED_BY}: gen={} pid={}\r\n", id.generation, id.pid).into_bytes()
            } else {
                Vec::new()
            },
            buffers: Mutex::new(Vec::new()),
            counters,
        }
    }

    /// Header lines every response to a client carries (the generation header, when on).
    pub(crate) fn served_by(&self) -> &[u8] {
        &self.served_by
    }

    /// Releases idle origin connections that expired or that their origin closed, every
    /// second, for as long as the forwarder is in use elsewhere. Runs on the serving
    /// thread's runtime.
    pub(crate) async fn sweep_pools(forwarder: Weak<Forwarder>) {
        let mut every = tokio::time::interval(POOL_SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(f) = forwarder.upgrade() else {
                return;
            };
            for origin in &f.origins {
                origin.pool.sweep();
            }
        }
    }

    /// The index of the next origin, round robin; `None` without origins.
    fn pick(&self) -> Option<usize> {
        let n = self.origins.len();
        (n > 0).then(|| self.next.fetch_add(1, Ordering::Relaxed) % n)
    }

    /// A read buffer of [`relay::BUF_BYTES`], reused when one is spare.
    fn take_buffer(&self) -> Vec<u8> {
        lock(&self.buffers)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(relay::BUF_BYTES))
    }

    /// Keeps an emptied read buffer for reuse.
    fn give_buffer(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut spare = lock(&self.buffers);
        if spare.len() < SPARE_BUFFERS && buf.capacity() >= relay::BUF_BYTES {
            spare.push(buf);
        }
    }
}

/// Locks a list of spare buffers or idle connections; such a list is consistent whenever
/// its lock is released, so a poisoned lock is usable.
fn lock<T>(list: &Mutex<Vec<T>>) -> std::sync::MutexGuard<'_, Vec<T>> {
    list.lock().unwrap_or_else(|e| e.into_inner())
}

/// The URI authority of an origin address.
fn authority_of(addr: &SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

/// The `X-Forwarded-For` value of a client address: IPv4-mapped IPv6 shown as IPv4.
pub fn client_ip_value(ip: IpAddr) -> Vec<u8> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip.to_string().into_bytes()
}
