//! Forwarding of client requests to the origins.
//!
//! A [`Forwarder`] belongs to one serving thread: it picks origins round robin and keeps
//! that thread's idle keep-alive connections to each origin ([`pool`]). An exchange
//! writes the rewritten request head (see [`crate::http1`]) and relays the request body
//! ([`relay`]), then reads the origin's response head, skipping interim (1xx) responses.
//! Failures become proxy responses: 502 Bad Gateway when the origin cannot be reached or
//! breaks the exchange, 504 Gateway Timeout when its response head does not arrive
//! within `timeouts.request` (see [`Failure`]).
//!
//! One retry: an origin may close an idle keep-alive connection (its keep-alive timeout,
//! a reload) at the moment the proxy reuses it. A request caught that way, i.e. sent on
//! a reused connection that failed before any response byte came, is sent once more on a
//! fresh connection when its method is idempotent and it has no body, so that sending it
//! twice is harmless. A failure on a fresh connection is never retried: the origin itself
//! is broken.

mod pool;
pub(crate) mod relay;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::config::Config;
use crate::http1::{self, Parsed, RequestHead, ResponseHead};
use crate::serve::Identity;
use pool::Pool;
use relay::{BUF_BYTES, Buffered, RelayError};

/// Name of the optional generation header: `X-Served-By: gen=<g> pid=<pid>`.
pub const SERVED_BY: &str = "x-served-by";

/// Idle origin connections kept per origin and serving thread.
const POOL_MAX_IDLE_PER_ORIGIN: usize = 1024;

/// How long an idle origin connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Read buffers kept for reuse per serving thread.
const SPARE_BUFFERS: usize = 256;

/// One origin.
#[derive(Debug)]
struct Origin {
    addr: SocketAddr,
    /// `host: <addr>\r\n`, sent when the client gave no `Host`.
    host_line: Vec<u8>,
    pool: Pool,
}

/// Why an exchange with an origin failed; [`Failure::status`] is the answer to the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// No origin configured, or connecting failed or timed out.
    #[error("cannot connect to the origin: {0}")]
    Connect(#[source] io::Error),
    /// The connection broke before the response head was complete.
    #[error("origin connection failed: {0}")]
    Broken(#[source] io::Error),
    /// The client's request body could not be read (the client connection is unusable).
    #[error("reading the request body: {0}")]
    Client(#[source] RelayError),
    /// The origin's response head cannot be relayed.
    #[error("bad response from the origin: {0}")]
    BadResponse(#[from] http1::BadResponse),
    /// The response head did not arrive within `timeouts.request`.
    #[error("the origin did not answer in time")]
    Timeout,
}

impl Failure {
    /// The status answered to the client.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Failure::Timeout => 504,
            _ => 502,
        }
    }
}

/// A response head from an origin, and the origin connection its body is read from.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) head: ResponseHead,
    pub(crate) origin: Buffered,
    origin_index: usize,
}

/// Forwards requests to the configured origins.
#[derive(Debug)]
pub struct Forwarder {
    origins: Vec<Origin>,
    next: AtomicUsize,
    connect_timeout: Duration,
    request_timeout: Duration,
    served_by: Vec<u8>,
    buffers: Mutex<Vec<Vec<u8>>>,
}

impl Forwarder {
    /// A forwarder to `cfg.origins` with `cfg.timeouts`; when `cfg.generation_header`
    /// is set, responses carry `X-Served-By` for `id`.
    pub fn new(cfg: &Config, id: Identity) -> Forwarder {
        Forwarder {
            origins: cfg
                .origins
                .iter()
                .map(|addr| Origin {
                    addr: *addr,
                    host_line: format!("host: {}\r\n", authority_of(addr)).into_bytes(),
                    pool: Pool::new(POOL_MAX_IDLE_PER_ORIGIN, POOL_IDLE_TIMEOUT),
                })
                .collect(),
            next: AtomicUsize::new(0),
            connect_timeout: cfg.timeouts.connect,
            request_timeout: cfg.timeouts.request,
            served_by: if cfg.generation_header {
                format!("{SERVED_BY}: gen={} pid={}\r\n", id.generation, id.pid).into_bytes()
            } else {
                Vec::new()
            },
            buffers: Mutex::new(Vec::new()),
        }
    }

    /// Header lines every response to a client carries (the generation header, when on).
    pub(crate) fn served_by(&self) -> &[u8] {
        &self.served_by
    }

    /// Sends `req` (whose head was consumed from `client`; its body follows there) to the
    /// next origin and returns the origin's final response head.
    pub(crate) async fn exchange(
        &self,
        mut req: RequestHead,
        client: &mut Buffered,
    ) -> Result<Answer, Failure> {
        let n = self.origins.len();
        if n == 0 {
            return Err(Failure::Connect(io::ErrorKind::NotFound.into()));
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let Some(origin) = self.origins.get(index) else {
            return Err(Failure::Connect(io::ErrorKind::NotFound.into()));
        };
        if !req.has_host {
            req.upstream.extend_from_slice(&origin.host_line);
        }
        req.upstream.extend_from_slice(b"\r\n");
        let exchange = async {
            let (stream, reused) = match origin.pool.take() {
                Some(s) => (s, true),
                None => (self.connect(origin).await?, false),
            };
            match self.attempt(stream, &req, client).await {
                Err(Attempt::BeforeResponse(e)) if reused && req.replayable => {
                    tracing::debug!(error = %e, "reused origin connection closed: retrying once");
                    let stream = self.connect(origin).await?;
                    self.attempt(stream, &req, client)
                        .await
                        .map_err(Failure::from)
                }
                other => other.map_err(Failure::from),
            }
        };
        let (head, origin_conn) = tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| Failure::Timeout)??;
        Ok(Answer {
            head,
            origin: origin_conn,
            origin_index: index,
        })
    }

    /// After a response body was relayed in full: keeps the origin connection for reuse
    /// when the origin allows it, and the read buffer.
    pub(crate) fn finish(&self, answer: Answer, body_done: bool) {
        let reusable = body_done && answer.head.reusable && answer.origin.pending().is_empty();
        let (stream, buf) = answer.origin.into_parts();
        if reusable {
            if let Some(origin) = self.origins.get(answer.origin_index) {
                origin.pool.put(stream);
            }
        }
        self.give_buffer(buf);
    }

    /// One attempt on one origin connection: request out, response head in.
    async fn attempt(
        &self,
        stream: TcpStream,
        req: &RequestHead,
        client: &mut Buffered,
    ) -> Result<(ResponseHead, Buffered), Attempt> {
        let mut origin = Buffered::new(stream, self.take_buffer());
        match relay::relay(client, &mut origin.stream, &req.upstream, req.body, false).await {
            Ok(()) => {}
            Err(RelayError::Write(e)) => return Err(Attempt::BeforeResponse(e)),
            Err(e) => return Err(Attempt::Failed(Failure::Client(e))),
        }
        loop {
            match http1::parse_response(origin.pending(), req.is_head, req.http10) {
                Ok(Parsed::Final(head)) => {
                    origin.consume(head.head_len);
                    return Ok((head, origin));
                }
                Ok(Parsed::Interim(len)) => {
                    origin.consume(len);
                    continue;
                }
                Ok(Parsed::Partial) => {}
                Err(e) => return Err(Attempt::Failed(e.into())),
            }
            let before = origin.pending().len();
            match origin.read_more(BUF_BYTES).await {
                Ok(0) if before == 0 => {
                    return Err(Attempt::BeforeResponse(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(0) => {
                    let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                    return Err(Attempt::Failed(Failure::Broken(eof)));
                }
                Ok(_) => {}
                Err(e) if before == 0 => return Err(Attempt::BeforeResponse(e)),
                Err(e) => return Err(Attempt::Failed(Failure::Broken(e))),
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<TcpStream, Failure> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(origin.addr))
            .await
            .map_err(|_| Failure::Connect(io::ErrorKind::TimedOut.into()))?
            .map_err(Failure::Connect)?;
        stream.set_nodelay(true).map_err(Failure::Connect)?;
        Ok(stream)
    }

    /// A read buffer of [`BUF_BYTES`], reused when one is spare.
    pub(crate) fn take_buffer(&self) -> Vec<u8> {
        self.lock_buffers()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUF_BYTES))
    }

    /// Keeps an emptied read buffer for reuse.
    pub(crate) fn give_buffer(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut spare = self.lock_buffers();
        if spare.len() < SPARE_BUFFERS && buf.capacity() >= BUF_BYTES {
            spare.push(buf);
        }
    }

    fn lock_buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A vector of empty buffers is consistent whenever the lock is released.
        self.buffers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How one attempt failed.
#[derive(Debug)]
enum Attempt {
    /// The connection failed before any response byte came: retryable on a reused
    /// connection.
    BeforeResponse(io::Error),
    /// Any other failure.
    Failed(Failure),
}

impl From<Attempt> for Failure {
    fn from(a: Attempt) -> Failure {
        match a {
            Attempt::BeforeResponse(e) => Failure::Broken(e),
            Attempt::Failed(f) => f,
        }
    }
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
