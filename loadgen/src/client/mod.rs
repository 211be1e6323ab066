//! One client: a loop that takes a ticket from the plan, (re)connects when
//! needed, runs one exchange and records exactly one outcome for it.
//!
//! A client never aborts: a refused connect is a failed request, after
//! which the client backs off (exponentially from 0.5 ms to 4 ms, reset by a
//! successful connect) instead of spinning; so it does after any other
//! failed connect except a timeout. It retries a request only under a
//! retrying [`RetryPolicy`], and only a retryable failure, once ([`retry`]).
//! With a think time it pauses after each request, before taking the next.
//!
//! The loop is generic over the kind of connection ([`Conn`]): cleartext
//! [`TcpStream`] or [`TlsConn`], chosen once per run ([`run_for`]).

mod conn;
mod connect;
mod idle_check;
mod reader;
mod response;
mod retry;
mod tls;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reloadbench_model::load::{FailureRecord, RetryPolicy};
use reloadbench_model::outcome::FailureClass;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) use conn::Conn;
pub(crate) use connect::connect as tcp_connect;
pub(crate) use response::Scratch;
pub(crate) use tls::TlsConn;
pub(crate) use tls::TlsCtx;
pub(crate) use tls::connect_tls;

use crate::mix::{PreparedKind, Schedule};
use crate::record::{OkTimes, Recorder};
use crate::run::{FirstResponse, Shared};

/// First back-off after a refused connect.
const BACKOFF_MIN: Duration = Duration::from_micros(500);
/// Largest back-off.
const BACKOFF_MAX: Duration = Duration::from_millis(4);

/// What every client of a run shares (read-only).
#[derive(Debug)]
pub(crate) struct ClientCtx {
    /// Target address.
    pub(crate) addr: SocketAddr,
    /// The request kinds (one without a mix), each prebuilt.
    pub(crate) kinds: Vec<PreparedKind>,
    /// Which kind each request (by its index in the run) is.
    pub(crate) schedule: Schedule,
    /// Keep connections alive.
    pub(crate) keep_alive: bool,
    /// Connect and response timeout.
    pub(crate) timeout: Duration,
    /// Spread source addresses over 127.0.0.1..=N (0 or 1: default source).
    pub(crate) source_ips: u32,
    /// How retryable failures are retried.
    pub(crate) retry: RetryPolicy,
    /// Pause after each request of a client.
    pub(crate) think_time: Option<Duration>,
    /// For an `https://` target: the run's TLS client.
    pub(crate) tls: Option<Arc<TlsCtx>>,
    /// For a `--ws` run: the WebSocket settings (the clients are
    /// [`crate::ws`]'s instead of request loops).
    pub(crate) ws: Option<Arc<crate::ws::WsCtx>>,
}

impl ClientCtx {
    pub(crate) fn source(&self, id: u64) -> Option<Ipv4Addr> {
        (self.source_ips > 1).then(|| {
            let last = 1 + (id % u64::from(self.source_ips)) as u8;
            Ipv4Addr::new(127, 0, 0, last)
        })
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// The request kind of one request, as its outcome records it.
#[derive(Debug, Clone, Copy)]
struct Kind {
    /// Index into [`ClientCtx::kinds`].
    index: u16,
    /// Its method is idempotent.
    idempotent: bool,
}

/// The identity of one request, for its failure record.
#[derive(Debug, Clone, Copy)]
struct Req {
    start: Instant,
    id: Option<u64>,
    kind: Kind,
}

fn record_failure(
    shared: &Shared,
    rec: &RefCell<Recorder>,
    req: Req,
    class: FailureClass,
    reused: bool,
) {
    let keep = shared.failure_slot();
    let record = FailureRecord {
        t_ns: shared.offset_ns(Instant::now()),
        start_ns: shared.offset_ns(req.start),
        class,
        reused,
        id: req.id,
        retryable: req.kind.idempotent && reused && class.before_response(),
        kind: req.kind.index,
    };
    rec.borrow_mut().failure(record, keep);
    shared.done(false);
}

/// The failure class of a complete response, `None` for a success (a 2xx,
/// or a 101 which arrives only as the answer to an upgrade request).
fn status_class(status: u16) -> Option<FailureClass> {
    match status {
        101 | 200..=299 => None,
        500..=599 => Some(FailureClass::Http5xx),
        _ => Some(FailureClass::HttpOther),
    }
}

/// One exchange within the run's timeout (a timeout is a failure with no bytes counted).
pub(crate) async fn exchange_timed<C: Conn>(
    ctx: &ClientCtx,
    stream: &mut C,
    request: Wire<'_>,
    scratch: &Scratch,
    asked: reader::Asked,
) -> Result<response::Response, reader::Failed> {
    let exchange = stream.exchange(request, scratch, asked);
    match tokio::time::timeout(ctx.timeout, exchange).await {
        Err(_) => Err(reader::Failed {
            class: FailureClass::Timeout,
            bytes: 0,
        }),
        Ok(r) => r,
    }
}

/// A request as it goes on the wire: its head, then its body (empty when the head
/// holds the whole request). A request with an id is its rebuilt head and the
/// prebuilt request's body, so that a body is never copied per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wire<'a> {
    /// The head (or the whole request).
    pub(crate) head: &'a [u8],
    /// The body that follows it.
    pub(crate) body: &'a [u8],
}

impl Wire<'_> {
    /// Writes the request: one write without a separate body.
    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(self, w: &mut W) -> std::io::Result<()> {
        w.write_all(self.head).await?;
        if !self.body.is_empty() {
            w.write_all(self.body).await?;
        }
        Ok(())
    }
}

/// Spawns client `id` on the current `LocalSet`, with the connection kind
/// of the run's target.
pub(crate) fn run_for(
    id: u64,
    shared: Arc<Shared>,
    ctx: Arc<ClientCtx>,
    rec: Rc<RefCell<Recorder>>,
    scratch: Rc<Scratch>,
) -> tokio::task::JoinHandle<()> {
    if ctx.tls.is_some() {
        tokio::task::spawn_local(run::<TlsConn>(id, shared, ctx, rec, scratch))
    } else {
        tokio::task::spawn_local(run::<TcpStream>(id, shared, ctx, rec, scratch))
    }
}

/// Runs client `id` until the plan has no more tickets for it.
async fn run<C: Conn>(
    id: u64,
    shared: Arc<Shared>,
    ctx: Arc<ClientCtx>,
    rec: Rc<RefCell<Recorder>>,
    scratch: Rc<Scratch>,
) {
    let mut conn: Option<C> = None;
    // The request with its id, rebuilt per request in place (allocated by the
    // first request that needs it, then reused).
    let mut with_id = Vec::new();
    let mut backoff = BACKOFF_MIN;
    let source = ctx.source(id);
    let mut first = true;
    loop {
        // Think time: the pause between two requests of this client (never in a latency).
        if let Some(think) = ctx.think_time.filter(|_| !first)
            && !shared.think(think).await
        {
            break;
        }
        first = false;
        let Some(ticket) = shared.next_ticket().await else {
            break;
        };
        let now = Instant::now();
        let kind_index = ctx.schedule.kind_of(ticket.index);
        let kind = &ctx.kinds[kind_index];
        let id = kind.id_at.map(|_| ticket.index);
        let start = match ticket.intended {
            Some(intended) => {
                rec.borrow_mut()
                    .lag(ns(now.saturating_duration_since(intended)));
                // Latency counts from the intended start, or from the actual
                // one when the timer let the request start a little early.
                intended.min(now)
            }
            None => now,
        };
        let req = Req {
            start,
            id,
            kind: Kind {
                index: kind_index as u16,
                idempotent: kind.idempotent,
            },
        };
        if ctx.retry == RetryPolicy::Safe && conn.as_ref().is_some_and(C::unusable) {
            // A careful client opens a new connection instead (see `idle_check`).
            conn = None;
            rec.borrow_mut().stale_discarded += 1;
        }
        let reused = conn.is_some();
        let (mut stream, connected) = match conn.take() {
            Some(s) => (s, Instant::now()),
            None => match C::open(&ctx, source, &shared, &rec).await {
                Ok(opened) => {
                    backoff = BACKOFF_MIN;
                    (opened.conn, opened.at)
                }
                Err(class) => {
                    if ctx.retry == RetryPolicy::Both {
                        rec.borrow_mut().after_retry(req.kind.index, Some(class));
                    }
                    record_failure(&shared, &rec, req, class, false);
                    // Every connect failure but a timeout (which already
                    // waited) can repeat at once: back off, never spin.
                    if class != FailureClass::ConnectTimeout {
                        let t0 = Instant::now();
                        shared.sleep_until(t0 + backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        if class == FailureClass::ConnectRefused {
                            rec.borrow_mut().refused_backoff_ns += ns(t0.elapsed());
                        }
                    }
                    continue;
                }
            },
        };
        let want_server = shared.first_response.get().is_none();
        let asked = reader::Asked {
            head_request: kind.head_request,
            upgrade: kind.asks_upgrade,
            want_server,
        };
        let request = match kind.id_at {
            Some(at) => {
                let body = crate::target::with_id(&kind.request, at, ticket.index, &mut with_id);
                Wire {
                    head: &with_id,
                    body,
                }
            }
            None => Wire {
                head: &kind.request,
                body: &[],
            },
        };
        let mut result = exchange_timed(&ctx, &mut stream, request, &scratch, asked).await;
        let (mut reused, mut connected) = (reused, connected);
        let mut stream = Some(stream);
        // A careful client's retry, on a new connection (see `retry`).
        let mut raw = None;
        if let Err(f) = result
            && retry::wanted(ctx.retry, kind.idempotent, reused, f.class)
        {
            rec.borrow_mut().bytes(f.bytes, 0);
            rec.borrow_mut().retried(req.kind.index);
            raw = Some(f.class);
            // The failed connection is closed before the retry opens one: a client
            // never holds two descriptors (what the open-file limit check counts).
            drop(stream.take());
            let again = retry::once(&ctx, source, request, &scratch, asked, &shared, &rec).await;
            stream = again.stream;
            (reused, connected, result) = (false, again.connected, again.result);
        }
        if ctx.retry == RetryPolicy::Both {
            let after = result
                .as_ref()
                .map_or_else(|f| Some(f.class), |r| status_class(r.status));
            rec.borrow_mut().after_retry(req.kind.index, after);
            if let Some(class) = raw {
                // The raw outcome is the first attempt's failure; the retry
                // counts only after the retry (and its bytes as received).
                let (bytes, keep) = match &result {
                    Ok(resp) => (resp.total_bytes, resp.keep_alive),
                    Err(f) => (f.bytes, false),
                };
                rec.borrow_mut().bytes(bytes, 0);
                record_failure(&shared, &rec, req, class, true);
                if ctx.keep_alive && keep && result.is_ok() {
                    conn = stream;
                }
                continue;
            }
        }
        match result {
            Err(f) => {
                rec.borrow_mut().bytes(f.bytes, 0);
                if f.class == FailureClass::Truncated {
                    rec.borrow_mut().truncated_bytes += f.bytes;
                }
                record_failure(&shared, &rec, req, f.class, reused);
            }
            Ok(resp) => {
                let end = Instant::now();
                if let Some(class) = status_class(resp.status) {
                    rec.borrow_mut().bytes(resp.total_bytes, 0);
                    record_failure(&shared, &rec, req, class, reused);
                } else {
                    if want_server {
                        let _ = shared.first_response.get_or_init(|| FirstResponse {
                            server: resp.server,
                            body_len: resp.body_bytes,
                        });
                    }
                    let connect_ns = if reused { 0 } else { ns(connected - now) };
                    let times = OkTimes {
                        end_ns: shared.offset_ns(end),
                        latency_ns: ns(end - start),
                        connect_ns,
                        processing_ns: ns(end - connected),
                        waiting_ns: ns(resp.first_byte.saturating_duration_since(resp.written)),
                        start_ns: shared.offset_ns(start),
                        kind: req.kind.index,
                    };
                    {
                        let mut r = rec.borrow_mut();
                        r.bytes(resp.total_bytes, resp.body_bytes);
                        r.ok(&times);
                    }
                    shared.done(true);
                }
                if ctx.keep_alive && resp.keep_alive {
                    conn = stream;
                }
            }
        }
    }
}
