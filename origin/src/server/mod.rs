//! The origin server: accept loop, per-connection hyper tasks, fixed body.
//!
//! Each connection is served by hyper-util's auto builder: HTTP/1.1, or
//! HTTP/2 when the client opens with the HTTP/2 preface (h2c with prior
//! knowledge), on the same port. Every request, of either protocol, goes
//! through the same service and the same book.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::book::{Answered, Book};
use crate::long_book::LongBook;

mod long;
pub use long::LongOptions;

/// Default backlog of the listening socket ([`OriginConfig::backlog`], `--backlog`; the
/// kernel caps it at `net.core.somaxconn`): a burst of thousands of connects from a proxy
/// (a thousand WebSocket clients reconnecting at once) must wait in the queue, not be
/// dropped.
pub const BACKLOG: u32 = 4096;

/// Body size served when none is given: the page size of the original experiment.
pub const DEFAULT_BODY_BYTES: usize = 32_987;

/// Settings of an origin server.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// Address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Size of the body served for every request.
    pub body_bytes: usize,
    /// Delay applied before each response, if any.
    pub delay: Option<Duration>,
    /// Backlog of the listening socket (the accept queue's length; the kernel caps
    /// it at `net.core.somaxconn`), [`BACKLOG`] by default.
    pub backlog: u32,
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            body_bytes: DEFAULT_BODY_BYTES,
            delay: None,
            backlog: BACKLOG,
        }
    }
}

/// Errors of the origin server.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// The listening address could not be bound.
    #[error("cannot bind origin to {addr}: {source}")]
    Bind {
        /// The address that was requested.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The bound address could not be read back.
    #[error("cannot read the origin's bound address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The body is larger than the origin serves.
    #[error("body_bytes {0}")]
    BodyBytes(#[from] crate::BodyTooLarge),
}

/// What every connection task shares.
struct Shared {
    body: Bytes,
    content_length: HeaderValue,
    delay: Option<Duration>,
    requests: AtomicU64,
    book: Book,
    long: long::Long,
}

/// A running origin server; dropping it without [`Origin::shutdown`] leaves
/// the server running until the runtime ends.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Origin {
    /// Binds the listening socket and spawns the accept loop on the current runtime.
    pub async fn bind(cfg: OriginConfig) -> Result<Origin, OriginError> {
        Origin::bind_with(cfg, LongOptions::default()).await
    }

    /// [`Origin::bind`] with settings for the long-lived endpoints (`/ws`,
    /// `/stream`, `/upload`).
    pub async fn bind_with(cfg: OriginConfig, long: LongOptions) -> Result<Origin, OriginError> {
        crate::check_body_bytes(cfg.body_bytes as u64)?;
        let listener = listen(cfg.listen, cfg.backlog).map_err(|source| OriginError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(OriginError::LocalAddr)?;
        let body = Bytes::from(body_of(cfg.body_bytes));
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            content_length: HeaderValue::from(body.len()),
            body,
            delay: cfg.delay.filter(|d| !d.is_zero()),
            requests: AtomicU64::new(0),
            book: Book::new(),
            long: long::Long {
                options: long,
                stop: stop_rx.clone(),
                book: Arc::new(LongBook::default()),
            },
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(Origin {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// What the origin received and answered so far (see [`reloadbench_model::ledger`]),
    /// with the WebSockets of `/ws` and the streamed responses of `/stream`.
    pub fn ledger(&self) -> reloadbench_model::ledger::OriginLedger {
        self.shared.ledger()
    }

    /// [`Origin::shutdown`], then the final [`Origin::ledger`].
    pub async fn ledger_after_shutdown(self) -> reloadbench_model::ledger::OriginLedger {
        let shared = self.shared.clone();
        self.shutdown().await;
        shared.ledger()
    }

    /// Stops accepting, closes every connection (each WebSocket with 1001 Going Away)
    /// and waits for the server task and the WebSockets' ends (at most
    /// [`WS_CLOSE_LIMIT`] for those).
    pub async fn shutdown(self) {
        // The receiver lives as long as the accept task; a send error means it already ended.
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        if !self.shared.long.book.ws_all_ended(WS_CLOSE_LIMIT).await {
            eprintln!("origin: WebSockets still open {WS_CLOSE_LIMIT:?} after the stop");
        }
    }
}

/// Longest wait at shutdown for the WebSockets to be closed (each close handshake is
/// bounded by a second).
pub const WS_CLOSE_LIMIT: Duration = Duration::from_secs(3);

impl Shared {
    fn ledger(&self) -> reloadbench_model::ledger::OriginLedger {
        let mut l = self.book.ledger();
        l.ws = Some(self.long.book.ws_ledger());
        l.streams = Some(self.long.book.streams_ledger());
        l
    }
}

/// A listening socket on `addr` with `backlog` (and `SO_REUSEADDR`, as std sets it).
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// A printable body of `n` bytes (a repeated alphabet, ending in a newline when non-empty).
fn body_of(n: usize) -> Vec<u8> {
    let mut body: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz0123456789"
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect();
    if let Some(last) = body.last_mut() {
        *last = b'\n';
    }
    body
}

/// Accepts until told to stop, then closes all connections.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_conn(stream, shared.clone()));
                }
                Err(e) => {
                    // Out of fds or a connection aborted in the backlog: back off, never spin.
                    eprintln!("origin: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// Serves one client connection until it closes.
async fn serve_conn(stream: TcpStream, shared: Arc<Shared>) {
    // Latency matters more than packet count for small responses.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move {
            if long::is_long(&req) {
                return Ok(long::serve(req, &shared.long).await);
            }
            shared.book.received();
            let id = request_id(&req);
            let method = req.method().clone();
            // A request body (POST, PUT, ...) is read whole before the answer:
            // the answer says the origin got all of it. It is counted, not kept.
            let rate = long::upload_rate(&req, &shared.long);
            let body_bytes = drain_body(req.into_body(), rate).await?;
            let resp = respond(&shared).await;
            shared.book.answered(Answered {
                method: method.as_str(),
                body_bytes,
                id,
            });
            Ok::<_, BodyError>(resp.map(http_body_util::Either::Left))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    // A client that disconnects or sends garbage ends only its own connection.
    let _ = conn.await;
}

/// Longest wait for the next piece of a request body; a client that stalls
/// longer loses its connection (no answer).
const BODY_STALL: Duration = Duration::from_secs(30);

/// Why a request body was not read to its end: the connection is closed without
/// an answer.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// The client cut the body, or sent a malformed one.
    #[error("request body: {0}")]
    Read(#[from] hyper::Error),
    /// Nothing of the body came for [`BODY_STALL`].
    #[error("request body stalled for {BODY_STALL:?}")]
    Stalled,
}

/// Reads `body` to its end, counting its bytes without keeping them; with a
/// `rate`, no faster than `rate` bytes per second (the slow upload sink).
async fn drain_body(mut body: Incoming, rate: Option<u64>) -> Result<u64, BodyError> {
    let start = std::time::Instant::now();
    let mut bytes = 0u64;
    loop {
        match tokio::time::timeout(BODY_STALL, body.frame()).await {
            Err(_) => return Err(BodyError::Stalled),
            Ok(None) => return Ok(bytes),
            Ok(Some(frame)) => {
                if let Some(data) = frame?.data_ref() {
                    bytes += data.len() as u64;
                }
                if let Some(rate) = rate {
                    // Not before the time these bytes take at the rate.
                    let due = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
            }
        }
    }
}

/// The request's [`reloadbench_model::ledger::ID_HEADER`], if it has a valid one.
fn request_id(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(reloadbench_model::ledger::ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Builds the response for one request.
async fn respond(shared: &Shared) -> Response<Full<Bytes>> {
    if let Some(delay) = shared.delay {
        tokio::time::sleep(delay).await;
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    // Every method gets the fixed body (HEAD its length only: hyper leaves the body out).
    let mut resp = Response::new(Full::new(shared.body.clone()));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_LENGTH, shared.content_length.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

#[cfg(test)]
mod long_tests;
#[cfg(test)]
mod tests;
