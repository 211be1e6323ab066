//! In-process tests of serving, forwarding and draining: the proxy on port 0,
//! `reloadbench-origin` or small test origins behind it, raw TCP clients.

mod drain;
mod exchange_origin;
mod forward;
mod h2;
mod handover;
mod hardening;
mod http;
mod limits;
mod min_rate;
mod protocol;
mod race;
mod retry;
mod tls;
mod tunnel_close;
mod tunnel_limit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reloadbench_origin::{Origin, OriginConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

pub(super) use reloadbench_model::test_timing::scaled;

use super::{Identity, Server};
use crate::config::Config;

/// Bound on every wait in these tests: generous for a loaded 2-core machine, times the
/// slow-machine multiplier (`RELOADBENCH_TEST_SLOW`).
pub(super) fn limit() -> Duration {
    scaled(Duration::from_secs(30))
}

pub(super) const ID: Identity = Identity {
    pid: 4242,
    generation: 7,
};

/// A proxy on a fresh `127.0.0.1:0` listener.
pub(super) fn proxy(
    origins: Vec<SocketAddr>,
    tweak: impl FnOnce(&mut Config),
) -> (Server, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config::new(vec![addr], origins);
    tweak(&mut cfg);
    let server = Server::start(vec![listener], Arc::new(cfg), ID).unwrap();
    (server, addr)
}

/// Drains `server` in a task of its own; its report comes from the handle.
pub(super) fn spawn_drain(server: &Arc<Server>) -> tokio::task::JoinHandle<super::DrainReport> {
    let server = server.clone();
    tokio::spawn(async move { server.drain().await })
}

/// A reloadbench origin on port 0.
pub(super) async fn origin(body_bytes: usize) -> Origin {
    Origin::bind(OriginConfig {
        body_bytes,
        ..OriginConfig::default()
    })
    .await
    .unwrap()
}

/// An address on which nothing listens (bound, then released).
pub(super) fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An origin that accepts connections, reads, and never answers.
pub(super) async fn stalling_origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// An origin whose body describes the request it got: one `name: value` line per
/// header (lowercase names), then `body-bytes: N`, then `tag: <tag>`.
pub(super) async fn echo_origin(tag: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let svc = service_fn(move |req: hyper::Request<Incoming>| async move {
                let mut text = String::new();
                for (k, v) in req.headers() {
                    text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                }
                let body = req.into_body().collect().await?.to_bytes();
                text.push_str(&format!("body-bytes: {}\ntag: {tag}\n", body.len()));
                Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(text))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc),
            );
        }
    });
    addr
}

/// A parsed response.
#[derive(Debug)]
pub(super) struct Resp {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Resp {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 client connection.
pub(super) struct Client {
    pub(super) stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub(super) async fn connect(addr: SocketAddr) -> Client {
        let stream = timeout(limit(), TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub(super) async fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).await.unwrap();
    }

    /// Sends `GET path` with keep-alive and reads the response.
    pub(super) async fn get(&mut self, path: &str) -> Resp {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
            .await;
        self.response().await
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = vec![0u8; 65536];
        let n = timeout(limit(), self.stream.read(&mut chunk))
            .await
            .expect("no response in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one response (Content-Length framed, or up to EOF without it).
    pub(super) async fn response(&mut self) -> Resp {
        self.try_response()
            .await
            .expect("connection closed before a response")
    }

    /// Reads one response, `None` when the connection closed before one.
    pub(super) async fn try_response(&mut self) -> Option<Resp> {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill().await == 0 {
                return None;
            }
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse::<usize>().unwrap());
        self.buf.drain(..head_end);
        let body = match len {
            Some(len) => {
                while self.buf.len() < len {
                    assert!(self.fill().await > 0, "EOF in the body");
                }
                self.buf.drain(..len).collect()
            }
            None => {
                while self.fill().await > 0 {}
                std::mem::take(&mut self.buf)
            }
        };
        Some(Resp {
            status,
            headers,
            body,
        })
    }

    /// Asserts that the server closes the connection (EOF or reset) with nothing more sent.
    pub(super) async fn expect_closed(&mut self) {
        let mut chunk = [0u8; 1024];
        let res = timeout(limit(), self.stream.read(&mut chunk))
            .await
            .expect("connection not closed in time");
        match res {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!(
                "unexpected bytes: {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
        }
    }
}

// Wire helpers shared by the protocol and hardening tests.

/// End of a message head (index just past the blank line), if complete.
pub(super) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Header lines of a head: lowercase names, trimmed values, repeats kept in order.
pub(super) fn header_lines(head: &str) -> Vec<(String, String)> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

/// A `200 OK` with a `Content-Length` body.
pub(super) fn ok(body: &[u8]) -> Vec<u8> {
    let mut v = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

/// The first bytes of a body pattern that is not all one byte.
pub(super) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Reads more bytes into `buf`; `false` at EOF or error.
pub(super) async fn fill_from(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}
