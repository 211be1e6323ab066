//! Framing that could desynchronise the proxy and an origin: `Connection` naming framing
//! headers, chunk-size syntax, malformed chunked bodies, transfer-coding variants.

use super::*;

/// A POST to `/p` with `body`, whose `Connection` header names its `Content-Length`.
fn post_naming_its_length(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /p HTTP/1.1\r\nHost: t\r\nConnection: content-length\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[tokio::test]
async fn connection_naming_content_length_does_not_unframe_the_request_body() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    let req = post_naming_its_length(smuggled);
    let mut c = Client::connect(addr).await;
    c.send(&req).await;
    let r = final_response(&mut c, false).await;
    // Either refused, or the origin gets the body as the POST's body.
    for s in origin.seen() {
        assert_ne!(s.path(), "/smuggled", "body smuggled as a request: {s:?}");
        if s.path() == "/p" {
            assert_eq!(
                s.body, smuggled,
                "origin got the POST without its framing: {}",
                s.head
            );
        }
    }
    let r = r.expect("a response");
    assert!(r.status == 200 || r.status == 400, "{r:?}");
}

#[tokio::test]
async fn smuggled_request_does_not_poison_the_pooled_origin_connection() {
    let origin = path_origin().await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    let smuggled = b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
    let req = post_naming_its_length(smuggled);
    let mut c = Client::connect(addr).await;
    c.send(&req).await;
    let first = final_response(&mut c, false).await.expect("a response");
    if first.status != 200 {
        return; // refused: nothing was smuggled
    }
    // The pooled origin connection serves every client of this serving thread.
    c.send(b"GET /victim HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "/victim",
        "the response of another request was delivered"
    );
}

#[tokio::test]
async fn origin_connection_naming_content_length_keeps_the_response_framed() {
    let origin = Recorder::start(|_, _| {
        Act::Keep(
            b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello"
                .to_vec(),
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (status, headers) = timeout(limit(), next_head(&mut c))
        .await
        .unwrap()
        .expect("a response head");
    assert_eq!(status, 200);
    let framed = header(&headers, "content-length") == Some("5")
        || header(&headers, "transfer-encoding").is_some()
        || header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    assert!(
        framed,
        "keep-alive response relayed without framing: {headers:?}"
    );
}

#[tokio::test]
async fn junk_after_a_chunk_size_is_refused_not_forwarded() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5 junk\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let r = final_response(&mut c, false).await;
    for s in origin.seen() {
        assert!(
            !s.body.windows(6).any(|w| w == b"5 junk"),
            "invalid chunk-size line forwarded: {:?}",
            String::from_utf8_lossy(&s.body)
        );
    }
    // RFC 9112 7.1: chunk-ext needs `;`; the message is malformed: 400.
    assert_eq!(r.map(|r| r.status), Some(400));
}

#[tokio::test]
async fn malformed_chunked_request_body_gets_400() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhelloXX\r\n0\r\n\r\n",
    )
    .await;
    let r = final_response(&mut c, false).await;
    assert_eq!(r.map(|r| r.status), Some(400));
}

#[tokio::test]
async fn connection_naming_host_does_not_strip_host() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: host\r\n\r\n")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 200);
    let host = origin.seen()[0].header("host");
    assert!(
        host.is_some(),
        "HTTP/1.1 request forwarded without Host: {}",
        origin.seen()[0].head
    );
}

#[tokio::test]
async fn connection_naming_x_forwarded_for_cannot_hide_the_client_address() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: x-forwarded-for\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
        .await;
    assert_eq!(final_response(&mut c, false).await.unwrap().status, 200);
    let xff = origin.seen()[0].header("x-forwarded-for");
    assert_eq!(xff.as_deref(), Some("10.0.0.1, 127.0.0.1"));
}

#[tokio::test]
async fn transfer_encoding_variants_that_hide_chunked_are_refused() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let cases: [(&[u8], u16); 5] = [
        (b"Transfer-Encoding: xchunked\r\n", 400),
        (
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            400,
        ),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
        (b"Transfer-Encoding: gzip, chunked\r\n", 501),
        (b"Transfer-Encoding: \"chunked\"\r\n", 400),
    ];
    for (hdrs, want) in cases {
        let mut c = Client::connect(addr).await;
        let mut req = b"POST / HTTP/1.1\r\nHost: t\r\n".to_vec();
        req.extend_from_slice(hdrs);
        req.extend_from_slice(b"\r\n5\r\nhello\r\n0\r\n\r\n");
        c.send(&req).await;
        let r = final_response(&mut c, false).await.expect("a response");
        assert_eq!(r.status, want, "{}", String::from_utf8_lossy(hdrs));
        assert!(
            ends_within(&mut c, limit()).await,
            "not closed after {want}"
        );
    }
    // HTTP/1.0 with a transfer coding: faulty framing (RFC 9112 6.1).
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await;
    assert_eq!(
        final_response(&mut c, false)
            .await
            .expect("a response")
            .status,
        400
    );
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn bytes_after_a_chunked_body_with_trailers_are_the_next_request() {
    let origin = Recorder::start(|s, _| Act::Keep(ok(s.path().as_bytes()))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"POST /one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          3;e=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    for want in ["/one", "/two"] {
        let r = final_response(&mut c, false).await.expect("a response");
        assert_eq!((r.status, r.body.as_slice()), (200, want.as_bytes()));
    }
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, b"3;e=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n");
    assert_eq!(seen[1].path(), "/two");
}
