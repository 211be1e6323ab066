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
