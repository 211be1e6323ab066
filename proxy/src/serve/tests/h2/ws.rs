//! WebSockets over HTTP/2 (RFC 8441) through the proxy: an h2 client written here opens
//! an extended CONNECT stream and speaks tungstenite's protocol over it, to the built-in
//! origin's `/ws` echo (HTTP/1.1) or to an origin written here that records the upgrade
//! request it got and refuses it. Counts are checked against the proxy's tunnel counts
//! and the client's own.

use std::time::Instant;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::*;
use crate::config::TunnelPolicy;
use reloadbench_h2io::H2Stream;

/// An h2 connection whose server SETTINGS were read (a first exchange finished).
async fn h2_ready(addr: SocketAddr) -> SendRequest<Bytes> {
    let send = h2c(addr).await;
    // Any stream's answer comes after the server's SETTINGS.
    let r = h2_get(&send, "/").await.unwrap();
    assert_eq!(r.status, 200);
    send
}

/// The extended CONNECT request for `path`, `:protocol` `protocol`.
fn connect_req(path: &str, protocol: &'static str) -> ::http::Request<()> {
    let mut req = ::http::Request::builder()
        .method(::http::Method::CONNECT)
        .uri(format!("http://example.com{path}"))
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat")
        .body(())
        .unwrap();
    req.extensions_mut()
        .insert(::h2::ext::Protocol::from_static(protocol));
    req
}

/// Opens a WebSocket over an extended CONNECT stream; `Err` is the answer's status and
/// body when it is not 200.
async fn open_ws(
    send: &SendRequest<Bytes>,
    path: &str,
) -> Result<WebSocketStream<H2Stream>, (u16, Vec<u8>)> {
    assert!(send.is_extended_connect_protocol_enabled());
    let mut send = timeout(limit(), send.clone().ready())
        .await
        .unwrap()
        .unwrap();
    let (resp, up) = send
        .send_request(connect_req(path, "websocket"), false)
        .unwrap();
    let resp = timeout(limit(), resp).await.unwrap().unwrap();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    if status != 200 {
        let mut got = Vec::new();
        while let Some(d) = timeout(limit(), body.data()).await.unwrap() {
            got.extend_from_slice(&d.unwrap());
        }
        return Err((status, got));
    }
    let io = H2Stream::new(body, up);
    Ok(WebSocketStream::from_raw_socket(io, Role::Client, None).await)
}

/// Sends `payload` and waits for its echo.
async fn round_trip(ws: &mut WebSocketStream<H2Stream>, payload: Vec<u8>) {
    ws.send(Message::Binary(payload.clone().into()))
        .await
        .unwrap();
    match timeout(limit(), ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => assert_eq!(b.as_ref(), payload.as_slice()),
        other => panic!("{other:?}"),
    }
}

/// The next message that is not an echo: a close frame's code, or `None` when the
/// stream ended (or broke) without one.
async fn close_code(ws: &mut WebSocketStream<H2Stream>) -> Option<u16> {
    loop {
        match timeout(limit(), ws.next()).await.unwrap() {
            Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test]
async fn an_extended_connect_websocket_is_echoed_by_the_http1_origin_and_counted_as_a_tunnel() {
    let origin = origin(10).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let send = h2_ready(addr).await;
    let mut ws = open_ws(&send, "/ws").await.unwrap();
    for i in 0..20u8 {
        round_trip(&mut ws, vec![i; 100]).await;
    }
    // Larger than the initial stream window (65,535): flow control both ways.
    round_trip(&mut ws, vec![b'z'; 200_000]).await;
    assert_eq!(server.tunnels().open, 1);
    // A close from the client passes through; the origin answers it.
    ws.close(None).await.unwrap();
    assert_eq!(close_code(&mut ws).await, None);
    // The origin closed its connection after the close handshake; the client's end of
    // the stream ends the tunnel.
    drop(ws);
    let deadline = Instant::now() + limit();
    while server.tunnels().open > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = server.tunnels();
    assert_eq!((t.opened, t.open, t.going_away, t.cut), (1, 0, 0, 0));
    // Another stream on the same connection still works.
    assert_eq!(h2_get(&send, "/").await.unwrap().status, 200);
    let c = server.counters();
    assert_eq!((c.forwarded, c.completed), (3, 3), "{c:?}");
}

#[tokio::test]
async fn with_drain_tunnels_close_the_client_gets_1001_at_the_drain_start() {
    let origin = origin(10).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |c| {
        c.drain.tunnels = TunnelPolicy::Close;
        c.drain.deadline = Duration::from_secs(120);
    });
    let server = Arc::new(server);
    let send = h2_ready(addr).await;
    let mut ws = open_ws(&send, "/ws").await.unwrap();
    round_trip(&mut ws, b"before".to_vec()).await;
    let drain = spawn_drain(&server);
    assert_eq!(close_code(&mut ws).await, Some(1001));
    // The client answers the close; the stream then ends, and so does the drain, long
    // before its deadline.
    let _ = ws.close(None).await;
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    assert_eq!(report.forced, 0, "{report:?}");
    let t = server.tunnels();
    assert_eq!((t.opened, t.open, t.going_away, t.cut), (1, 0, 1, 0));
}

#[tokio::test]
async fn with_drain_tunnels_keep_the_websocket_runs_until_the_drain_deadline() {
    let origin = origin(10).await;
    // Long enough for the round trips below on a busy machine.
    let deadline = scaled(Duration::from_secs(3));
    let (server, addr) = h2_proxy(vec![origin.addr()], |c| {
        c.drain.tunnels = TunnelPolicy::Keep;
        c.drain.deadline = deadline;
    });
    let server = Arc::new(server);
    let send = h2_ready(addr).await;
    let mut ws = open_ws(&send, "/ws").await.unwrap();
    round_trip(&mut ws, b"before".to_vec()).await;
    let started = Instant::now();
    let drain = spawn_drain(&server);
    // Draining, the tunnel carries on.
    for i in 0..3u8 {
        round_trip(&mut ws, vec![i; 10]).await;
    }
    // Until the deadline cuts it: no close frame.
    assert_eq!(close_code(&mut ws).await, None);
    assert!(started.elapsed() >= deadline, "{:?}", started.elapsed());
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    assert_eq!(report.forced, 1, "{report:?}");
    // Its one stream is a tunnel: counted as a tunnel cut, not as a response cut.
    assert_eq!(report.cut, 0, "{report:?}");
    let t = server.tunnels();
    assert_eq!((t.opened, t.open, t.going_away, t.cut), (1, 0, 0, 1));
}

/// An origin that answers every request `404` with body `no`, and sends the request
/// heads it read.
async fn refusing_origin() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                let _ = s
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno")
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn the_origin_gets_a_websocket_upgrade_and_its_non_101_answer_is_relayed() {
    let (origin, mut heads) = refusing_origin().await;
    let (server, addr) = h2_proxy(vec![origin], |_| {});
    let send = h2c(addr).await;
    // The answer to a first plain request brings the SETTINGS.
    let _ = h2_get(&send, "/").await.unwrap();
    let _ = heads.recv().await.unwrap();
    let Err((status, body)) = open_ws(&send, "/chat").await else {
        panic!("a 404 opens no WebSocket");
    };
    assert_eq!((status, body.as_slice()), (404, &b"no"[..]));
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(head.starts_with("get /chat http/1.1\r\n"), "{head}");
    for line in [
        "host: example.com\r\n",
        "upgrade: websocket\r\n",
        "connection: upgrade\r\n",
        "sec-websocket-version: 13\r\n",
        "sec-websocket-protocol: chat\r\n",
        "sec-websocket-key: ",
    ] {
        assert!(head.contains(line), "{line:?} in {head}");
    }
    assert_eq!(server.tunnels().opened, 0);
}

#[tokio::test]
async fn an_extended_connect_for_another_protocol_gets_501() {
    let origin = origin(10).await;
    let (_server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let send = h2_ready(addr).await;
    let mut send = send.ready().await.unwrap();
    let (resp, _up) = send
        .send_request(connect_req("/x", "webtransport"), false)
        .unwrap();
    let resp = timeout(limit(), resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 501);
    assert_eq!(
        origin.requests(),
        1,
        "only the first GET reached the origin"
    );
}

#[tokio::test]
async fn an_extended_connect_beyond_limits_tunnels_gets_503_and_the_open_one_goes_on() {
    let origin = origin(10).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |c| c.limits.tunnels = 1);
    let send = h2_ready(addr).await;
    let mut ws = open_ws(&send, "/ws").await.unwrap();
    round_trip(&mut ws, b"first".to_vec()).await;
    // One tunnel more than limits.tunnels: 503, never forwarded, counted.
    let (status, _) = open_ws(&send, "/ws").await.err().unwrap();
    assert_eq!(status, 503);
    let t = server.tunnels();
    assert_eq!((t.opened, t.open, t.refused), (1, 1, 1), "{t:?}");
    let c = server.counters();
    assert_eq!(c.errors.get("tunnels_full"), Some(&1), "{c:?}");
    // The open tunnel and the connection's other streams go on.
    round_trip(&mut ws, b"second".to_vec()).await;
    assert_eq!(h2_get(&send, "/").await.unwrap().status, 200);
}

/// Opens an extended CONNECT stream for `/ws` and hands it over as raw bytes (no
/// WebSocket protocol on top: the test reads the frames' bytes itself).
async fn open_raw(send: &SendRequest<Bytes>) -> H2Stream {
    let mut send = timeout(limit(), send.clone().ready())
        .await
        .unwrap()
        .unwrap();
    let (resp, up) = send
        .send_request(connect_req("/ws", "websocket"), false)
        .unwrap();
    let resp = timeout(limit(), resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    H2Stream::new(resp.into_body(), up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_h2_the_close_frame_waits_for_the_end_of_a_frame_that_came_with_the_101() {
    use super::super::tunnel_close::{Then, TunnelOrigin};
    use crate::tunnel::frames::CLOSE_GOING_AWAY;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // The origin's 101 comes with the header of a 1000-byte binary frame and 10 bytes
    // of its payload, in one write.
    let mut greeting = vec![0x82, 126, 0x03, 0xE8];
    greeting.extend_from_slice(&[b'g'; 10]);
    let o = TunnelOrigin::start(Then::Echo {
        greeting: greeting.clone(),
    })
    .await;
    let (server, addr) = h2_proxy(vec![o.addr], |c| {
        c.drain.linger = Duration::from_millis(300);
    });
    let send = h2_ready(addr).await;
    let mut io = open_raw(&send).await;
    let mut first = vec![0u8; greeting.len()];
    timeout(limit(), io.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, greeting);
    // Told to close while the origin's frame is 990 bytes short.
    server.close_tunnels();
    // The rest of the frame, sent up and echoed down by the origin, then the 1001.
    io.write_all(&[b'p'; 990]).await.unwrap();
    let mut rest = Vec::new();
    let _ = timeout(limit(), io.read_to_end(&mut rest)).await.unwrap();
    let mut expected = vec![b'p'; 990];
    expected.extend_from_slice(&CLOSE_GOING_AWAY);
    assert_eq!(rest, expected);
}

/// What a raw upgrade origin saw on its connections, in order.
#[derive(Debug, PartialEq, Eq)]
enum OriginSaw {
    /// An upgrade request's head arrived (it is never answered).
    Request,
    /// A connection that carried an upgrade request was closed by the proxy.
    Closed,
}

/// An origin that reads each connection's upgrade request and never answers it, and says
/// when an upgrade request arrived and when the proxy closed a connection; plain requests
/// get an empty `200`.
async fn silent_upgrade_origin() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<OriginSaw>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let mut told = false;
                while let Ok(n) = c.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if told || !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    if !got
                        .to_ascii_lowercase()
                        .windows(18)
                        .any(|w| w == b"upgrade: websocket")
                    {
                        // A plain request (the client's first, which reads the proxy's
                        // SETTINGS): answered, not reported.
                        got.clear();
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if c.write_all(ok).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    told = true;
                    let _ = tx.send(OriginSaw::Request);
                }
                if told {
                    let _ = tx.send(OriginSaw::Closed);
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn an_extended_connect_waits_for_its_connections_share_and_a_reset_one_frees_it_at_once() {
    let (origin, mut saw) = silent_upgrade_origin().await;
    let (server, addr) = h2_proxy(vec![origin], |c| {
        c.http2.max_origin_slots_per_connection = Some(1);
        // Far beyond the test's limit: only the client's reset can end the first exchange.
        c.timeouts.request = Duration::from_secs(600);
        c.timeouts.connect = Duration::from_secs(600);
    });
    let send = h2_ready(addr).await;
    let open = || {
        let send = send.clone();
        async move {
            let mut send = timeout(limit(), send.ready()).await.unwrap().unwrap();
            send.send_request(connect_req("/ws", "websocket"), false)
                .unwrap()
        }
    };
    let (_first_resp, mut first) = open().await;
    assert_eq!(
        timeout(limit(), saw.recv()).await.unwrap(),
        Some(OriginSaw::Request)
    );
    // A second CONNECT on the same connection waits for the connection's only place.
    let (_second_resp, _second) = open().await;
    // Resetting the first gives its origin connection back at once, and the second
    // goes on in its place.
    first.send_reset(::h2::Reason::CANCEL);
    assert_eq!(
        timeout(limit(), saw.recv()).await.unwrap(),
        Some(OriginSaw::Closed)
    );
    assert_eq!(
        timeout(limit(), saw.recv()).await.unwrap(),
        Some(OriginSaw::Request)
    );
    let c = server.counters();
    assert_eq!(c.aborted, 1, "{c:?}");
}
