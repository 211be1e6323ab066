//! Deliberately misbehaving HTTP servers on 127.0.0.1:0 that count, with
//! atomics, exactly what they did, so the load generator's counts can be
//! compared with the truth.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// Generous timeout for anything a test waits on (2-core noisy machine), times the
/// slow-machine multiplier (`RELOADBENCH_TEST_SLOW`).
pub(crate) fn wait() -> Duration {
    scaled(Duration::from_secs(60))
}

pub(crate) use reloadbench_model::test_timing::scaled;

/// A closed-loop load of `n` requests from `c` clients to `url`, with the tests'
/// generous timeout.
pub(crate) fn config(url: &str, n: u64, c: u64) -> reloadbench_loadgen::LoadConfig {
    let mut cfg = reloadbench_loadgen::LoadConfig::new(url).unwrap();
    cfg.requests = Some(n);
    cfg.concurrency = c;
    cfg.timeout = scaled(Duration::from_secs(20));
    cfg
}

/// Runs `cfg` to its end (within [`wait`]) and returns its report.
pub(crate) async fn run_load(
    cfg: reloadbench_loadgen::LoadConfig,
) -> reloadbench_model::load::LoadReport {
    let run = reloadbench_loadgen::start(cfg).unwrap();
    tokio::time::timeout(wait(), run.finish())
        .await
        .expect("run ends in time")
        .unwrap()
}

/// How many requests of `r` failed as `c`.
#[allow(dead_code)] // not every test module counts classes
pub(crate) fn class(
    r: &reloadbench_model::load::LoadReport,
    c: reloadbench_model::outcome::FailureClass,
) -> u64 {
    r.classes
        .iter()
        .find(|x| x.class == c)
        .map_or(0, |x| x.count)
}

/// What the server does with each request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Behaviour {
    /// 200 with a body of this many bytes; keep-alive unless the request says close.
    Respond { body: usize },
    /// Reads the request, then resets the connection (SO_LINGER 0 and close).
    ResetAfterRequest,
    /// Sends a head promising `promised` body bytes, sends `sent`, then closes.
    ShortBody { promised: usize, sent: usize },
    /// Answers 502 with a small body.
    BadGateway,
    /// Answers 404 with a small body.
    NotFound,
    /// Answers something that is not HTTP, then closes.
    Garbage,
    /// Reads the request and never answers (until the server is dropped).
    Stall,
    /// Keep-alive 200s; after this many responses on a connection, closes it while idle.
    CloseIdleAfter(u64),
    /// 200 after a delay.
    Slow { delay: Duration },
    /// 200 with a chunked body of `chunks` chunks of 100 bytes; its lines end in a
    /// bare LF instead of CRLF when `bare_lf` (the head's too).
    Chunked { chunks: usize, bare_lf: bool },
    /// Reads the request, sends part of a response head, then resets the
    /// connection (SO_LINGER 0 and close).
    ResetMidHead,
    /// Closes every accepted connection without reading anything: first a
    /// FIN (shutdown), then, as the request is left unread, a reset.
    CloseUnread,
    /// Interim responses with these codes (in this order), then a 200 with the
    /// body `ok`; every other request gets them in one write, the others in one
    /// write per response.
    Interim { codes: &'static [u16] },
    /// `101 Switching Protocols`, then reads until the client closes.
    Switch,
}

/// What the server did.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) short_bodies: AtomicU64,
    pub(crate) bad_gateway: AtomicU64,
    pub(crate) not_found: AtomicU64,
    pub(crate) garbage: AtomicU64,
    pub(crate) stalled: AtomicU64,
    pub(crate) idle_closes: AtomicU64,
    pub(crate) unread_closes: AtomicU64,
    pub(crate) interim: AtomicU64,
    pub(crate) switches: AtomicU64,
    /// Bytes written by the `Interim` and `Switch` behaviours.
    pub(crate) written: AtomicU64,
    pub(crate) peers: Mutex<HashSet<IpAddr>>,
}

impl Counters {
    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::SeqCst);
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::SeqCst);
}

/// An interim response head, e.g. `100 Continue` or `103 Early Hints`.
fn interim_head(code: u16) -> Vec<u8> {
    let extra = if code == 103 {
        "Link: </style.css>; rel=preload\r\n"
    } else {
        ""
    };
    format!("HTTP/1.1 {code} Interim\r\n{extra}\r\n").into_bytes()
}

/// A running test server; dropping it stops it.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) counters: Arc<Counters>,
    behaviour: Behaviour,
    release: Arc<Notify>,
    accept: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind");
    socket.listen(1024).expect("listen")
}

impl TestServer {
    /// Starts a server on 127.0.0.1:0.
    pub(crate) fn start(behaviour: Behaviour) -> TestServer {
        let listener = bind("127.0.0.1:0".parse().expect("addr"));
        let addr = listener.local_addr().expect("local addr");
        let mut s = TestServer {
            addr,
            counters: Arc::new(Counters::default()),
            behaviour,
            release: Arc::new(Notify::new()),
            accept: None,
        };
        s.spawn_accept(listener);
        s
    }

    fn spawn_accept(&mut self, listener: TcpListener) {
        let (tx, mut rx) = oneshot::channel();
        let counters = self.counters.clone();
        let release = self.release.clone();
        let behaviour = self.behaviour;
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    r = listener.accept() => {
                        let Ok((stream, peer)) = r else { continue };
                        inc(&counters.accepted);
                        counters.peers.lock().unwrap().insert(peer.ip());
                        let (c, rel) = (counters.clone(), release.clone());
                        tokio::spawn(async move { handle(stream, behaviour, c, rel).await });
                    }
                }
            }
            drop(listener);
        });
        self.accept = Some((tx, task));
    }

    /// Stops listening: the port refuses connections until [`TestServer::resume`].
    pub(crate) async fn pause(&mut self) {
        if let Some((tx, task)) = self.accept.take() {
            let _ = tx.send(());
            tokio::time::timeout(wait(), task)
                .await
                .expect("accept loop stops")
                .expect("accept loop");
        }
    }

    /// Listens again on the same port.
    pub(crate) fn resume(&mut self) {
        let listener = bind(self.addr);
        self.spawn_accept(listener);
    }

    /// The URL of the server.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.release.notify_waiters();
        if let Some((tx, task)) = self.accept.take() {
            let _ = tx.send(());
            task.abort();
        }
    }
}

/// Reads one request head; false on EOF or error.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<bool> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            buf.drain(..i + 4);
            return Some(head.contains("connection: close"));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn handle(
    mut stream: TcpStream,
    behaviour: Behaviour,
    c: Arc<Counters>,
    release: Arc<Notify>,
) {
    if let Behaviour::CloseUnread = behaviour {
        let _ = stream.shutdown().await;
        inc(&c.unread_closes);
        return;
    }
    let mut buf = Vec::new();
    let mut served = 0u64;
    loop {
        let Some(close) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        inc(&c.requests);
        match behaviour {
            Behaviour::Respond { .. } | Behaviour::Slow { .. } => {
                let body = match behaviour {
                    Behaviour::Respond { body } => body,
                    Behaviour::Slow { delay } => {
                        tokio::time::sleep(delay).await;
                        2
                    }
                    _ => 2,
                };
                let conn = if close { "Connection: close\r\n" } else { "" };
                let mut resp = format!(
                    "HTTP/1.1 200 OK\r\nServer: test\r\nContent-Length: {body}\r\n{conn}\r\n"
                )
                .into_bytes();
                resp.resize(resp.len() + body, b'x');
                if stream.write_all(&resp).await.is_err() {
                    return;
                }
                inc(&c.ok);
                if close {
                    return;
                }
            }
            Behaviour::ResetMidHead => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
                stream.set_zero_linger().expect("SO_LINGER 0");
                inc(&c.resets);
                return;
            }
            Behaviour::CloseUnread => return,
            Behaviour::ResetAfterRequest => {
                stream.set_zero_linger().expect("SO_LINGER 0");
                inc(&c.resets);
                return;
            }
            Behaviour::ShortBody { promised, sent } => {
                let mut resp =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {promised}\r\n\r\n").into_bytes();
                resp.resize(resp.len() + sent, b'x');
                let _ = stream.write_all(&resp).await;
                let _ = stream.shutdown().await;
                inc(&c.short_bodies);
                return;
            }
            Behaviour::BadGateway => {
                let conn = if close { "Connection: close\r\n" } else { "" };
                let resp =
                    format!("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n{conn}\r\nbad");
                if stream.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
                inc(&c.bad_gateway);
                if close {
                    return;
                }
            }
            Behaviour::NotFound => {
                let resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope";
                if stream.write_all(resp).await.is_err() {
                    return;
                }
                inc(&c.not_found);
            }
            Behaviour::Garbage => {
                let _ = stream.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await;
                let _ = stream.shutdown().await;
                inc(&c.garbage);
                return;
            }
            Behaviour::Chunked { chunks, bare_lf } => {
                let eol: &[u8] = if bare_lf { b"\n" } else { b"\r\n" };
                let mut resp = b"HTTP/1.1 200 OK".to_vec();
                for line in [&b""[..], b"Transfer-Encoding: chunked", b""] {
                    resp.extend_from_slice(line);
                    resp.extend_from_slice(eol);
                }
                for _ in 0..chunks {
                    resp.extend_from_slice(b"64");
                    resp.extend_from_slice(eol);
                    resp.extend_from_slice(&[b'y'; 100]);
                    resp.extend_from_slice(eol);
                }
                for line in [&b"0"[..], b"X-Trailer: 1", b""] {
                    resp.extend_from_slice(line);
                    resp.extend_from_slice(eol);
                }
                if stream.write_all(&resp).await.is_err() {
                    return;
                }
                inc(&c.ok);
            }
            Behaviour::Interim { codes } => {
                let conn = if close { "Connection: close\r\n" } else { "" };
                let last = format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{conn}\r\nok");
                let mut pieces: Vec<Vec<u8>> = codes.iter().map(|c| interim_head(*c)).collect();
                pieces.push(last.into_bytes());
                if served.is_multiple_of(2) {
                    pieces = vec![pieces.concat()];
                }
                served += 1;
                for piece in &pieces {
                    if stream.write_all(piece).await.is_err() {
                        return;
                    }
                    add(&c.written, piece.len());
                }
                c.interim.fetch_add(codes.len() as u64, Ordering::SeqCst);
                inc(&c.ok);
                if close {
                    return;
                }
            }
            Behaviour::Switch => {
                let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: upgrade\r\n\r\n";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                add(&c.written, head.len());
                inc(&c.switches);
                let mut sink = [0u8; 1024];
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            Behaviour::Stall => {
                inc(&c.stalled);
                let released = release.notified();
                let _ = tokio::time::timeout(wait(), released).await;
                return;
            }
            Behaviour::CloseIdleAfter(max) => {
                let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if stream.write_all(resp).await.is_err() {
                    return;
                }
                inc(&c.ok);
                served += 1;
                if served == max {
                    inc(&c.idle_closes);
                    return;
                }
            }
        }
    }
}
