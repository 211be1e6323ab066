//! Response framing relayed to clients: chunked, close-delimited, bodiless, interim
//! responses, hop-by-hop headers, large bodies.

use super::*;

#[tokio::test]
async fn chunked_origin_response_is_deframed_and_the_connection_stays_usable() {
    let origin = RawOrigin::start(|_| Reply::keep(CHUNKED)).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for _ in 0..2 {
        let r = exchange(&mut c, GET).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, CHUNKED_BODY, "{}", r.text());
    }
    assert_eq!(origin.seen().len(), 2);
}

#[tokio::test]
async fn chunked_origin_response_to_http10_client_is_complete_then_closed() {
    let origin = RawOrigin::start(|_| Reply::keep(CHUNKED)).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET / HTTP/1.0\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, CHUNKED_BODY, "{}", r.text());
    assert!(
        !r.headers.iter().any(|(k, _)| k == "transfer-encoding"),
        "chunked sent to an HTTP/1.0 client: {:?}",
        r.headers
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn close_delimited_origin_response_arrives_whole() {
    let body = pattern(100_000);
    let mut raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    raw.extend_from_slice(&body);
    let origin = RawOrigin::start(move |_| Reply::close(raw.clone())).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, GET).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "body bytes differ");
}

#[tokio::test]
async fn origin_connection_close_is_not_reused() {
    let origin = RawOrigin::start(|_| {
        Reply::close(&b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..])
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for _ in 0..2 {
        let r = exchange(&mut c, GET).await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        if r.closes() {
            c = Client::connect(addr).await;
        }
    }
    assert_eq!(origin.connections(), 2);
    let conns: Vec<usize> = origin.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 1]);
}

#[tokio::test]
async fn interim_1xx_before_the_final_response_is_handled() {
    let origin = RawOrigin::start(|s| {
        let interim: &[u8] = if s.nth == 0 {
            b"HTTP/1.1 100 Continue\r\n\r\n"
        } else {
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        };
        let mut v = interim.to_vec();
        v.extend_from_slice(&ok(format!("final-{}", s.nth).as_bytes()));
        Reply::keep(v)
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for want in ["final-0", "final-1"] {
        let r = exchange(&mut c, GET).await;
        assert_eq!((r.status, r.text().as_str()), (200, want));
    }
}

#[tokio::test]
async fn no_content_and_not_modified_do_not_wait_for_a_body() {
    let origin = RawOrigin::start(|s| match s.path() {
        "/204" => Reply::keep(&b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"[..]),
        "/304" => Reply::keep(&b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"[..]),
        _ => Reply::keep(ok(b"after")),
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for (path, status) in [("/204", 204), ("/x", 200), ("/304", 304), ("/x", 200)] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = exchange(&mut c, req.as_bytes()).await;
        assert_eq!(r.status, status, "{path}");
        if status == 200 {
            assert_eq!(r.text(), "after");
        }
    }
}

#[tokio::test]
async fn not_modified_with_content_length_does_not_wait_for_a_body() {
    // A 304 may carry the selected representation's length (RFC 9110 8.6); no body follows.
    let origin = RawOrigin::start(|s| match s.path() {
        "/304" => Reply::keep(
            &b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n"[..],
        ),
        _ => Reply::keep(ok(b"after")),
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET /304 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 304);
    let r = exchange(&mut c, GET).await;
    assert_eq!((r.status, r.text().as_str()), (200, "after"));
}

#[tokio::test]
async fn head_responses_have_no_body_and_keep_the_connection_usable() {
    let origin = RawOrigin::start(|s| match (s.method(), s.path()) {
        ("HEAD", "/len") => Reply::keep(&b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..]),
        ("HEAD", _) => Reply::keep(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]),
        _ => Reply::keep(ok(b"0123456789")),
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"HEAD /len HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(exchange(&mut c, GET).await.text(), "0123456789");
    let r = exchange(&mut c, b"HEAD /chunked HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(exchange(&mut c, GET).await.text(), "0123456789");
    let methods: Vec<String> = origin
        .seen()
        .iter()
        .map(|s| s.method().to_owned())
        .collect();
    assert_eq!(methods, ["HEAD", "GET", "HEAD", "GET"]);
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_dropped_and_repeats_kept() {
    let origin = RawOrigin::start(|_| {
        Reply::keep(
            &b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: x-internal\r\n\
               X-Internal: 1\r\nProxy-Authenticate: Basic realm=\"o\"\r\nX-Custom: v\r\n\
               Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok"[..],
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, GET).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    for gone in ["keep-alive", "x-internal", "proxy-authenticate"] {
        assert!(r.header(gone).is_none(), "{gone} relayed: {:?}", r.headers);
    }
    let conn = values(&r.headers, "connection")
        .join(",")
        .to_ascii_lowercase();
    assert!(!conn.contains("x-internal"), "{conn}");
    assert_eq!(r.header("x-custom"), Some("v"));
    assert_eq!(values(&r.headers, "set-cookie"), ["a=1", "b=2"]);
}

#[tokio::test]
async fn large_bodies_arrive_intact() {
    const MIB: usize = 1 << 20;
    let body = Arc::new(pattern(MIB));
    let b = body.clone();
    let origin = RawOrigin::start(move |s| {
        if s.path() == "/cl" {
            return Reply::keep(ok(&b));
        }
        let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for chunk in b.chunks(16 * 1024) {
            v.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            v.extend_from_slice(chunk);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"0\r\n\r\n");
        Reply::keep(v)
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for path in ["/cl", "/chunked"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = exchange(&mut c, req.as_bytes()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), MIB, "{path}");
        assert!(r.body == *body, "{path}: body bytes differ");
    }
}
