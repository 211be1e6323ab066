//! TLS on the request path: uploads relayed both ways over TLS, the drain's
//! `Connection: close` and idle close ending with `close_notify`, a listener without TLS
//! beside one with it.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::config::TlsConfig;
use crate::tls::certs::CertAndKey;

/// A `[tls]` config with a fresh self-signed certificate for `localhost`, and that
/// certificate (for the client's roots).
pub(super) fn tls_config() -> (TlsConfig, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let cfg = TlsConfig {
        cert_path: "server.pem".into(),
        key_path: "server.key".into(),
        cert: CertAndKey {
            chain: vec![cert.clone()],
            key,
        },
        listeners: None,
        handshake_timeout: Duration::from_secs(10),
        ticket_key_rotation: TlsConfig::DEFAULT_TICKET_KEY_ROTATION,
        share_ticket_keys: true,
        ticket_keys_file: None,
        sni: Vec::new(),
    };
    (cfg, cert)
}

async fn connect(addr: SocketAddr, cert: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    try_connect(addr, cert, "localhost").await.unwrap()
}

/// A handshake to `addr` for the SNI `name`, trusting only `cert`.
async fn try_connect(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    timeout(
        limit(),
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .unwrap()
}

/// Reads one `Content-Length` response: (head, body).
async fn response(tls: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    let end = loop {
        if let Some(end) = head_end(buf) {
            break end;
        }
        let mut chunk = [0u8; 16384];
        let n = timeout(limit(), tls.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "EOF before a response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let len: usize = header_lines(&head)
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    while buf.len() < end + len {
        let mut chunk = [0u8; 16384];
        let n = timeout(limit(), tls.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "EOF in a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[end..end + len].to_vec();
    buf.drain(..end + len);
    (head, body)
}

/// The server's close: a clean EOF (`close_notify`), not a truncation or a reset.
async fn expect_close_notify(tls: &mut TlsStream<TcpStream>) {
    let mut chunk = [0u8; 64];
    let n = timeout(limit(), tls.read(&mut chunk))
        .await
        .expect("not closed in time")
        .expect("closed without close_notify");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn uploads_are_relayed_both_ways_over_tls_on_a_kept_alive_connection() {
    let origin = echo_origin("o").await;
    let (tls, cert) = tls_config();
    let (_server, addr) = proxy(vec![origin], |c| c.tls = Some(tls));
    let mut client = connect(addr, &cert).await;
    let mut buf = Vec::new();
    for size in [10usize, 300_000] {
        let body = pattern(size);
        let head = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n");
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(&body).await.unwrap();
        let (head, echoed) = response(&mut client, &mut buf).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let text = String::from_utf8(echoed).unwrap();
        assert!(text.contains(&format!("body-bytes: {size}\n")), "{text}");
    }
    // A chunked upload too, then a last request that closes.
    client
        .write_all(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await
        .unwrap();
    let (_, echoed) = response(&mut client, &mut buf).await;
    assert!(
        String::from_utf8(echoed)
            .unwrap()
            .contains("body-bytes: 5\n")
    );
    client
        .write_all(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut client, &mut buf).await;
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    expect_close_notify(&mut client).await;
}

#[tokio::test]
async fn a_drain_closes_tls_connections_with_close_notify_busy_and_idle() {
    let o = origin(100).await;
    let (tls, cert) = tls_config();
    let (server, addr) = proxy(vec![o.addr()], |c| {
        c.tls = Some(tls);
        c.drain.idle_close = Duration::from_millis(200);
    });
    let mut busy = connect(addr, &cert).await;
    let mut idle = connect(addr, &cert).await;
    let (mut b1, mut b2) = (Vec::new(), Vec::new());
    for (c, buf) in [(&mut busy, &mut b1), (&mut idle, &mut b2)] {
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = response(c, buf).await;
        assert!(!head.to_ascii_lowercase().contains("connection: close"));
    }
    server.start_drain();
    // The busy client's next request is answered with `Connection: close`, then close_notify.
    busy.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut busy, &mut b1).await;
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    expect_close_notify(&mut busy).await;
    // The idle one is closed at drain.idle_close, with close_notify too.
    expect_close_notify(&mut idle).await;
    let report = timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(report.forced, 0);
    assert_eq!(report.idle_closed, 1);
    assert_eq!(o.requests(), 3);
}

#[tokio::test]
async fn only_the_listeners_named_in_tls_listen_speak_tls() {
    let o = origin(100).await;
    let (mut tls, cert) = tls_config();
    tls.listeners = Some(vec![1]);
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let secure = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (plain_addr, secure_addr) = (plain.local_addr().unwrap(), secure.local_addr().unwrap());
    let mut cfg = Config::new(vec![plain_addr, secure_addr], vec![o.addr()]);
    cfg.tls = Some(tls);
    let _server = Server::start(vec![plain, secure], Arc::new(cfg), ID).unwrap();
    let mut c = Client::connect(plain_addr).await;
    assert_eq!(c.get("/").await.status, 200);
    let mut s = connect(secure_addr, &cert).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut Vec::new()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    expect_close_notify(&mut s).await;
}

#[tokio::test]
async fn the_certificate_is_chosen_by_sni_with_the_default_for_other_names() {
    let o = origin(100).await;
    let (mut tls, default_cert) = tls_config();
    let made =
        rcgen::generate_simple_self_signed(vec!["api.test".to_owned(), "x.wild.test".to_owned()])
            .unwrap();
    let api_cert = made.cert.der().clone();
    tls.sni.push(crate::config::SniCert {
        names: vec!["api.test".to_owned(), "*.wild.test".to_owned()],
        cert: CertAndKey {
            chain: vec![api_cert.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der())),
        },
    });
    let (_server, addr) = proxy(vec![o.addr()], |c| c.tls = Some(tls));
    // Each name gets its certificate: a client that trusts only that one completes.
    try_connect(addr, &api_cert, "api.test").await.unwrap();
    try_connect(addr, &api_cert, "x.wild.test").await.unwrap();
    try_connect(addr, &default_cert, "localhost").await.unwrap();
    // And not the other one.
    assert!(try_connect(addr, &default_cert, "api.test").await.is_err());
    assert!(try_connect(addr, &api_cert, "localhost").await.is_err());
}

#[tokio::test]
async fn a_handshake_never_begun_does_not_hold_a_drain_until_its_deadline() {
    let o = origin(100).await;
    let (mut tls, _cert) = tls_config();
    // Longer than the drain deadline: only the drain's idle rule can close it in time.
    tls.handshake_timeout = Duration::from_secs(600);
    let (server, addr) = proxy(vec![o.addr()], |c| {
        c.tls = Some(tls);
        c.drain.idle_close = Duration::from_millis(200);
        c.drain.deadline = Duration::from_secs(300);
    });
    // Connected, accepted, and silent: no ClientHello.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    server.start_drain();
    let report = timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(
        report.forced, 0,
        "closed by the drain's idle rule, not its deadline"
    );
    for s in [&mut silent, &mut half] {
        let mut byte = [0u8; 1];
        let n = timeout(limit(), s.read(&mut byte))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "closed");
    }
}
