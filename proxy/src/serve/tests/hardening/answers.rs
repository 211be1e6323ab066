//! The proxy's own answers and closes: reason phrases, HTTP/1.0 keep-alive on a proxy
//! answer, malformed responses caught before any byte was sent, one `Content-Length`
//! value, and a close that does not reset a response still in flight.

use super::*;

/// Reads the rest of a `Content-Length` body of `len` bytes, with `c.buf` holding its
/// start; returns how many bytes came before EOF or reset.
async fn body_bytes(c: &mut Client, len: usize) -> usize {
    let mut got = c.buf.len();
    c.buf.clear();
    let mut chunk = vec![0u8; 65536];
    while got < len {
        match timeout(limit(), c.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
    }
    got
}

#[tokio::test]
async fn heavy_early_large_response_to_an_unfinished_upload_arrives_whole() {
    const BIG: usize = 16 << 20;
    // The origin answers at once, without reading the body (a rejection with a large
    // page, or a full-duplex service), and keeps its connection.
    let origin = listen_with(true, |mut s, _| async move {
        let mut buf = Vec::new();
        if read_head(&mut s, &mut buf).await.is_some() {
            let _ = s.write_all(&ok(&pattern(BIG))).await;
            // Holds the connection without reading, until the proxy drops it.
            let _ = timeout(limit(), std::future::pending::<()>()).await;
        }
    })
    .await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    let mut c = Client::connect(addr).await;
    let body = Arc::new(pattern(64 << 20));
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = upload(&mut c, head.into_bytes(), body);
    let (status, headers) = next_head(&mut c).await.expect("a response head");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "connection"), Some("close"));
    // A slow reader: it pauses before reading on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = body_bytes(&mut c, BIG).await;
    writer.abort();
    assert_eq!(got, BIG, "response cut after {got} of {BIG} bytes");
}

#[tokio::test]
async fn client_stalling_in_its_body_gets_408_request_timeout() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |c| {
        c.timeouts.request = scaled(Duration::from_secs(5));
        c.timeouts.body = Duration::from_millis(500);
    });
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
        .await;
    let mut line = Vec::new();
    while head_end(&c.buf).is_none() {
        assert!(c.fill().await > 0, "closed without an answer");
    }
    line.extend_from_slice(&c.buf[..c.buf.iter().position(|b| *b == b'\r').unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&line),
        "HTTP/1.1 408 Request Timeout"
    );
}

#[tokio::test]
async fn http10_keep_alive_client_is_told_keep_alive_after_a_proxy_answer() {
    let (_server, addr) = proxy(vec![dead_addr()], |c| {
        c.timeouts.idle = Duration::from_secs(60);
    });
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 502);
    let keep =
        header(&r.headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive"));
    // Without `Connection: keep-alive` an HTTP/1.0 client takes the connection as
    // closing (RFC 9112 9.3), so the proxy must close it too, not keep it open.
    assert!(
        keep || ends_within(&mut c, scaled(Duration::from_secs(5))).await,
        "no keep-alive in {:?}, and the connection stays open",
        r.headers
    );
}

#[tokio::test]
async fn absolute_form_with_two_host_headers_gets_400() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET http://a.example/p HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 400, "{:?}", origin.seen());
}

#[tokio::test]
async fn response_with_a_malformed_first_chunk_gets_502() {
    let origin = listen_with(false, |mut s, _| async move {
        let mut buf = Vec::new();
        if read_head(&mut s, &mut buf).await.is_some() {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
                .await;
            while fill_from(&mut s, &mut buf).await {}
        }
    })
    .await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    // Nothing of the response reached the client: README "Forwarding", origin failures.
    let r = next_head(&mut c).await.map(|(status, _)| status);
    assert_eq!(r, Some(502));
}

#[tokio::test]
async fn content_length_list_is_forwarded_as_one_value() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 200);
    let seen = origin.seen();
    let lengths: Vec<String> = header_lines(&seen[0].head)
        .into_iter()
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(lengths, ["5"]);
}

#[tokio::test]
async fn status_outside_100_to_599_is_a_bad_gateway() {
    for status in ["099", "000", "600", "999"] {
        let raw = format!("HTTP/1.1 {status} Odd\r\nContent-Length: 2\r\n\r\nok").into_bytes();
        let origin = Recorder::start(move |_, _| Act::Keep(raw.clone())).await;
        let (_server, addr) = proxy(vec![origin.addr], |_| {});
        let mut c = Client::connect(addr).await;
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let (got, _) = next_head(&mut c).await.expect("a response head");
        assert_eq!(got, 502, "origin status {status}");
        assert_eq!(origin.seen().len(), 1, "one request reached the origin");
    }
}
