//! One client: a loop that takes a ticket from the plan, (re)connects when
//! needed, runs one exchange and records exactly one outcome for it.
//!
//! A client never retries a request and never aborts: a refused connect is a
//! failed request, after which the client backs off (exponentially from
//! 0.5 ms to 4 ms, reset by a successful connect) instead of spinning; so it
//! does after any other failed connect except a timeout.

mod connect;
mod reader;
mod response;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reloadbench_model::load::FailureRecord;
use reloadbench_model::outcome::FailureClass;
use tokio::net::TcpStream;

pub(crate) use response::Scratch;

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
    /// Request bytes.
    pub(crate) request: Vec<u8>,
    /// With request ids: where the id header is inserted into `request`.
    pub(crate) id_at: Option<usize>,
    /// Keep connections alive.
    pub(crate) keep_alive: bool,
    /// Connect and response timeout.
    pub(crate) timeout: Duration,
    /// The method is HEAD (responses have no body).
    pub(crate) head_request: bool,
    /// The request carries an `Upgrade` header (a 101 answers it).
    pub(crate) asks_upgrade: bool,
    /// Spread source addresses over 127.0.0.1..=N (0 or 1: default source).
    pub(crate) source_ips: u32,
}

impl ClientCtx {
    fn source(&self, id: u64) -> Option<Ipv4Addr> {
        (self.source_ips > 1).then(|| {
            let last = 1 + (id % u64::from(self.source_ips)) as u8;
            Ipv4Addr::new(127, 0, 0, last)
        })
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

fn record_failure(
    shared: &Shared,
    rec: &RefCell<Recorder>,
    start: Instant,
    class: FailureClass,
    reused: bool,
    id: Option<u64>,
) {
    let keep = shared.failure_slot();
    let record = FailureRecord {
        t_ns: shared.offset_ns(Instant::now()),
        start_ns: shared.offset_ns(start),
        class,
        reused,
        id,
    };
    rec.borrow_mut().failure(record, keep);
    shared.done(false);
}

/// Runs client `id` until the plan has no more tickets for it.
pub(crate) async fn run(
    id: u64,
    shared: Arc<Shared>,
    ctx: Arc<ClientCtx>,
    rec: Rc<RefCell<Recorder>>,
    scratch: Rc<Scratch>,
) {
    let mut conn: Option<TcpStream> = None;
    // The request with its id, rebuilt per request in place (allocated by the
    // first request that needs it, then reused).
    let mut with_id = Vec::new();
    let mut backoff = BACKOFF_MIN;
    let source = ctx.source(id);
    while let Some(ticket) = shared.next_ticket().await {
        let now = Instant::now();
        let id = ctx.id_at.map(|_| ticket.index);
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
        let reused = conn.is_some();
        let mut stream = match conn.take() {
            Some(s) => s,
            None => match connect::connect(ctx.addr, source, ctx.timeout, ctx.keep_alive).await {
                Ok(s) => {
                    backoff = BACKOFF_MIN;
                    s
                }
                Err(class) => {
                    record_failure(&shared, &rec, start, class, false, id);
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
        let connected = Instant::now();
        if !reused {
            // A new connection (a failed connect `continue`d above): one
            // increment, stamped with the clock read the request needs anyway.
            rec.borrow_mut().connected(shared.offset_ns(connected));
        }
        let want_server = shared.first_response.get().is_none();
        let asked = reader::Asked {
            head_request: ctx.head_request,
            upgrade: ctx.asks_upgrade,
            want_server,
        };
        let request = match ctx.id_at {
            Some(at) => {
                crate::target::with_id(&ctx.request, at, ticket.index, &mut with_id);
                &with_id
            }
            None => &ctx.request,
        };
        let exchange = response::exchange(&mut stream, request, &scratch, asked);
        match tokio::time::timeout(ctx.timeout, exchange).await {
            Err(_) => record_failure(&shared, &rec, start, FailureClass::Timeout, reused, id),
            Ok(Err(f)) => {
                rec.borrow_mut().bytes(f.bytes, 0);
                record_failure(&shared, &rec, start, f.class, reused, id);
            }
            Ok(Ok(resp)) => {
                let end = Instant::now();
                let class = match resp.status {
                    // A 101 arrives here only as the answer to an upgrade request.
                    101 | 200..=299 => None,
                    500..=599 => Some(FailureClass::Http5xx),
                    _ => Some(FailureClass::HttpOther),
                };
                if let Some(class) = class {
                    rec.borrow_mut().bytes(resp.total_bytes, 0);
                    record_failure(&shared, &rec, start, class, reused, id);
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
                    };
                    {
                        let mut r = rec.borrow_mut();
                        r.bytes(resp.total_bytes, resp.body_bytes);
                        r.ok(&times);
                    }
                    shared.done(true);
                }
                if ctx.keep_alive && resp.keep_alive {
                    conn = Some(stream);
                }
            }
        }
    }
}
