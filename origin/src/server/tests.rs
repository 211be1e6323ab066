//! In-process tests of the origin: raw TCP clients on loopback.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::*;

/// Bound on every wait, times the slow-machine multiplier (`RELOADBENCH_TEST_SLOW`).
fn limit() -> Duration {
    reloadbench_model::test_timing::scaled(Duration::from_secs(20))
}

/// Reads one response: returns (head, body). Requires Content-Length.
async fn read_response(stream: &mut TcpStream, head_only: bool) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "EOF before the end of the head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = buf[head_end..].to_vec();
    if !head_only {
        while body.len() < len {
            let mut chunk = vec![0u8; 65536];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "EOF in the body");
            body.extend_from_slice(&chunk[..n]);
        }
    }
    (head, body)
}

#[tokio::test]
async fn get_returns_the_exact_body_and_keeps_alive() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    for path in ["/", "/any/path?x=1", "/again"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let (head, body) = timeout(limit(), read_response(&mut stream, false))
            .await
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body.len(), DEFAULT_BODY_BYTES);
    }
    assert_eq!(origin.requests(), 3);
    origin.shutdown().await;
}

#[tokio::test]
async fn head_gets_content_length_without_body() {
    let cfg = OriginConfig {
        body_bytes: 10,
        ..OriginConfig::default()
    };
    let origin = Origin::bind(cfg).await.unwrap();
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = timeout(limit(), read_response(&mut stream, true))
        .await
        .unwrap();
    assert!(head.contains("content-length: 10"), "{head}");
    // The pipelined GET's response follows directly: HEAD carried no body.
    assert!(body.is_empty() || body.starts_with(b"HTTP/1.1 200"));
    let mut stream_rest = body;
    while !stream_rest.ends_with(b"abcdefghi\n") {
        let mut chunk = [0u8; 1024];
        let n = timeout(limit(), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        stream_rest.extend_from_slice(&chunk[..n]);
    }
    origin.shutdown().await;
}

#[tokio::test]
async fn post_and_put_are_read_whole_then_answered_and_counted_per_method() {
    let cfg = OriginConfig {
        body_bytes: 10,
        ..OriginConfig::default()
    };
    let origin = Origin::bind(cfg).await.unwrap();
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    let post_body = vec![b'p'; 4096];
    // The body arrives in two writes: the answer must wait for all of it.
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        post_body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&post_body[..1000]).await.unwrap();
    let mut early = [0u8; 1];
    let nothing_yet = timeout(Duration::from_millis(50), stream.read(&mut early)).await;
    assert!(nothing_yet.is_err(), "answered before the whole body");
    stream.write_all(&post_body[1000..]).await.unwrap();
    let (head, body) = timeout(limit(), read_response(&mut stream, false))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"abcdefghi\n");
    // Same connection: a PUT, then a GET; each body was consumed whole.
    for req in [
        &b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        stream.write_all(req).await.unwrap();
        let (head, body) = timeout(limit(), read_response(&mut stream, false))
            .await
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body.len(), 10);
    }
    let ledger = origin.ledger();
    let methods: Vec<(&str, u64)> = ledger
        .answered_by_method
        .iter()
        .map(|(m, n)| (m.as_str(), *n))
        .collect();
    assert_eq!(methods, vec![("GET", 1), ("POST", 1), ("PUT", 1)]);
    assert_eq!(ledger.body_bytes_received, 4096 + 3);
    assert_eq!((ledger.received, ledger.answered), (3, 3));
    origin.shutdown().await;
}

#[tokio::test]
async fn delay_is_applied() {
    let cfg = OriginConfig {
        delay: Some(Duration::from_millis(100)),
        ..OriginConfig::default()
    };
    let origin = Origin::bind(cfg).await.unwrap();
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    let start = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = timeout(limit(), read_response(&mut stream, false))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(body.len(), DEFAULT_BODY_BYTES);
    origin.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let addr = origin.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    timeout(limit(), read_response(&mut stream, false))
        .await
        .unwrap();
    timeout(limit(), origin.shutdown()).await.unwrap();
    let mut rest = Vec::new();
    let n = timeout(limit(), stream.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "connection still open: {n:?}");
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[test]
fn body_has_the_requested_size() {
    assert_eq!(body_of(0).len(), 0);
    assert_eq!(body_of(1), b"\n");
    assert_eq!(body_of(32_987).len(), 32_987);
}

/// The backlog of the listener on `port`, as the kernel reports it: for a
/// listening socket, `ss` shows the backlog as Send-Q (from sock_diag).
fn kernel_backlog(port: u16) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no listener in `ss` output: {text:?}"))
}

fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn listening_socket_has_a_backlog_of_4096_as_the_kernel_reports_it() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    assert_eq!(
        kernel_backlog(origin.addr().port()),
        BACKLOG.min(somaxconn())
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn listening_socket_gets_the_backlog_asked_for() {
    // Below any somaxconn (the kernel's default is 4096 since Linux 5.4, 128 before).
    let origin = Origin::bind(OriginConfig {
        backlog: 77,
        ..OriginConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(kernel_backlog(origin.addr().port()), 77);
    origin.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_binding() {
    let over = crate::MAX_BODY_BYTES + 1;
    let cfg = OriginConfig {
        body_bytes: usize::try_from(over).unwrap(),
        ..OriginConfig::default()
    };
    let Err(e) = Origin::bind(cfg).await else {
        panic!("bound with a body of {over} bytes");
    };
    assert!(
        matches!(e, OriginError::BodyBytes(crate::BodyTooLarge(n)) if n == over),
        "{e}"
    );
    assert!(e.to_string().contains("must be at most 1073741824"), "{e}");
}

#[tokio::test]
async fn ledger_lists_the_ids_it_answered_and_counts_the_rest() {
    let origin = Origin::bind(OriginConfig {
        body_bytes: 10,
        ..OriginConfig::default()
    })
    .await
    .unwrap();
    let before = reloadbench_model::clock::monotonic_ns();
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    // 5, 6 and 9 with ids (6 twice), one without, one with a garbage id.
    for id in ["5", "6", "9", "6", "", "x"] {
        let header = if id.is_empty() {
            String::new()
        } else {
            format!("x-reloadbench-id: {id}\r\n")
        };
        let req = format!("GET / HTTP/1.1\r\nHost: x\r\n{header}\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let (head, _) = timeout(limit(), read_response(&mut stream, false))
            .await
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    let after = reloadbench_model::clock::monotonic_ns();
    let l = origin.ledger_after_shutdown().await;
    assert_eq!((l.received, l.answered), (6, 6));
    assert_eq!(l.answered_ids, vec![[5, 7], [9, 10]]);
    assert_eq!((l.duplicate_ids, l.answered_without_id), (1, 2));
    assert_eq!(l.answered_per_slot.iter().sum::<u64>(), 6);
    // Every answer's slot lies between the two clock readings.
    let first = l.answered_per_slot.iter().position(|&n| n > 0).unwrap() as u64;
    let last = (l.answered_per_slot.len() - 1) as u64;
    let slot = reloadbench_model::ledger::ORIGIN_SLOT_NS;
    assert!(l.slots_start_mono_ns + first * slot >= before / slot * slot);
    assert!(l.slots_start_mono_ns + last * slot <= after);
}

/// The peak resident set of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_large_body_is_counted_not_kept() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    const TOTAL: usize = 128 << 20;
    let head = format!("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {TOTAL}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let before = peak_rss_kib();
    let chunk = vec![b'b'; 64 * 1024];
    for _ in 0..TOTAL / chunk.len() {
        stream.write_all(&chunk).await.unwrap();
    }
    let (head, _) = timeout(limit(), read_response(&mut stream, false))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(origin.ledger().body_bytes_received, TOTAL as u64);
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(
        grown_mib < 64,
        "peak RSS grew {grown_mib} MiB for a 128 MiB body"
    );
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_ends_its_connection_unanswered() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten..")
        .await
        .unwrap();
    // The clock is paused: it jumps to the stall limit once everything waits.
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).await.unwrap();
    assert_eq!(n, 0, "closed without an answer: {:?}", &buf[..n]);
    let ledger = origin.ledger();
    assert_eq!((ledger.received, ledger.answered), (1, 0));
    origin.shutdown().await;
}

/// An h2c (prior knowledge) client on `addr`: its request handle, with the
/// connection driven by a task.
async fn h2c(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Sends one request on its own stream; returns its status and body length.
async fn h2_request(
    send: &h2::client::SendRequest<Bytes>,
    method: &str,
    id: Option<u64>,
    body: Option<&'static [u8]>,
) -> (u16, usize) {
    let mut req = http::Request::builder()
        .method(method)
        .uri("http://origin.test/h2");
    if let Some(id) = id {
        req = req.header(reloadbench_model::ledger::ID_HEADER, id);
    }
    let req = req.body(()).unwrap();
    let mut send = send.clone().ready().await.unwrap();
    let (resp, mut tx) = send.send_request(req, body.is_none()).unwrap();
    if let Some(b) = body {
        tx.send_data(Bytes::from_static(b), true).unwrap();
    }
    let resp = resp.await.unwrap();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut n = 0;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        n += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    (status, n)
}

#[tokio::test]
async fn h2c_and_http1_are_served_on_the_same_port_into_one_ledger() {
    let origin = Origin::bind(OriginConfig::default()).await.unwrap();
    let send = h2c(origin.addr()).await;
    // Ten streams at once on one connection, with ids 0..10.
    let streams: Vec<_> = (0..10)
        .map(|id| {
            let send = send.clone();
            tokio::spawn(async move { h2_request(&send, "GET", Some(id), None).await })
        })
        .collect();
    for s in streams {
        let (status, n) = timeout(limit(), s).await.unwrap().unwrap();
        assert_eq!((status, n), (200, DEFAULT_BODY_BYTES));
    }
    let (status, n) = timeout(limit(), h2_request(&send, "POST", Some(10), Some(b"abc")))
        .await
        .unwrap();
    assert_eq!((status, n), (200, DEFAULT_BODY_BYTES));
    // HTTP/1.1 on the same port, id 11.
    let mut stream = TcpStream::connect(origin.addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nx-reloadbench-id: 11\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = timeout(limit(), read_response(&mut stream, false))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), DEFAULT_BODY_BYTES);
    let l = origin.ledger_after_shutdown().await;
    assert_eq!((l.received, l.answered), (12, 12));
    assert_eq!(l.answered_ids, vec![[0, 12]]);
    assert_eq!((l.duplicate_ids, l.answered_without_id), (0, 0));
    assert_eq!(l.answered_by_method.get("POST"), Some(&1));
    assert_eq!(l.answered_by_method.get("GET"), Some(&11));
    assert_eq!(l.body_bytes_received, 3);
}
