//! `--ws --h2` (RFC 8441) against HTTP/2 servers written here (the `h2` crate's
//! server, tungstenite's protocol over each extended CONNECT stream) that script what
//! they do and record it: close some WebSockets with 1001, cut some (their connection
//! dropped), drop some echoes; one that answers 503; one that does not advertise
//! SETTINGS_ENABLE_CONNECT_PROTOCOL. loadgen's counts must equal the servers' records.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use reloadbench_loadgen::{LoadConfig, WsOptions};
use reloadbench_model::outcome::FailureClass;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::support::{run_load, scaled, wait};

/// What the server did, each counted once.
#[derive(Debug, Default)]
struct Record {
    /// HTTP/2 connections accepted.
    connections: AtomicU64,
    /// Extended CONNECT streams answered 200 (WebSockets opened).
    accepted: AtomicU64,
    /// Streams answered 503.
    refused: AtomicU64,
    received: AtomicU64,
    echoed: AtomicU64,
    closed_1001: AtomicU64,
    /// WebSockets whose connection the server dropped.
    cut: AtomicU64,
    /// Messages read and never echoed on a WebSocket the server then ended.
    unanswered: AtomicU64,
    /// Echoes left out on purpose.
    dropped: AtomicU64,
    /// WebSockets the client closed.
    client_closed: AtomicU64,
    /// Connections told GOAWAY at once (no stream taken on them).
    gone_away: AtomicU64,
}

/// By accept order: the first `close` WebSockets are closed with 1001 and the next
/// `cut` ones cut (their connection dropped), each on its second message (not echoed);
/// the first message of the next `drop` ones is not echoed. `refuse`: every extended
/// CONNECT is answered 503. `advertise`: SETTINGS_ENABLE_CONNECT_PROTOCOL is sent.
#[derive(Debug, Clone, Copy, Default)]
struct Script {
    close: u64,
    cut: u64,
    drop: u64,
    refuse: bool,
    advertise: bool,
    /// The first `goaway` connections get a GOAWAY right after the handshake (a server
    /// that starts draining as a client connects).
    goaway: u64,
}

/// A stream of the server as a byte stream (the test's own, as loadgen's is under test).
struct StreamIo {
    recv: h2::RecvStream,
    send: h2::SendStream<Bytes>,
    pending: Bytes,
}

impl AsyncRead for StreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(d)) => {
                    let _ = this.recv.flow_control().release_capacity(d.len());
                    this.pending = d;
                }
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for StreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.send.reserve_capacity(buf.len());
        loop {
            match ready!(this.send.poll_capacity(cx)) {
                Some(Ok(n)) if n > 0 => {
                    let n = n.min(buf.len());
                    this.send
                        .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                        .map_err(io::Error::other)?;
                    return Poll::Ready(Ok(n));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.get_mut().send.send_data(Bytes::new(), true);
        Poll::Ready(Ok(()))
    }
}

async fn h2_ws_server(script: Script) -> (String, Arc<Record>) {
    h2_ws_server_over(script, None).await
}

/// The scripted server; over TLS (ALPN `h2`) with `tls`.
async fn h2_ws_server_over(
    script: Script,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (String, Arc<Record>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}/ws", listener.local_addr().unwrap());
    let rec = Arc::new(Record::default());
    let rec2 = rec.clone();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        let order = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(AtomicU64::new(0));
        while let Ok((tcp, _)) = listener.accept().await {
            let (rec, order, conns) = (rec2.clone(), order.clone(), conns.clone());
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => serve_conn(tcp, script, rec, order, conns).await,
                    Some(a) => {
                        let Ok(tls) = a.accept(tcp).await else {
                            return;
                        };
                        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                        serve_conn(tls, script, rec, order, conns).await;
                    }
                }
            });
        }
    });
    (url, rec)
}

async fn serve_conn<T>(
    io: T,
    script: Script,
    rec: Arc<Record>,
    order: Arc<AtomicU64>,
    conns: Arc<AtomicU64>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut b = h2::server::Builder::new();
    if script.advertise {
        b.enable_connect_protocol();
    }
    let Ok(mut conn) = b.handshake::<_, Bytes>(io).await else {
        return;
    };
    rec.connections.fetch_add(1, Ordering::SeqCst);
    if conns.fetch_add(1, Ordering::SeqCst) < script.goaway {
        rec.gone_away.fetch_add(1, Ordering::SeqCst);
        conn.graceful_shutdown();
    }
    // A stream handler asks for its connection to be dropped (a cut).
    let (cut_tx, mut cut_rx) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((req, respond))) => {
                    let (rec, order, cut) = (rec.clone(), order.clone(), cut_tx.clone());
                    tokio::spawn(serve_stream(req, respond, script, rec, order, cut));
                }
                _ => return,
            },
            _ = cut_rx.recv() => return,
        }
    }
}

async fn serve_stream(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    script: Script,
    rec: Arc<Record>,
    order: Arc<AtomicU64>,
    cut: mpsc::Sender<()>,
) {
    let proto = req.extensions().get::<h2::ext::Protocol>().cloned();
    assert_eq!(req.method(), http::Method::CONNECT);
    assert_eq!(proto.as_ref().map(|p| p.as_str()), Some("websocket"));
    assert_eq!(req.uri().path(), "/ws");
    assert_eq!(req.headers()["sec-websocket-version"], "13");
    if script.refuse {
        let resp = http::Response::builder().status(503).body(()).unwrap();
        let mut s = respond.send_response(resp, false).unwrap();
        let _ = s.send_data(Bytes::from_static(b"no"), true);
        rec.refused.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let send = respond
        .send_response(http::Response::new(()), false)
        .unwrap();
    let io = StreamIo {
        recv: req.into_body(),
        send,
        pending: Bytes::new(),
    };
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let n = order.fetch_add(1, Ordering::SeqCst);
    rec.accepted.fetch_add(1, Ordering::SeqCst);
    let ends = n < script.close + script.cut;
    let drop_first = !ends && n < script.close + script.cut + script.drop;
    let mut seen = 0u64;
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Binary(_) | Message::Text(_) => {}
            Message::Close(_) => {
                rec.client_closed.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            _ => continue,
        }
        seen += 1;
        rec.received.fetch_add(1, Ordering::SeqCst);
        if ends && seen == 2 {
            rec.unanswered.fetch_add(1, Ordering::SeqCst);
            if n < script.close {
                let bye = CloseFrame {
                    code: CloseCode::Away,
                    reason: "reload".into(),
                };
                rec.closed_1001.fetch_add(1, Ordering::SeqCst);
                let _ = ws.close(Some(bye)).await;
                while let Some(Ok(_)) = ws.next().await {}
            } else {
                rec.cut.fetch_add(1, Ordering::SeqCst);
                let _ = cut.send(()).await;
            }
            return;
        }
        if drop_first && seen == 1 {
            rec.dropped.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        if ws.send(msg).await.is_err() {
            return;
        }
        rec.echoed.fetch_add(1, Ordering::SeqCst);
    }
}

fn ws_h2_config(url: &str, clients: u64, seconds: f64) -> LoadConfig {
    let mut cfg = LoadConfig::new(url).unwrap();
    cfg.concurrency = clients;
    cfg.requests = None;
    cfg.duration = Some(scaled(Duration::from_secs_f64(seconds)));
    cfg.keep_alive = true;
    cfg.h2 = true;
    cfg.timeout = scaled(Duration::from_secs(20));
    cfg.ws = Some(WsOptions {
        message_interval: Duration::from_millis(200),
        message_bytes: 32,
        message_timeout: scaled(Duration::from_secs(2)),
        reconnect_delay: Duration::ZERO,
    });
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_over_h2_counts_equal_what_the_server_did() {
    let script = Script {
        close: 2,
        cut: 2,
        drop: 3,
        refuse: false,
        advertise: true,
        goaway: 0,
    };
    let (url, rec) = h2_ws_server(script).await;
    let r = run_load(ws_h2_config(&url, 4, 2.0)).await;
    let ws = r.ws.clone().expect("a --ws run has a ws report");
    let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
    // One HTTP/2 connection per WebSocket.
    assert_eq!(get(&rec.connections), get(&rec.accepted));
    assert_eq!(ws.opened, get(&rec.accepted), "{ws:?}");
    assert_eq!(ws.opened, 4 + script.close + script.cut);
    assert_eq!(ws.failed, 0);
    assert_eq!(ws.closed_cleanly, get(&rec.closed_1001));
    assert_eq!(ws.closed_with(1001), script.close);
    assert_eq!(ws.cut, get(&rec.cut));
    assert_eq!(ws.cut, script.cut);
    assert_eq!(ws.open_at_end, 4);
    assert_eq!(ws.open_at_end, get(&rec.client_closed));
    assert_eq!(ws.sent, get(&rec.received));
    assert_eq!(ws.echoed, get(&rec.echoed));
    assert_eq!(ws.lost, get(&rec.unanswered));
    assert_eq!(ws.late, get(&rec.dropped));
    assert_eq!(ws.late, script.drop);
    assert_eq!(ws.sent, ws.echoed + ws.lost + ws.late);
    assert_eq!(ws.reconnect_time.count, script.close + script.cut);
    // A WebSocket run has no HTTP/2 request report.
    assert!(r.h2.is_none());
    assert_eq!((r.planned, r.ok, r.failed), (0, 0, 0));
}

#[tokio::test]
async fn ws_over_h2_answered_with_503_fails_as_http_5xx() {
    let script = Script {
        refuse: true,
        advertise: true,
        ..Script::default()
    };
    let (url, rec) = h2_ws_server(script).await;
    let r = run_load(ws_h2_config(&url, 2, 0.5)).await;
    let ws = r.ws.clone().unwrap();
    assert_eq!(ws.opened, 0);
    assert!(ws.failed > 0);
    assert_eq!(ws.failed, rec.refused.load(Ordering::SeqCst), "{ws:?}");
    let by_class: Vec<_> = ws.failed_classes.iter().map(|c| c.class).collect();
    assert_eq!(by_class, vec![FailureClass::Http5xx], "{ws:?}");
}

#[tokio::test]
async fn ws_over_h2_to_a_server_without_extended_connect_fails_naming_the_setting() {
    let (url, rec) = h2_ws_server(Script::default()).await;
    let run = reloadbench_loadgen::start(ws_h2_config(&url, 2, 30.0)).unwrap();
    let err = tokio::time::timeout(wait(), run.finish())
        .await
        .expect("the run stops at once, well before -t")
        .unwrap_err()
        .to_string();
    assert!(err.contains("SETTINGS_ENABLE_CONNECT_PROTOCOL"), "{err}");
    // The server saw connections, never a CONNECT.
    assert!(rec.connections.load(Ordering::SeqCst) > 0);
    assert_eq!(rec.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn ws_over_h2_a_goaway_before_the_connect_is_no_attempt_the_client_opens_another_connection()
{
    let script = Script {
        advertise: true,
        goaway: 3,
        ..Script::default()
    };
    let (url, rec) = h2_ws_server(script).await;
    let r = run_load(ws_h2_config(&url, 3, 1.0)).await;
    let ws = r.ws.clone().unwrap();
    let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
    assert_eq!(get(&rec.gone_away), 3);
    // A client whose CONNECT crossed the GOAWAY got its WebSocket on that connection (the
    // GOAWAY's last-stream-id, 2^31-1, covers it): either way, nothing failed.
    assert_eq!(ws.failed, 0, "{ws:?}");
    assert_eq!(ws.opened, 3, "{ws:?}");
    assert_eq!(ws.opened, get(&rec.accepted));
    assert_eq!(ws.cut, 0, "{ws:?}");
    assert_eq!(ws.open_at_end, 3, "{ws:?}");
    // At least one connection more than the ones told GOAWAY.
    assert!(get(&rec.connections) > 3, "{rec:?}");
}

/// A raw HTTP/2 server that advertises extended CONNECT, answers SETTINGS and PINGs, and
/// refuses every stream with `GOAWAY` (last-stream-id 0, NO_ERROR: never processed),
/// then closes. Counts the streams it refused.
async fn refusing_h2_server() -> (String, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ws", listener.local_addr().unwrap());
    let refused = Arc::new(AtomicU64::new(0));
    let counted = refused.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let refused = counted.clone();
            tokio::spawn(async move {
                let frame = |kind: u8, flags: u8, payload: &[u8]| {
                    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
                    f.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
                    f.extend_from_slice(payload);
                    f
                };
                let mut preface = [0u8; 24];
                if tcp.read_exact(&mut preface).await.is_err() {
                    return;
                }
                // SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8) = 1.
                let _ = tcp.write_all(&frame(0x4, 0, &[0, 8, 0, 0, 0, 1])).await;
                loop {
                    let mut head = [0u8; 9];
                    if tcp.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                    let mut payload = vec![0u8; len];
                    if tcp.read_exact(&mut payload).await.is_err() {
                        return;
                    }
                    let (kind, flags) = (head[3], head[4]);
                    let out = match kind {
                        0x4 if flags & 1 == 0 => frame(0x4, 1, &[]),
                        0x6 if flags & 1 == 0 => frame(0x6, 1, &payload),
                        0x1 => {
                            refused.fetch_add(1, Ordering::SeqCst);
                            let goaway = frame(0x7, 0, &[0; 8]);
                            let _ = tcp.write_all(&goaway).await;
                            return;
                        }
                        _ => continue,
                    };
                    if tcp.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, refused)
}

#[tokio::test]
async fn ws_over_h2_a_connect_refused_by_goaway_fails_as_goaway_refused_or_is_retried_once() {
    let (url, refused) = refusing_h2_server().await;
    let r = run_load(ws_h2_config(&url, 2, 0.5)).await;
    let ws = r.ws.clone().unwrap();
    let by_class: Vec<_> = ws.failed_classes.iter().map(|c| c.class).collect();
    assert_eq!(by_class, vec![FailureClass::GoawayRefused], "{ws:?}");
    assert_eq!(ws.failed, refused.load(Ordering::SeqCst), "{ws:?}");
    assert_eq!((ws.opened, r.retries), (0, 0));

    // With --retry-refused each refused CONNECT is sent once more on a new connection.
    let (url, refused) = refusing_h2_server().await;
    let mut cfg = ws_h2_config(&url, 2, 0.5);
    cfg.retry_refused = true;
    let r = run_load(cfg).await;
    let ws = r.ws.clone().unwrap();
    assert!(ws.failed > 0);
    assert_eq!(ws.failed, r.retries, "{ws:?}");
    assert_eq!(ws.failed * 2, refused.load(Ordering::SeqCst), "{ws:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_over_h2_runs_on_alpn_h2_and_counts_as_over_cleartext() {
    let pki = crate::tls_support::Pki::new();
    let script = Script {
        close: 1,
        advertise: true,
        ..Script::default()
    };
    let (url, rec) = h2_ws_server_over(script, Some(pki.server_config(&[b"h2"]))).await;
    let mut cfg = ws_h2_config(&url, 2, 1.0);
    cfg.tls.ca_file = Some(pki.ca_file.clone());
    let r = run_load(cfg).await;
    let ws = r.ws.clone().unwrap();
    let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
    assert_eq!(ws.failed, 0, "{ws:?}");
    assert_eq!(ws.opened, get(&rec.accepted));
    assert_eq!(ws.opened, 3);
    assert_eq!(ws.closed_with(1001), 1);
    assert_eq!(ws.open_at_end, 2);
    assert_eq!(ws.echoed, get(&rec.echoed));
}
