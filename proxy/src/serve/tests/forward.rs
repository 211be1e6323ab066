//! Forwarding through the server: bodies, keep-alive, 502/504, headers, round robin.

use std::time::Duration;

use super::*;

#[tokio::test]
async fn forwards_get_on_a_kept_alive_connection() {
    let origin = origin(32_987).await;
    let (server, addr) = proxy(vec![origin.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    for path in ["/", "/a?b=c", "/z"] {
        let r = c.get(path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 32_987);
        assert!(!r.closes());
        assert!(r.header("x-served-by").is_none());
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(origin.requests(), 3);
    origin.shutdown().await;
}

#[tokio::test]
async fn http10_client_gets_its_response_and_a_close() {
    let origin = origin(1000).await;
    let (_server, addr) = proxy(vec![origin.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").await;
    let r = c.response().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 1000);
    c.expect_closed().await;
    origin.shutdown().await;
}

#[tokio::test]
async fn head_is_forwarded_without_body() {
    let origin = origin(1000).await;
    let (_server, addr) = proxy(vec![origin.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n").await;
    // The head says 1000 bytes but none follow: read the head only, then a GET.
    let head_end = loop {
        if let Some(i) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(c.fill().await > 0);
    };
    let head = String::from_utf8_lossy(&c.buf[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-length: 1000"), "{head}");
    c.buf.drain(..head_end);
    let r = c.get("/").await;
    assert_eq!(r.body.len(), 1000);
    origin.shutdown().await;
}

#[tokio::test]
async fn dead_origin_gives_502() {
    let (_server, addr) = proxy(vec![dead_addr()], |_| {});
    let mut c = Client::connect(addr).await;
    let r = c.get("/").await;
    assert_eq!(r.status, 502);
    // The client connection survives an origin failure.
    let r = c.get("/").await;
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn stalling_origin_gives_504_after_the_request_timeout() {
    let stall = stalling_origin().await;
    let (_server, addr) = proxy(vec![stall], |c| {
        c.timeouts.request = Duration::from_millis(300);
    });
    let mut c = Client::connect(addr).await;
    let start = std::time::Instant::now();
    let r = c.get("/").await;
    assert_eq!(r.status, 504);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn forwarded_for_is_appended_and_hop_by_hop_headers_are_stripped() {
    let echo = echo_origin("a").await;
    let (_server, addr) = proxy(vec![echo], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"GET / HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: 10.1.2.3\r\n\
          Connection: keep-alive, x-private\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\n\
          Proxy-Authorization: x\r\n\r\n",
    )
    .await;
    let r = c.response().await;
    let seen = r.text();
    assert_eq!(r.status, 200);
    assert!(
        seen.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("host: test\n"), "{seen}");
    for gone in ["x-private", "keep-alive:", "proxy-authorization"] {
        assert!(!seen.contains(gone), "{gone} forwarded: {seen}");
    }

    let r = c.get("/").await;
    assert!(
        r.text().contains("x-forwarded-for: 127.0.0.1\n"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn request_bodies_are_forwarded_fixed_and_chunked() {
    let echo = echo_origin("a").await;
    let (_server, addr) = proxy(vec![echo], |_| {});
    let mut c = Client::connect(addr).await;
    let body = vec![b'x'; 100_000];
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes()).await;
    c.send(&body).await;
    let r = c.response().await;
    assert!(r.text().contains("body-bytes: 100000\n"), "{}", r.text());
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n")
        .await;
    let r = c.response().await;
    assert!(r.text().contains("body-bytes: 8\n"), "{}", r.text());
}

#[tokio::test]
async fn origins_are_used_round_robin() {
    let a = origin(10).await;
    let b = origin(10).await;
    let (_server, addr) = proxy(vec![a.addr(), b.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    for _ in 0..10 {
        assert_eq!(c.get("/").await.status, 200);
    }
    assert_eq!((a.requests(), b.requests()), (5, 5));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn round_robin_alternates_between_tagged_origins() {
    let a = echo_origin("a").await;
    let b = echo_origin("b").await;
    let (_server, addr) = proxy(vec![a, b], |_| {});
    let mut c = Client::connect(addr).await;
    let tags: Vec<bool> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(c.get("/").await.text().contains("tag: a\n"));
        }
        v
    };
    assert!(
        tags == [true, false, true, false] || tags == [false, true, false, true],
        "{tags:?}"
    );
}

#[tokio::test]
async fn generation_header_names_generation_and_pid() {
    let origin = origin(10).await;
    // An origin that closes every connection at once: a 502 (a refused connect would be
    // retried on the other origin).
    let closing = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing_addr = closing.local_addr().unwrap();
    tokio::spawn(async move { while closing.accept().await.is_ok() {} });
    let (_server, addr) = proxy(vec![origin.addr(), closing_addr], |c| {
        c.generation_header = true
    });
    let mut c = Client::connect(addr).await;
    let ok = c.get("/").await;
    let failed = c.get("/").await;
    let mut statuses = [ok.status, failed.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 502]);
    for r in [ok, failed] {
        assert_eq!(r.header("x-served-by"), Some("gen=7 pid=4242"));
    }
    origin.shutdown().await;
}

#[tokio::test]
async fn counters_match_what_the_origin_and_the_clients_saw() {
    let origin = origin(100).await;
    let (server, addr) = proxy(vec![origin.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    for _ in 0..3 {
        assert_eq!(c.get("/").await.status, 200);
    }
    let mut bad = Client::connect(addr).await;
    bad.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        .await;
    assert_eq!(bad.response().await.status, 400);
    drop((c, bad));
    let (dead, dead_proxy) = proxy(vec![dead_addr()], |_| {});
    let mut d = Client::connect(dead_proxy).await;
    assert_eq!(d.get("/").await.status, 502);
    drop(d);
    // Every connection done: every count is final.
    timeout(limit(), server.drain()).await.unwrap();
    timeout(limit(), dead.drain()).await.unwrap();
    let s = server.counters();
    assert_eq!(
        (s.accepted, s.forwarded, s.completed, s.aborted),
        (2, 3, 3, 0)
    );
    assert_eq!(s.forwarded, origin.requests());
    assert_eq!(
        s.errors.into_iter().collect::<Vec<_>>(),
        [("bad_request".to_owned(), 1)]
    );
    let d = dead.counters();
    assert_eq!((d.accepted, d.forwarded, d.completed), (1, 0, 0));
    assert_eq!(
        d.errors.into_iter().collect::<Vec<_>>(),
        [("connect".to_owned(), 1)]
    );
    origin.shutdown().await;
}
