//! A connection slot: one live HTTP/2 connection at a time, replaced when it
//! received a GOAWAY or ended, and the stream loops that share it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::client::SendRequest;
use reloadbench_model::load::FailureRecord;
use reloadbench_model::outcome::FailureClass;

use super::H2Ctx;
use super::read_ahead::ReadAhead;
use super::stream::{self, Attempt};
use super::tap::{Tap, TapState};
use crate::client::{connect_tls, tcp_connect};
use crate::record::{OkTimes, Recorder};
use crate::run::{FirstResponse, Shared};

/// First back-off after a failed connect.
const BACKOFF_MIN: Duration = Duration::from_micros(500);
/// Largest back-off.
const BACKOFF_MAX: Duration = Duration::from_millis(4);
/// How often a request whose stream could not be opened (each new
/// connection refused new streams at once) moves to a new connection before
/// it fails: refused by GOAWAY when one came, `closed` otherwise.
const MAX_NOT_SENT: u32 = 3;

/// A failure that ends the run: the server does not speak HTTP/2 over TLS.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server did not select HTTP/2 in ALPN (loadgen --h2 offered only h2; it chose {chosen})"
)]
pub(crate) struct AlpnRefused {
    chosen: String,
}

/// One live connection.
struct Live {
    send: SendRequest<Bytes>,
    tap: Rc<TapState>,
    ended: Rc<Cell<bool>>,
    /// Streams started on it.
    streams: Cell<u64>,
    /// When it became ready.
    at: Instant,
}

impl Live {
    /// Takes new streams: no GOAWAY received, still open.
    fn usable(&self) -> bool {
        !self.ended.get() && self.tap.goaway.get().is_none()
    }
}

/// Why no connection could be had.
enum NoConn {
    /// The connect or TLS handshake failed: the request's class.
    Failed(FailureClass),
    /// The run cannot go on.
    Fatal(AlpnRefused),
}

/// A connection slot.
struct Slot {
    id: u64,
    ctx: Arc<H2Ctx>,
    shared: Arc<Shared>,
    rec: Rc<RefCell<Recorder>>,
    current: RefCell<Option<Rc<Live>>>,
    /// Held while opening, so that the stream loops of a slot open one
    /// connection, not one each.
    opening: tokio::sync::Mutex<()>,
    opened_any: Cell<bool>,
    fatal: RefCell<Option<AlpnRefused>>,
    /// Connection futures opened since the slot's task last took them: the
    /// slot's task drives them with its stream loops.
    new_conns: RefCell<Vec<ConnFuture>>,
}

/// A connection's future: `h2`'s connection, then marking it ended.
type ConnFuture = Pin<Box<dyn Future<Output = ()>>>;

impl Slot {
    /// The slot's live connection, opened when there is none that takes new
    /// streams; `true` when this call opened it.
    async fn live(&self) -> Result<(Rc<Live>, bool), NoConn> {
        let usable = || self.current.borrow().clone().filter(|l| l.usable());
        if let Some(l) = usable() {
            return Ok((l, false));
        }
        let _guard = self.opening.lock().await;
        if let Some(l) = usable() {
            return Ok((l, false));
        }
        // The old connection (if any) keeps serving its open streams; it is
        // dropped with its last user.
        self.current.borrow_mut().take();
        let live = Rc::new(self.open().await?);
        if self.opened_any.replace(true) {
            self.rec.borrow_mut().h2.reconnects += 1;
        }
        *self.current.borrow_mut() = Some(live.clone());
        Ok((live, true))
    }

    async fn open(&self) -> Result<Live, NoConn> {
        let ctx = &self.ctx;
        let source = ctx.source(self.id);
        let tap = Rc::new(TapState::default());
        let (send, at) = match &ctx.tls {
            None => {
                let tcp = tcp_connect(ctx.addr, source, ctx.timeout, true)
                    .await
                    .map_err(NoConn::Failed)?;
                let at = Instant::now();
                self.rec.borrow_mut().connected(self.shared.offset_ns(at));
                (self.handshake(tcp, &tap).await?, at)
            }
            Some(tls) => {
                let (stream, at) =
                    connect_tls(tls, ctx.addr, source, ctx.timeout, &self.shared, &self.rec)
                        .await
                        .map_err(|f| {
                            if f.no_application_protocol {
                                NoConn::Fatal(AlpnRefused {
                                    chosen: "none: it answered no_application_protocol".to_owned(),
                                })
                            } else {
                                NoConn::Failed(f.class)
                            }
                        })?;
                let alpn = stream.get_ref().1.alpn_protocol();
                if alpn != Some(b"h2") {
                    let chosen = alpn.map_or_else(
                        || "none".to_owned(),
                        |p| String::from_utf8_lossy(p).into_owned(),
                    );
                    return Err(NoConn::Fatal(AlpnRefused { chosen }));
                }
                (self.handshake(stream, &tap).await?, at)
            }
        };
        Ok(Live {
            send: send.0,
            ended: send.1,
            tap,
            streams: Cell::new(0),
            at,
        })
    }

    /// The HTTP/2 handshake on `io` (the preface and SETTINGS go out; the
    /// server's answer is read by the connection's future), and the
    /// connection's future, which marks the connection ended when it returns,
    /// handed to the slot's task.
    async fn handshake<T>(
        &self,
        io: T,
        tap: &Rc<TapState>,
    ) -> Result<(SendRequest<Bytes>, Rc<Cell<bool>>), NoConn>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    {
        let io = Tap::new(
            ReadAhead::new(io),
            tap.clone(),
            self.shared.clone(),
            self.rec.clone(),
        );
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| NoConn::Failed(stream::classify(&e).0))?;
        let ended = Rc::new(Cell::new(false));
        let flag = ended.clone();
        self.new_conns.borrow_mut().push(Box::pin(async move {
            let _ = conn.await;
            flag.set(true);
        }));
        Ok((send, ended))
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// Runs connection slot `id` (its `--streams` stream loops) to the end of
/// the plan. Fails only when the run cannot go on ([`AlpnRefused`]).
pub(crate) async fn run_slot(
    id: u64,
    shared: Arc<Shared>,
    ctx: Arc<H2Ctx>,
    rec: Rc<RefCell<Recorder>>,
) -> Result<(), AlpnRefused> {
    let slot = Rc::new(Slot {
        id,
        ctx: ctx.clone(),
        shared,
        rec,
        current: RefCell::new(None),
        opening: tokio::sync::Mutex::new(()),
        opened_any: Cell::new(false),
        fatal: RefCell::new(None),
        new_conns: RefCell::new(Vec::new()),
    });
    // The stream loops and the connections run in this one task: a response
    // read by a connection wakes its stream loop without a task switch.
    let mut loops: FuturesUnordered<_> = (0..ctx.streams)
        .map(|_| stream_loop(slot.clone()))
        .collect();
    let mut conns: FuturesUnordered<ConnFuture> = FuturesUnordered::new();
    std::future::poll_fn(|cx| {
        loop {
            while let Poll::Ready(Some(())) = conns.poll_next_unpin(cx) {}
            let done = loop {
                match loops.poll_next_unpin(cx) {
                    Poll::Ready(Some(())) => {}
                    Poll::Ready(None) => break true,
                    Poll::Pending => break false,
                }
            };
            let new = std::mem::take(&mut *slot.new_conns.borrow_mut());
            let none_new = new.is_empty();
            conns.extend(new);
            if done {
                return Poll::Ready(());
            }
            if none_new {
                return Poll::Pending;
            }
        }
    })
    .await;
    // Connections still open (the last one, or old ones finishing their
    // streams) go on in tasks of their own.
    for c in conns {
        tokio::task::spawn_local(c);
    }
    slot.current.borrow_mut().take();
    match slot.fatal.borrow_mut().take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The identity of one request, for its record.
#[derive(Clone, Copy)]
struct Req {
    start: Instant,
    id: Option<u64>,
    kind: u16,
    idempotent: bool,
}

impl Slot {
    fn fail(&self, req: Req, class: FailureClass, reused: bool) {
        let keep = self.shared.failure_slot();
        let record = FailureRecord {
            t_ns: self.shared.offset_ns(Instant::now()),
            start_ns: self.shared.offset_ns(req.start),
            class,
            reused,
            id: req.id,
            // As `is_retryable`: never processed, or an idempotent request
            // cut before any response byte on a reused connection.
            retryable: class.never_processed()
                || (req.idempotent && reused && class.before_response()),
            kind: req.kind,
        };
        self.rec.borrow_mut().failure(record, keep);
        self.shared.done(false);
    }

    /// Counts a failed stream in the HTTP/2 counts (every attempt).
    fn count_stream(&self, class: FailureClass, code: Option<u32>) {
        let h2 = &mut self.rec.borrow_mut().h2;
        match class {
            FailureClass::GoawayRefused => h2.refused += 1,
            FailureClass::StreamReset => {
                *h2.reset_codes.entry(code.unwrap_or(0)).or_default() += 1;
            }
            FailureClass::StreamLost => h2.lost += 1,
            FailureClass::ProtocolError => h2.protocol_errors += 1,
            _ => {}
        }
    }
}

/// The outcome of one request: its answer, or its class.
struct Outcome {
    result: Result<stream::Answer, FailureClass>,
    /// The connection it ended on, and whether the request opened it.
    live: Option<(Rc<Live>, bool)>,
    /// Whether its stream went on a connection that had carried others.
    reused: bool,
}

/// One request: a stream on the slot's connection (moving to a new one
/// when the connection refuses new streams), retried once on a new
/// connection when refused by a GOAWAY and `--retry-refused` is on.
async fn request(slot: &Slot, req: Req, ticket: u64) -> Result<Outcome, NoConn> {
    let ctx = &slot.ctx;
    let kind = &ctx.kinds[usize::from(req.kind)];
    let id = ctx.request_ids.then_some(ticket);
    let mut not_sent = 0;
    let mut retried = false;
    loop {
        let (live, opened) = match slot.live().await {
            Ok(l) => l,
            Err(NoConn::Failed(class)) if retried => {
                return Ok(Outcome {
                    result: Err(class),
                    live: None,
                    reused: false,
                });
            }
            Err(e) => return Err(e),
        };
        let reused = live.streams.get() > 0;
        live.streams.set(live.streams.get() + 1);
        let usable = || live.usable();
        let with_server = slot.shared.first_response.get().is_none();
        let attempt =
            stream::exchange(&live.send, kind, id, ctx.timeout, usable, with_server).await;
        let class = match attempt {
            Ok(answer) => {
                return Ok(Outcome {
                    result: Ok(answer),
                    live: Some((live, opened)),
                    reused,
                });
            }
            Err(Attempt::NotSent) => {
                live.streams.set(live.streams.get() - 1);
                // It takes no new stream: the next request opens another.
                live.ended.set(true);
                not_sent += 1;
                if not_sent < MAX_NOT_SENT {
                    continue;
                }
                // Every new connection refused it at once: by a GOAWAY, or
                // by closing before the stream could be opened.
                if live.tap.goaway.get().is_some() {
                    slot.count_stream(FailureClass::GoawayRefused, None);
                    FailureClass::GoawayRefused
                } else {
                    FailureClass::Closed
                }
            }
            Err(Attempt::Failed { class, code }) => {
                slot.count_stream(class, code);
                class
            }
        };
        if class == FailureClass::GoawayRefused && ctx.retry_refused && !retried {
            retried = true;
            not_sent = 0;
            slot.rec.borrow_mut().retried(req.kind);
            continue;
        }
        return Ok(Outcome {
            result: Err(class),
            live: Some((live, opened)),
            reused,
        });
    }
}

/// One stream loop: takes tickets until the plan is done.
async fn stream_loop(slot: Rc<Slot>) {
    let ctx = slot.ctx.clone();
    let shared = slot.shared.clone();
    let mut backoff = BACKOFF_MIN;
    let mut first = true;
    loop {
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
        let start = match ticket.intended {
            Some(intended) => {
                slot.rec
                    .borrow_mut()
                    .lag(ns(now.saturating_duration_since(intended)));
                intended.min(now)
            }
            None => now,
        };
        let kind = &ctx.kinds[kind_index];
        let req = Req {
            start,
            id: ctx.request_ids.then_some(ticket.index),
            kind: kind_index as u16,
            idempotent: kind.idempotent,
        };
        let outcome = match request(&slot, req, ticket.index).await {
            Ok(o) => o,
            Err(NoConn::Failed(class)) => {
                slot.fail(req, class, false);
                if class != FailureClass::ConnectTimeout {
                    let t0 = Instant::now();
                    shared.sleep_until(t0 + backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    if class == FailureClass::ConnectRefused {
                        slot.rec.borrow_mut().refused_backoff_ns += ns(t0.elapsed());
                    }
                }
                continue;
            }
            Err(NoConn::Fatal(e)) => {
                slot.fail(req, FailureClass::ProtocolError, false);
                slot.rec.borrow_mut().h2.protocol_errors += 1;
                slot.fatal.borrow_mut().get_or_insert(e);
                shared.stop();
                break;
            }
        };
        backoff = BACKOFF_MIN;
        let answer = match outcome.result {
            Err(class) => {
                slot.fail(req, class, outcome.reused);
                continue;
            }
            Ok(a) => a,
        };
        if let Some(class) = status_class(answer.status) {
            slot.fail(req, class, outcome.reused);
            continue;
        }
        let end = Instant::now();
        if shared.first_response.get().is_none() {
            let _ = shared.first_response.get_or_init(|| FirstResponse {
                server: answer.server.clone(),
                body_len: answer.body_bytes,
            });
        }
        let (connect_ns, connected) = match &outcome.live {
            Some((live, true)) => (ns(live.at - now.min(live.at)), live.at.max(now)),
            _ => (0, now),
        };
        let times = OkTimes {
            end_ns: shared.offset_ns(end),
            latency_ns: ns(end - start),
            connect_ns,
            processing_ns: ns(end.saturating_duration_since(connected)),
            waiting_ns: ns(answer.first_byte.saturating_duration_since(answer.written)),
            start_ns: shared.offset_ns(start),
            kind: req.kind,
        };
        {
            let mut r = slot.rec.borrow_mut();
            // Bytes on the wire are counted by the tap; here the body.
            r.bytes(0, answer.body_bytes);
            r.ok(&times);
        }
        shared.done(true);
    }
}

/// The failure class of a complete response, `None` for a 2xx.
fn status_class(status: u16) -> Option<FailureClass> {
    match status {
        200..=299 => None,
        500..=599 => Some(FailureClass::Http5xx),
        _ => Some(FailureClass::HttpOther),
    }
}
