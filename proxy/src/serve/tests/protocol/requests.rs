//! Request handling: pipelining, framing checks, targets, `Expect`, `Host`, malformed
//! heads.

use super::*;

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let origin = RawOrigin::start(|s| {
        let text = format!("{} {}", s.path(), String::from_utf8_lossy(&s.body));
        Reply::keep(ok(text.trim_end().as_bytes()))
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /three HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    for want in ["/one", "/two hello", "/three"] {
        let r = read(&mut c, false).await.expect("a complete response");
        assert_eq!((r.status, r.text().as_str()), (200, want));
    }
}

#[tokio::test]
async fn content_length_with_chunked_is_rejected_or_deframed_and_closed() {
    let origin = RawOrigin::start(|s| Reply::keep(ok(&s.body))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let r = read(&mut c, false).await.expect("a complete response");
    assert!(r.status == 400 || r.status == 200, "{}", r.status);
    for s in origin.seen() {
        let both =
            !s.values("content-length").is_empty() && !s.values("transfer-encoding").is_empty();
        assert!(!both, "forwarded with both framings: {}", s.head);
        assert_eq!(s.body, b"hello", "{}", s.head);
    }
    assert!(origin.seen().len() <= 1);
    // RFC 9112 6.1: the server closes the connection after answering such a request.
    c.expect_closed().await;
}

/// Sends each of `requests` on a new connection to a proxy in front of an echoing
/// origin: each must get `status`, then a close, and none may reach the origin.
async fn refused_with(status: u16, requests: &[&[u8]]) {
    let origin = RawOrigin::start(|s| Reply::keep(ok(&s.body))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    for raw in requests {
        let mut c = Client::connect(addr).await;
        c.send(raw).await;
        let r = read(&mut c, false).await.expect("a response");
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(raw));
        c.expect_closed().await;
    }
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn conflicting_content_lengths_get_400() {
    refused_with(
        400,
        &[b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"],
    )
    .await;
}

#[tokio::test]
async fn transfer_encoding_not_ending_in_chunked_gets_400() {
    // RFC 9112 6.3: the body length cannot be determined: 400, then close.
    refused_with(
        400,
        &[b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
    )
    .await;
}

#[tokio::test]
async fn invalid_content_length_gets_400() {
    refused_with(
        400,
        &[
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\nhello!",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\nhello!",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!",
        ],
    )
    .await;
}

#[tokio::test]
async fn absolute_form_target_is_forwarded_in_origin_form() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(
        &mut c,
        b"GET http://example.test/p?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = origin.seen();
    assert_eq!(seen[0].request_line(), "GET /p?q=1 HTTP/1.1");
    assert_eq!(seen[0].values("host").len(), 1, "{}", seen[0].head);
}

#[tokio::test]
async fn expect_100_continue_gets_continue_and_the_body_reaches_the_origin() {
    let origin =
        RawOrigin::start(|s| Reply::keep(ok(format!("{}", s.body.len()).as_bytes()))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let body = pattern(20_000);
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes()).await;
    // Nothing of the body is sent before the proxy answers.
    let end = loop {
        if let Some(end) = head_end(&c.buf) {
            break end;
        }
        assert!(c.fill().await > 0, "closed before 100 Continue");
    };
    let first = String::from_utf8_lossy(&c.buf[..end]).into_owned();
    assert!(first.starts_with("HTTP/1.1 100"), "{first}");
    c.buf.drain(..end);
    c.send(&body).await;
    let r = read(&mut c, false).await.expect("a complete response");
    assert_eq!((r.status, r.text()), (200, body.len().to_string()));
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].body == body, "body bytes differ");
}

#[tokio::test]
async fn host_is_forwarded_unchanged_and_supplied_for_http10() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET / HTTP/1.1\r\nHost: Example.TEST:8080\r\n\r\n").await;
    assert_eq!(r.status, 200);
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200);
    let seen = origin.seen();
    assert_eq!(seen[0].values("host"), ["Example.TEST:8080"]);
    let host = seen[1].values("host");
    assert!(host.len() == 1 && !host[0].is_empty(), "{}", seen[1].head);
}

#[tokio::test]
async fn http11_request_without_host_gets_400() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\n\r\n").await;
    // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    let r = read(&mut c, false).await.expect("a 400 response");
    assert_eq!(r.status, 400);
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn whitespace_before_a_header_colon_gets_400() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nFoo : bar\r\n\r\n")
        .await;
    let r = read(&mut c, false).await.expect("a 400 response");
    assert_eq!(r.status, 400);
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn obs_fold_in_a_request_header_gets_400_or_is_unfolded() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nFoo: bar\r\n baz\r\n\r\n")
        .await;
    let r = read(&mut c, false).await.expect("a response");
    // RFC 9112 5.2: reject with 400, or replace each obs-fold with spaces before forwarding.
    assert!(r.status == 400 || r.status == 200, "{}", r.status);
    for s in origin.seen() {
        let folded = s.head.split("\r\n").any(|l| l.starts_with([' ', '\t']));
        assert!(!folded, "obs-fold forwarded: {}", s.head);
    }
}

#[tokio::test]
async fn very_long_path_is_forwarded_or_refused_sanely() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let path = format!("/{}", "a".repeat(20 * 1024));
    let mut c = Client::connect(addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = exchange(&mut c, req.as_bytes()).await;
    match r.status {
        200 => assert_eq!(origin.seen()[0].path(), path),
        414 | 431 => {}
        other => panic!("unexpected status {other}"),
    }
    let mut c = Client::connect(addr).await;
    assert_eq!(exchange(&mut c, GET).await.status, 200);
}
