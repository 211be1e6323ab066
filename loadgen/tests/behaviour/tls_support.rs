//! TLS servers for the tests, on tokio-rustls with rcgen certificates, that
//! count with atomics what they did: handshakes completed full or resumed
//! (rustls's own `handshake_kind()` on the server side), handshakes that
//! failed, resets sent mid-handshake and requests answered.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::{HandshakeKind, ServerConfig, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A CA written to a PEM file, and a server certificate it signed for
/// `localhost` and `127.0.0.1`.
pub(crate) struct Pki {
    _dir: tempfile::TempDir,
    /// The CA certificate's PEM file (`--cacert`).
    pub(crate) ca_file: PathBuf,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivatePkcs8KeyDer<'static>,
}

impl Pki {
    /// A new CA and server certificate.
    pub(crate) fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki {
            _dir: dir,
            ca_file,
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

impl Pki {
    /// A server configuration with this certificate offering `alpn`.
    pub(crate) fn server_config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// What the server offers for resumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Stateless tickets (TLS 1.3 and 1.2) and a session cache.
    Tickets,
    /// A session cache only: TLS 1.2 session ids (TLS 1.3 stateful tickets).
    SessionIds,
    /// Neither: every handshake is full.
    Refuse,
}

/// What the server does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Handshake, then answer requests with `200 ok` (keep-alive unless asked to close).
    Serve,
    /// Reads the ClientHello, then resets the connection (SO_LINGER 0).
    ResetInHandshake,
    /// The first connection: one keep-alive response, then the server
    /// closes it; every later one as [`Mode::ResetInHandshake`].
    OneResponseThenReset,
    /// Reads the ClientHello, then sends a fatal `handshake_failure` alert
    /// and closes.
    AlertInHandshake,
    /// Reads the ClientHello, then closes the connection (FIN: an EOF).
    CloseInHandshake,
    /// Reads the ClientHello, then says nothing until the client gives up.
    StallInHandshake,
}

/// What the server did.
#[derive(Debug, Default)]
pub(crate) struct TlsCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) full: AtomicU64,
    pub(crate) resumed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) alerts: AtomicU64,
    pub(crate) closes: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) ok: AtomicU64,
    /// Source addresses of the accepted connections.
    pub(crate) peers: Mutex<HashSet<IpAddr>>,
}

/// Reads a counter.
pub(crate) fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::SeqCst)
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::SeqCst);
}

/// A TLS server on 127.0.0.1:0.
pub(crate) struct TlsServer {
    pub(crate) addr: SocketAddr,
    pub(crate) counters: Arc<TlsCounters>,
    task: JoinHandle<()>,
}

impl TlsServer {
    /// Starts a server with `pki`'s certificate, `versions` and `resume`.
    pub(crate) async fn start(
        pki: &Pki,
        versions: &[&'static SupportedProtocolVersion],
        resume: Resume,
        mode: Mode,
    ) -> TlsServer {
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), PrivateKeyDer::Pkcs8(pki.key.clone_key()))
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        match resume {
            Resume::Tickets => {
                config.ticketer = rustls::crypto::ring::Ticketer::new().unwrap();
            }
            Resume::SessionIds => {
                config.session_storage = ServerSessionMemoryCache::new(4096);
            }
            Resume::Refuse => {
                config.session_storage = Arc::new(NoServerSessionStorage {});
                config.send_tls13_tickets = 0;
            }
        }
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(TlsCounters::default());
        let c = counters.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                c.peers.lock().unwrap().insert(peer.ip());
                let first = c.accepted.fetch_add(1, Ordering::SeqCst) == 0;
                let (c, acceptor) = (c.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let reset = match mode {
                        Mode::Serve => false,
                        Mode::ResetInHandshake => true,
                        Mode::OneResponseThenReset => !first,
                        Mode::AlertInHandshake
                        | Mode::CloseInHandshake
                        | Mode::StallInHandshake => {
                            let mut stream = stream;
                            let mut hello = [0u8; 512];
                            let _ = stream.read(&mut hello).await;
                            match mode {
                                Mode::AlertInHandshake => {
                                    // A fatal (2) handshake_failure (40) alert record.
                                    let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40];
                                    let _ = stream.write_all(&alert).await;
                                    inc(&c.alerts);
                                    let _ = stream.shutdown().await;
                                    // Waits for the client's close, so that no reset follows.
                                    let _ = stream.read(&mut hello).await;
                                }
                                Mode::CloseInHandshake => {
                                    inc(&c.closes);
                                    let _ = stream.shutdown().await;
                                    let _ = stream.read(&mut hello).await;
                                }
                                _ => {
                                    inc(&c.stalls);
                                    // Until the client closes.
                                    while matches!(stream.read(&mut hello).await, Ok(n) if n > 0) {}
                                }
                            }
                            return;
                        }
                    };
                    if reset {
                        let mut stream = stream;
                        let mut hello = [0u8; 512];
                        // The ClientHello (one read is enough to know it came).
                        let _ = stream.read(&mut hello).await;
                        stream.set_zero_linger().unwrap();
                        inc(&c.resets);
                        return;
                    }
                    let mut tls = match acceptor.accept(stream).await {
                        Ok(s) => s,
                        Err(_) => {
                            inc(&c.failed);
                            return;
                        }
                    };
                    match tls.get_ref().1.handshake_kind() {
                        Some(HandshakeKind::Resumed) => inc(&c.resumed),
                        _ => inc(&c.full),
                    }
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match tls.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        buf.drain(..end + 4);
                        let close = head.contains("connection: close");
                        let response: &[u8] = if close {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        } else {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        };
                        if tls.write_all(response).await.is_err() {
                            return;
                        }
                        inc(&c.ok);
                        if close || mode == Mode::OneResponseThenReset {
                            let _ = tls.shutdown().await;
                            return;
                        }
                    }
                });
            }
        });
        TlsServer {
            addr,
            counters,
            task,
        }
    }

    /// `https://127.0.0.1:port/`.
    pub(crate) fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
