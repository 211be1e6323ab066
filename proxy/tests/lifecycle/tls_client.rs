//! A TLS test client on tokio-rustls: one session store shared by all its connections
//! (tickets, or TLS 1.2 session ids), each connection's handshake kind (full or resumed)
//! recorded, each request's outcome counted; and the certificate files of a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::support::*;

/// A self-signed server certificate for `localhost` and its key, written to `dir`.
pub(crate) struct Pki {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    der: CertificateDer<'static>,
}

impl Pki {
    pub(crate) fn new(dir: &Path) -> Pki {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        Pki {
            cert,
            key,
            der: made.cert.der().clone(),
        }
    }

    /// The `[tls]` table naming these files, followed by `extra` lines.
    pub(crate) fn table(&self, extra: &str) -> String {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{extra}",
            self.cert.display(),
            self.key.display()
        )
    }
}

/// Writes a config with the settings of `conf` and a `[tls]` table (plus `extra` lines).
pub(crate) fn tls_config(s: &Scratch, name: &str, conf: &Conf, pki: &Pki, extra: &str) -> PathBuf {
    let p = s.path(name);
    let text = format!("{}{}", conf.toml(&s.control()), pki.table(extra));
    std::fs::write(&p, text).unwrap();
    p
}

/// Which TLS versions and resumption the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// TLS 1.3 (or 1.2), resuming with tickets.
    Tickets,
    /// TLS 1.2 only, resuming with session ids only (no ticket offered).
    Tls12SessionIds,
    /// TLS 1.2 only, resuming with tickets (RFC 5077).
    Tls12Tickets,
}

/// What the client counted, over all its connections.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) full: AtomicU64,
    pub(crate) resumed: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl Counts {
    pub(crate) fn get(&self) -> (u64, u64, u64, u64) {
        (
            self.full.load(Ordering::Relaxed),
            self.resumed.load(Ordering::Relaxed),
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// One connection's result: its handshake, and the `X-Served-By` of each response.
#[derive(Debug)]
pub(crate) struct Visit {
    pub(crate) resumed: bool,
    pub(crate) served_by: Vec<String>,
}

/// The client.
#[derive(Clone)]
pub(crate) struct TlsClient {
    connector: TlsConnector,
    pub(crate) counts: Arc<Counts>,
}

impl TlsClient {
    pub(crate) fn new(pki: &Pki, flavor: Flavor) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.der.clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match flavor {
            Flavor::Tickets => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Flavor::Tls12SessionIds | Flavor::Tls12Tickets => &[&rustls::version::TLS12],
        };
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        if flavor == Flavor::Tls12SessionIds {
            cfg.resumption = Resumption::in_memory_sessions(256)
                .tls12_resumption(Tls12Resumption::SessionIdOnly);
        }
        TlsClient {
            connector: TlsConnector::from(Arc::new(cfg)),
            counts: Arc::new(Counts::default()),
        }
    }

    /// Connects, handshakes, and sends `requests` GETs on the connection (the last with
    /// `Connection: close`), reading each response whole; the connection must then end
    /// with `close_notify` (a clean EOF). Counts the handshake and each request.
    pub(crate) async fn visit(&self, addr: SocketAddr, requests: usize) -> Result<Visit> {
        let result = tokio::time::timeout(scaled(20), self.visit_inner(addr, requests))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
        let c = &self.counts;
        match &result {
            Ok(v) => {
                c.ok.fetch_add(v.served_by.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    async fn visit_inner(&self, addr: SocketAddr, requests: usize) -> Result<Visit> {
        let tcp = TcpStream::connect(addr).await.context("connect")?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = self
            .connector
            .connect(name, tcp)
            .await
            .context("handshake")?;
        let resumed = {
            let conn = tls.get_ref().1;
            ensure!(
                conn.alpn_protocol() == Some(b"http/1.1"),
                "ALPN: {:?}",
                conn.alpn_protocol()
            );
            conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
        };
        let counter = if resumed {
            &self.counts.resumed
        } else {
            &self.counts.full
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut served_by = Vec::with_capacity(requests);
        let mut buf = Vec::new();
        for i in 0..requests {
            let last = i + 1 == requests;
            let conn = if last { "close" } else { "keep-alive" };
            let req = format!("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: {conn}\r\n\r\n");
            tls.write_all(req.as_bytes()).await.context("write")?;
            let (by, close) = read_response(&mut tls, &mut buf).await?;
            served_by.push(by);
            // A draining server closes after this response, as it says.
            if close {
                break;
            }
        }
        // The server closes with close_notify: a clean EOF, not an error.
        let mut rest = [0u8; 64];
        let n = tls.read(&mut rest).await.context("reading the close")?;
        ensure!(n == 0 && buf.is_empty(), "bytes after the last response");
        Ok(Visit { resumed, served_by })
    }
}

impl TlsClient {
    /// A kept-alive connection that has had one response (200) and stays idle: it keeps
    /// a draining process alive until it is dropped.
    pub(crate) async fn held(&self, addr: SocketAddr) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await.context("connect")?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = self
            .connector
            .connect(name, tcp)
            .await
            .context("handshake")?;
        let req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        tls.write_all(req.as_bytes()).await.context("write")?;
        let mut buf = Vec::new();
        let (_, close) = read_response(&mut tls, &mut buf).await?;
        ensure!(!close && buf.is_empty(), "not kept alive");
        Ok(tls)
    }
}

/// Reads one response (status 200, `Content-Length` body); returns its `X-Served-By` and
/// whether it said `Connection: close`.
async fn read_response(
    tls: &mut TlsStream<TcpStream>,
    buf: &mut Vec<u8>,
) -> Result<(String, bool)> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tls.read(&mut chunk).await.context("read head")?;
        if n == 0 {
            bail!("EOF before a response head");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    ensure!(head.starts_with("HTTP/1.1 200 "), "status: {head}");
    let field = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let len: usize = field("content-length").parse().context("content-length")?;
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 16384];
        let n = tls.read(&mut chunk).await.context("read body")?;
        if n == 0 {
            bail!("EOF in the body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + len);
    let close = field("connection").eq_ignore_ascii_case("close");
    Ok((field("x-served-by"), close))
}

/// Waits until `stream` is closed by the peer (EOF or reset); how long that took.
pub(crate) async fn closed_within(stream: &mut TcpStream, within: Duration) -> Result<Duration> {
    let start = std::time::Instant::now();
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout_at((start + within).into(), stream.read(&mut buf)).await {
            Err(_) => bail!("still open after {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(start.elapsed()),
            // An alert, or anything else: keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}
