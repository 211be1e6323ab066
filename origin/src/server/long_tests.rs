//! The long-lived endpoints ([`super::long`]) over real loopback sockets: a
//! WebSocket client that counts its echoes and the close code the origin's
//! shutdown sends, a raw HTTP client that reads a streamed chunked body, and
//! an upload timed against the configured rate.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use super::*;

fn limit() -> Duration {
    reloadbench_model::test_timing::scaled(Duration::from_secs(20))
}

/// Everything the server sends until it closes.
async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    timeout(limit(), stream.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    all
}

#[tokio::test]
async fn ws_echoes_every_message_and_says_going_away_on_shutdown() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let tcp = TcpStream::connect(origin.addr()).await.unwrap();
    let url = format!("ws://{}/ws", origin.addr());
    let (mut ws, resp) = timeout(limit(), tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 101);
    let mut echoed = 0;
    for i in 0..20u8 {
        let msg = if i % 2 == 0 {
            Message::Binary(vec![i; 100].into())
        } else {
            Message::Text(format!("text {i}").into())
        };
        ws.send(msg.clone()).await.unwrap();
        let back = timeout(limit(), ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(back, msg);
        echoed += 1;
    }
    assert_eq!(echoed, 20);
    let stopping = tokio::spawn(origin.shutdown());
    let close = timeout(limit(), ws.next()).await.unwrap().unwrap().unwrap();
    match close {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame 1001, got {other:?}"),
    }
    timeout(limit(), stopping).await.unwrap().unwrap();
}

#[tokio::test]
async fn ws_without_upgrade_is_a_400() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let mut tcp = TcpStream::connect(origin.addr()).await.unwrap();
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let all = String::from_utf8(read_all(&mut tcp).await).unwrap();
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
    origin.shutdown().await;
}

#[tokio::test]
async fn without_a_rate_an_upload_is_read_at_once() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let mut tcp = TcpStream::connect(origin.addr()).await.unwrap();
    let head =
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let all = read_all(&mut tcp).await;
    assert!(all.starts_with(b"HTTP/1.1 200"));
    assert_eq!(origin.ledger().body_bytes_received, 5);
    origin.shutdown().await;
}

#[tokio::test]
async fn stream_sends_a_chunk_every_interval_for_the_seconds_asked() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let mut tcp = TcpStream::connect(origin.addr()).await.unwrap();
    let t0 = Instant::now();
    tcp.write_all(
        b"GET /stream?seconds=0.2&interval=50 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let all = String::from_utf8(read_all(&mut tcp).await).unwrap();
    let elapsed = t0.elapsed();
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(
        all.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{all}"
    );
    assert!(all.ends_with("0\r\n\r\n"), "{all}");
    // Chunks at 0, 50, 100, 150 and 200 ms: five numbered lines.
    let lines: Vec<&str> = all
        .split("\r\n")
        .filter(|l| l.len() == 9 && l.ends_with('\n'))
        .collect();
    assert_eq!(
        lines,
        [
            "00000000\n",
            "00000001\n",
            "00000002\n",
            "00000003\n",
            "00000004\n"
        ]
    );
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    // The fixed-body answers' book does not count it.
    assert_eq!(origin.requests(), 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn stream_with_a_bad_query_is_a_400() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let mut tcp = TcpStream::connect(origin.addr()).await.unwrap();
    tcp.write_all(b"GET /stream?interval=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let all = String::from_utf8(read_all(&mut tcp).await).unwrap();
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
    origin.shutdown().await;
}

#[tokio::test]
async fn upload_is_read_no_faster_than_the_rate() {
    let long = LongOptions {
        upload_rate: Some(100_000),
    };
    let cfg = OriginConfig {
        body_bytes: 10,
        ..OriginConfig::default()
    };
    let origin = Origin::bind_with(cfg, long).await.unwrap();
    let mut tcp = TcpStream::connect(origin.addr()).await.unwrap();
    let body = vec![b'u'; 50_000];
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let t0 = Instant::now();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body).await.unwrap();
    let all = String::from_utf8(read_all(&mut tcp).await).unwrap();
    let elapsed = t0.elapsed();
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(all.ends_with("abcdefghi\n"), "the fixed body: {all}");
    // 50,000 bytes at 100,000 bytes/s: half a second at least.
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    let ledger = origin.ledger();
    assert_eq!(ledger.body_bytes_received, 50_000);
    assert_eq!((ledger.received, ledger.answered), (1, 1));
    origin.shutdown().await;
}

/// Polls `origin`'s ledger (bounded by [`limit`]) until `done` holds.
async fn ledger_until(
    origin: &Origin,
    done: impl Fn(&reloadbench_model::ledger::OriginLedger) -> bool,
) {
    let until = Instant::now() + limit();
    loop {
        let l = origin.ledger();
        if done(&l) {
            return;
        }
        assert!(Instant::now() < until, "{l:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn ws_client(origin: &Origin) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(origin.addr()).await.unwrap();
    let url = format!("ws://{}/ws", origin.addr());
    timeout(limit(), tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap()
        .unwrap()
        .0
}

async fn exchange(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>, n: u8) {
    for i in 0..n {
        let msg = Message::Binary(vec![i; 10].into());
        ws.send(msg.clone()).await.unwrap();
        let back = timeout(limit(), ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(back, msg);
    }
}

#[tokio::test]
async fn ws_ledger_counts_each_connection_end_once_and_every_echo() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    // One the client closes, one it cuts, one the origin's stop closes.
    let mut by_client = ws_client(&origin).await;
    let mut cut = ws_client(&origin).await;
    let mut stays = ws_client(&origin).await;
    exchange(&mut by_client, 3).await;
    exchange(&mut cut, 2).await;
    exchange(&mut stays, 1).await;
    let l = origin.ledger().ws.expect("the origin counts /ws");
    assert_eq!((l.opened, l.open), (3, 3), "{l:?}");
    by_client.close(None).await.unwrap();
    while let Some(Ok(_)) = timeout(limit(), by_client.next()).await.unwrap() {}
    drop(cut);
    ledger_until(&origin, |l| {
        l.ws.as_ref()
            .is_some_and(|w| w.closed_by_client == 1 && w.cut == 1)
    })
    .await;
    let stopping = tokio::spawn(origin.ledger_after_shutdown());
    match timeout(limit(), stays.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame 1001, got {other:?}"),
    }
    let ledger = timeout(limit(), stopping).await.unwrap().unwrap();
    let l = ledger.ws.expect("the origin counts /ws");
    assert_eq!(
        (
            l.opened,
            l.closed_by_client,
            l.closed_by_server,
            l.cut,
            l.open
        ),
        (3, 1, 1, 1, 0),
        "{l:?}"
    );
    assert_eq!(l.server_close_codes.len(), 1);
    assert_eq!(
        (l.server_close_codes[0].code, l.server_close_codes[0].count),
        (1001, 1)
    );
    assert_eq!((l.messages_received, l.messages_echoed), (6, 6));
    // Not requests of the fixed-body book.
    assert_eq!((ledger.received, ledger.answered), (0, 0));
}

/// Sends a `/stream` request on a new connection.
async fn stream_request(origin: &Origin, seconds: f64) -> TcpStream {
    let mut tcp = TcpStream::connect(origin.addr()).await.unwrap();
    let req = format!(
        "GET /stream?seconds={seconds}&interval=10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

#[tokio::test]
async fn stream_ledger_counts_complete_and_cut_responses() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    // Read whole.
    let mut whole = stream_request(&origin, 0.05).await;
    let all = read_all(&mut whole).await;
    assert!(all.ends_with(b"0\r\n\r\n"));
    // The client goes away after the first bytes.
    let mut gone = stream_request(&origin, 60.0).await;
    let mut first = [0u8; 16];
    timeout(limit(), gone.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    drop(gone);
    // Still streaming when the origin stops.
    let mut running = stream_request(&origin, 60.0).await;
    timeout(limit(), running.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    ledger_until(&origin, |l| {
        l.streams
            .is_some_and(|s| (s.started, s.complete, s.cut, s.open) == (3, 1, 1, 1))
    })
    .await;
    let ledger = timeout(limit(), origin.ledger_after_shutdown())
        .await
        .unwrap();
    let s = ledger.streams.expect("the origin counts /stream");
    assert_eq!(
        (s.started, s.complete, s.cut, s.open),
        (3, 1, 2, 0),
        "{s:?}"
    );
}
