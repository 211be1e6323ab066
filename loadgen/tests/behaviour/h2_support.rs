//! A raw-frame HTTP/2 server for the tests (on 127.0.0.1:0, cleartext or
//! TLS with ALPN), which misbehaves on purpose and counts with atomics
//! exactly what it did: the GOAWAYs it sent and their last-stream-id, the
//! streams it refused (request HEADERS above that id), reset, left open when
//! it closed the connection or when it broke the protocol, and answered.
//!
//! Raw frames, not `h2::server`: a real server library cannot be made to
//! break the protocol, and does not tell which streams it refused. Requests
//! are not decoded (HPACK): a HEADERS frame opens a stream; the answer is a
//! HEADERS frame `:status 200` (static table index 8) and a DATA frame `ok`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// What the server does on one connection (by the order it was accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Answers each stream as it comes (resetting every `reset_every`th one).
    Serve,
    /// Waits for `batch` open streams, then answers them all.
    Batch,
    /// Waits for `batch` open streams, sends GOAWAY with the id of the
    /// `keep`-th as last-stream-id and `code`, then answers the streams up to
    /// it: the others are refused (as are streams that come later).
    Goaway { keep: usize, code: u32 },
    /// Waits for `batch` open streams, then closes the TCP connection
    /// without answering any.
    Close,
    /// Waits for `batch` open streams, then sends a DATA frame on stream 0
    /// (a connection error: RFC 9113 §6.1).
    DataOnStreamZero,
}

/// What the server did.
#[derive(Debug, Default)]
pub(crate) struct H2Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) goaway_graceful: AtomicU64,
    pub(crate) goaway_error: AtomicU64,
    /// The last-stream-id of each GOAWAY sent.
    pub(crate) last_ids: Mutex<Vec<u32>>,
    /// Request HEADERS received above the last-stream-id of a GOAWAY sent.
    pub(crate) refused: AtomicU64,
    /// RST_STREAM sent, per error code.
    pub(crate) resets: Mutex<BTreeMap<u32, u64>>,
    /// Streams open when the server closed a connection.
    pub(crate) open_at_close: AtomicU64,
    /// Streams open when the server broke the protocol.
    pub(crate) open_at_violation: AtomicU64,
    /// Error codes of the GOAWAYs the client sent.
    pub(crate) client_goaways: Mutex<Vec<u32>>,
    /// Most streams open at once on one connection.
    pub(crate) max_open: AtomicU64,
    /// Request HEADERS received (all connections).
    headers_seen: AtomicU64,
    ended: Notify,
}

/// Reads a counter.
pub(crate) fn n(c: &AtomicU64) -> u64 {
    c.load(Ordering::SeqCst)
}

/// The server's settings.
#[derive(Debug, Clone)]
pub(crate) struct H2Setup {
    /// The plan of connection `i` (0 = the first accepted).
    pub(crate) plans: Vec<Plan>,
    /// The plan of the connections beyond `plans`.
    pub(crate) then: Plan,
    /// Streams to wait for in the plans that wait.
    pub(crate) batch: usize,
    /// With [`Plan::Serve`]: reset every this-many-th stream of the server
    /// with this code instead of answering it.
    pub(crate) reset_every: Option<(u64, u32)>,
}

impl H2Setup {
    /// Serves every connection, one stream at a time.
    pub(crate) fn serve() -> H2Setup {
        H2Setup {
            plans: Vec::new(),
            then: Plan::Serve,
            batch: 1,
            reset_every: None,
        }
    }
}

/// An HTTP/2 server on 127.0.0.1:0.
pub(crate) struct H2Server {
    pub(crate) addr: SocketAddr,
    pub(crate) counters: Arc<H2Counters>,
    tls: bool,
    task: JoinHandle<()>,
}

impl H2Server {
    /// A cleartext (h2c, prior knowledge) server.
    pub(crate) async fn start(setup: H2Setup) -> H2Server {
        H2Server::start_with(setup, None).await
    }

    /// A server over TLS with `config` (its ALPN decides what it offers),
    /// or cleartext without.
    pub(crate) async fn start_with(
        setup: H2Setup,
        config: Option<Arc<rustls::ServerConfig>>,
    ) -> H2Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(H2Counters::default());
        let c = counters.clone();
        let tls = config.is_some();
        let acceptor = config.map(TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let i = c.accepted.fetch_add(1, Ordering::SeqCst) as usize;
                let plan = setup.plans.get(i).copied().unwrap_or(setup.then);
                let (c, setup, acceptor) = (c.clone(), setup.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        None => connection(tcp, plan, &setup, &c).await,
                        Some(a) => {
                            if let Ok(s) = a.accept(tcp).await {
                                connection(s, plan, &setup, &c).await;
                            }
                        }
                    }
                    c.closed.fetch_add(1, Ordering::SeqCst);
                    c.ended.notify_waiters();
                });
            }
        });
        H2Server {
            addr,
            counters,
            tls,
            task,
        }
    }

    /// `http://` or `https://127.0.0.1:port/`.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// Waits until every accepted connection ended (the client closed them
    /// all), so that the counts are final.
    pub(crate) async fn all_closed(&self) {
        let c = &self.counters;
        let wait = async {
            loop {
                let ended = c.ended.notified();
                if n(&c.closed) == n(&c.accepted) {
                    return;
                }
                ended.await;
            }
        };
        tokio::time::timeout(crate::support::wait(), wait)
            .await
            .expect("the client closes its connections");
    }

    /// RST_STREAMs sent with `code`.
    pub(crate) fn resets(&self, code: u32) -> u64 {
        self.counters
            .resets
            .lock()
            .unwrap()
            .get(&code)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn answer(stream: u32) -> Vec<u8> {
    let mut f = frame(HEADERS, END_HEADERS, stream, &[0x88]);
    f.extend(frame(DATA, END_STREAM, stream, b"ok"));
    f
}

/// Reads one frame: (type, flags, stream, payload); `None` at EOF or error.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut h = [0u8; 9];
    s.read_exact(&mut h).await.ok()?;
    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    Some((h[3], h[4], stream, payload))
}

/// Serves one connection by `plan`, until the client closes it.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    plan: Plan,
    setup: &H2Setup,
    c: &H2Counters,
) {
    let mut preface = [0u8; 24];
    if s.read_exact(&mut preface).await.is_err() || preface != PREFACE {
        return;
    }
    if s.write_all(&frame(SETTINGS, 0, 0, &[])).await.is_err() {
        return;
    }
    let mut open: Vec<u32> = Vec::new();
    let mut last_id: Option<u32> = None;
    let mut done = false;
    while let Some((kind, flags, stream, payload)) = read_frame(&mut s).await {
        let mut out = Vec::new();
        match kind {
            SETTINGS if flags & ACK == 0 => out.extend(frame(SETTINGS, ACK, 0, &[])),
            PING if flags & ACK == 0 => out.extend(frame(PING, ACK, 0, &payload)),
            GOAWAY if payload.len() >= 8 => {
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                c.client_goaways.lock().unwrap().push(code);
            }
            HEADERS => {
                let seen = c.headers_seen.fetch_add(1, Ordering::SeqCst) + 1;
                if last_id.is_some_and(|l| stream > l) {
                    c.refused.fetch_add(1, Ordering::SeqCst);
                } else if done {
                    // After a close or a violation nothing more is served.
                } else if plan == Plan::Serve {
                    match setup.reset_every {
                        Some((every, code)) if seen.is_multiple_of(every) => {
                            out.extend(frame(RST_STREAM, 0, stream, &code.to_be_bytes()));
                            *c.resets.lock().unwrap().entry(code).or_default() += 1;
                        }
                        _ => {
                            out.extend(answer(stream));
                            c.answered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    c.max_open.fetch_max(1, Ordering::SeqCst);
                } else {
                    open.push(stream);
                    c.max_open.fetch_max(open.len() as u64, Ordering::SeqCst);
                    if open.len() == setup.batch {
                        done = true;
                        match plan {
                            Plan::Serve => {}
                            Plan::Batch => {
                                // Served: later streams are answered one by one.
                                done = false;
                                for id in open.drain(..) {
                                    out.extend(answer(id));
                                    c.answered.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            Plan::Goaway { keep, code } => {
                                open.sort_unstable();
                                let last = if keep == 0 { 0 } else { open[keep - 1] };
                                last_id = Some(last);
                                c.last_ids.lock().unwrap().push(last);
                                let mut p = last.to_be_bytes().to_vec();
                                p.extend_from_slice(&code.to_be_bytes());
                                // The GOAWAY first, then the answers it keeps.
                                out.extend(frame(GOAWAY, 0, 0, &p));
                                let counter = if code == 0 {
                                    &c.goaway_graceful
                                } else {
                                    &c.goaway_error
                                };
                                counter.fetch_add(1, Ordering::SeqCst);
                                for id in open.drain(..) {
                                    if id <= last {
                                        out.extend(answer(id));
                                        c.answered.fetch_add(1, Ordering::SeqCst);
                                    } else {
                                        c.refused.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                            }
                            Plan::Close => {
                                c.open_at_close
                                    .fetch_add(open.len() as u64, Ordering::SeqCst);
                                return;
                            }
                            Plan::DataOnStreamZero => {
                                c.open_at_violation
                                    .fetch_add(open.len() as u64, Ordering::SeqCst);
                                out.extend(frame(DATA, 0, 0, b"no"));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return;
        }
    }
}
