//! Origins that misbehave: bad heads, conflicting framing, closes mid-body, stale pooled
//! connections.

use super::*;

#[tokio::test]
async fn origin_response_with_conflicting_content_lengths_gives_502() {
    let origin = RawOrigin::start(|_| {
        Reply::close(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"[..],
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    // RFC 9112 6.3: invalid response framing from upstream is a 502.
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, GET).await;
    assert_eq!(r.status, 502, "{:?} {}", r.headers, r.text());
}

#[tokio::test]
async fn origin_response_with_content_length_and_chunked_is_relayed_per_chunked() {
    let origin = RawOrigin::start(|_| {
        Reply::close(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
               5\r\nhello\r\n0\r\n\r\n"[..],
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(GET).await;
    // RFC 9112 6.3: chunked wins and Content-Length is removed before relaying, or a 502.
    match read(&mut c, false).await {
        Ok(r) if r.status == 502 => {}
        Ok(r) => {
            assert_eq!((r.status, r.text().as_str()), (200, "hello"));
            assert_ne!(r.header("content-length"), Some("3"), "{:?}", r.headers);
        }
        Err(cut) => panic!("no complete response: {cut:?}"),
    }
}

#[tokio::test]
async fn malformed_origin_response_head_gives_502() {
    let origin =
        RawOrigin::start(|_| Reply::close(&b"\x01garbage that is not http\r\n\r\n"[..])).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    assert_eq!(exchange(&mut c, GET).await.status, 502);
}

#[tokio::test]
async fn origin_closing_mid_body_cuts_the_client_connection() {
    let mut raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
    raw.extend_from_slice(b"0123456789");
    let origin = RawOrigin::start(move |_| Reply::close(raw.clone())).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(GET).await;
    match read(&mut c, false).await {
        // Cut before anything was relayed: a 502 is the right answer too.
        Ok(r) => assert_eq!(r.status, 502, "complete response: {:?}", r.headers),
        Err(cut) => {
            assert!(matches!(cut, Cut::InBody(200) | Cut::BeforeHead), "{cut:?}");
            c.expect_closed().await;
        }
    }
}

#[tokio::test]
async fn origin_closing_mid_chunked_body_cuts_the_client_connection() {
    let raw =
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\n01234"[..];
    let origin = RawOrigin::start(move |_| Reply::close(raw)).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(GET).await;
    // The client must never see the body ended as if it were complete.
    match read(&mut c, false).await {
        Ok(r) => assert_eq!(
            r.status,
            502,
            "complete response: {:?} {}",
            r.headers,
            r.text()
        ),
        Err(cut) => {
            assert!(matches!(cut, Cut::InBody(200) | Cut::BeforeHead), "{cut:?}");
            c.expect_closed().await;
        }
    }
}

#[tokio::test]
async fn post_after_the_origin_closed_an_idle_pooled_connection_does_not_hang() {
    // The first origin connection answers once (keep-alive framing) and then closes.
    let origin = RawOrigin::start(|s| {
        let reply = ok(format!("{} {}", s.method(), s.body.len()).as_bytes());
        if s.conn == 0 {
            Reply::close(reply)
        } else {
            Reply::keep(reply)
        }
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    assert_eq!(exchange(&mut c, GET).await.text(), "GET 0");
    origin.wait_closed(1).await;
    let r = exchange(
        &mut c,
        b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    match r.status {
        200 => assert_eq!(r.text(), "POST 5"),
        502 => {}
        other => panic!("unexpected status {other}"),
    }
    if r.closes() {
        c = Client::connect(addr).await;
    }
    let r = exchange(&mut c, GET).await;
    assert_eq!((r.status, r.text().as_str()), (200, "GET 0"));
}
