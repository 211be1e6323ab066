//! Request targets and `Host`, and HTTP/1.0 clients.

use super::*;

#[tokio::test]
async fn invalid_host_value_gets_400() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    for bad in ["a b", "a/b", "user@a", "a:b:c"] {
        let mut c = Client::connect(addr).await;
        c.send(format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n").as_bytes())
            .await;
        let r = final_response(&mut c, false).await.expect("a response");
        assert_eq!(r.status, 400, "Host: {bad}");
    }
}

#[tokio::test]
async fn http10_expect_continue_gets_no_interim_response() {
    let origin = Recorder::start(|s, _| Act::Keep(ok(&s.body))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
        .await;
    let (status, _) = timeout(limit(), next_head(&mut c))
        .await
        .unwrap()
        .expect("a response head");
    assert_eq!(status, 200, "the first response an HTTP/1.0 client reads");
}

#[tokio::test]
async fn absolute_form_with_empty_path_and_a_query_is_forwarded() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET http://example.test?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 200);
    assert_eq!(origin.seen()[0].path(), "/?q=1");
}

#[tokio::test]
async fn http10_client_never_gets_transfer_encoding() {
    let origin = Recorder::start(|_, _| {
        Act::Close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8bxx".to_vec())
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let (status, headers) = next_head(&mut c).await.expect("a response head");
    assert!(
        status == 502 || header(&headers, "transfer-encoding").is_none(),
        "{status} {headers:?}"
    );
}

#[tokio::test]
async fn absolute_form_authority_replaces_the_host_header() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET http://a.test/p HTTP/1.1\r\nHost: b.test\r\n\r\n")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    if r.status == 200 {
        let host = origin.seen()[0].header("host");
        assert_eq!(host.as_deref(), Some("a.test"), "{}", origin.seen()[0].head);
    } else {
        assert_eq!(r.status, 400, "{r:?}");
    }
}

#[tokio::test]
async fn http10_keep_alive_client_gets_keep_alive_and_can_reuse() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for _ in 0..2 {
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await;
        let r = final_response(&mut c, false).await.expect("a response");
        assert_eq!(r.status, 200);
        assert_eq!(header(&r.headers, "connection"), Some("keep-alive"));
    }
    // Without the token, HTTP/1.0 closes after the response.
    c.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(header(&r.headers, "connection"), Some("close"));
    assert!(ends_within(&mut c, limit()).await);
}

#[tokio::test]
async fn empty_lines_before_a_request_line_are_ignored() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
}

#[tokio::test]
async fn an_empty_line_between_requests_does_not_start_the_head_timer() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |c| {
        c.timeouts.header_read = Duration::from_millis(200);
        c.timeouts.idle = Duration::from_secs(30);
    });
    let mut c = Client::connect(addr).await;
    let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    c.send(get).await;
    assert_eq!(
        final_response(&mut c, false)
            .await
            .expect("a response")
            .status,
        200
    );
    c.send(b"\r\n").await;
    // Well past `header_read`, well within `idle`: the connection is still idle.
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.send(get).await;
    let r = final_response(&mut c, false)
        .await
        .expect("the connection is still open");
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn absolute_form_authority_is_validated_like_host() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    for bad in ["evil:99999", "evil:65536", "a b", "user@evil", "evil:x"] {
        for req in [
            format!("GET http://{bad}/ HTTP/1.1\r\nHost: t\r\n\r\n"),
            format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n"),
        ] {
            let mut c = Client::connect(addr).await;
            c.send(req.as_bytes()).await;
            let r = final_response(&mut c, false).await.expect("a response");
            assert_eq!(r.status, 400, "{req:?}");
        }
    }
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    let mut c = Client::connect(addr).await;
    c.send(b"GET http://good:65535/ HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 200);
}
