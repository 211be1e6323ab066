//! Requests with bodies relayed both ways at once: early and streaming origin responses,
//! long uploads, unread bodies, and the retry rule around interim responses.

use super::*;

#[tokio::test]
async fn heavy_early_origin_response_to_an_upload_is_relayed() {
    let origin = early_413_origin().await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    let mut c = Client::connect(addr).await;
    let body = Arc::new(pattern(16 << 20));
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = upload(&mut c, head.into_bytes(), body);
    let r = final_response(&mut c, false).await.expect("a response");
    writer.abort();
    assert_eq!(r.status, 413, "{r:?}");
}

#[tokio::test]
async fn heavy_streaming_origin_response_during_a_large_upload_does_not_deadlock() {
    let origin = streaming_echo_origin().await;
    let (_server, addr) = proxy(vec![origin], |c| {
        c.timeouts.request = scaled(Duration::from_secs(5));
    });
    let mut c = Client::connect(addr).await;
    let body = Arc::new(pattern(24 << 20));
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = upload(&mut c, head.into_bytes(), body.clone());
    let r = final_response(&mut c, false).await.expect("a response");
    writer.abort();
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body.len(), body.len());
}

#[tokio::test]
async fn steady_upload_longer_than_the_request_timeout_is_not_cut() {
    let origin = Recorder::start(|s, _| Act::Keep(ok(s.body.len().to_string().as_bytes()))).await;
    let (_server, addr) = proxy(vec![origin.addr], |c| {
        c.timeouts.request = scaled(Duration::from_secs(1));
    });
    let mut c = Client::connect(addr).await;
    let pieces = 8;
    let piece = pattern(1000);
    c.send(
        format!(
            "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            pieces * piece.len()
        )
        .as_bytes(),
    )
    .await;
    // The client paces its upload (about 2.4 s in all, times the slow-machine multiplier like the timeout), it never stalls for long.
    for _ in 0..pieces {
        // A write error means the proxy gave up on the request: read its answer.
        if c.stream.write_all(&piece).await.is_err() {
            break;
        }
        tokio::time::sleep(scaled(Duration::from_millis(300))).await;
    }
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(
        (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        (200, (pieces * piece.len()).to_string())
    );
}

#[tokio::test]
async fn request_answered_with_an_interim_response_is_not_sent_twice() {
    let origin = Recorder::start(|s, nth| match (s.conn, nth) {
        (0, 0) => Act::Keep(ok(b"first")),
        // The origin has the request, starts answering, then its connection dies.
        (0, _) => Act::Close(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n".to_vec()),
        _ => Act::Keep(ok(b"again")),
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.body, b"first");
    c.send(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let r = final_response(&mut c, false).await;
    let times = origin.seen().iter().filter(|s| s.path() == "/b").count();
    assert_eq!(
        times, 1,
        "GET /b reached the origin {times} times; got {r:?}"
    );
}

#[tokio::test]
async fn origin_failure_after_an_unread_body_closes_the_client_connection() {
    // Connect refused: the body is never read, so the connection must not be reused.
    let (_server, addr) = proxy(vec![dead_addr()], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 502);
    assert_eq!(header(&r.headers, "connection"), Some("close"));
    assert!(
        ends_within(&mut c, limit()).await,
        "a second response followed"
    );
}
