//! Trailer sections and chunk lines of chunked bodies, both ways: syntax and size limits
//! as for heads, framing and hop-by-hop fields dropped, long chunk lines refused.

use super::*;

/// A chunked POST whose trailer section is `trailers` (field lines, each with CRLF).
fn post_with_trailers(trailers: &[u8]) -> Vec<u8> {
    let mut req =
        b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
            .to_vec();
    req.extend_from_slice(trailers);
    req.extend_from_slice(b"\r\n");
    req
}

/// Sends `req` through a proxy to a recording origin; returns the client's status (none
/// when the connection closed without one) and what the origin recorded.
async fn send_through(req: &[u8]) -> (Option<u16>, Vec<Seen>) {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(req).await;
    let status = final_response(&mut c, false).await.map(|r| r.status);
    drop(c);
    (status, origin.seen())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn malformed_request_trailers_get_400_and_never_reach_the_origin() {
    let cases: [&[u8]; 3] = [
        b"GET /smug HTTP/1.1\r\n",
        b"X-A: 1\r\n folded\r\n",
        b"X-A 1\r\n",
    ];
    for bad in cases {
        let (status, seen) = send_through(&post_with_trailers(bad)).await;
        assert_eq!(status, Some(400), "{:?}", String::from_utf8_lossy(bad));
        for s in seen {
            assert!(
                !contains(&s.body, bad),
                "trailer reached the origin: {:?}",
                String::from_utf8_lossy(&s.body)
            );
        }
    }
}

#[tokio::test]
async fn framing_fields_in_request_trailers_are_dropped() {
    let trailers =
        b"Content-Length: 99\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nX-Checksum: abc\r\n";
    let (status, seen) = send_through(&post_with_trailers(trailers)).await;
    assert_eq!(status, Some(200));
    assert_eq!(seen.len(), 1, "{seen:?}");
    let body = &seen[0].body;
    assert_eq!(
        String::from_utf8_lossy(body),
        "5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n",
        "the origin got other trailers than the well-formed end-to-end ones"
    );
}

#[tokio::test]
async fn too_many_or_too_large_request_trailers_get_431() {
    let many: Vec<u8> = (0..10_000)
        .flat_map(|i| format!("X-{i}: v\r\n").into_bytes())
        .collect();
    let mut large = b"X-Big: ".to_vec();
    large.extend(std::iter::repeat_n(b'a', 40 * 1024));
    large.extend_from_slice(b"\r\n");
    let few_but_many: Vec<u8> = (0..150)
        .flat_map(|i| format!("X-{i}: v\r\n").into_bytes())
        .collect();
    for (name, trailers) in [
        ("10,000 fields", many),
        ("40 KiB", large),
        ("150 fields", few_but_many),
    ] {
        let (status, seen) = send_through(&post_with_trailers(&trailers)).await;
        assert_eq!(status, Some(431), "{name}");
        for s in seen {
            assert!(
                !contains(&s.body, b"X-"),
                "{name}: trailers reached the origin"
            );
        }
    }
}

#[tokio::test]
async fn chunk_line_longer_than_4_kib_gets_400() {
    let mut req =
        b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=".to_vec();
    req.extend(std::iter::repeat_n(b'x', 5000));
    req.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    let (status, seen) = send_through(&req).await;
    assert_eq!(status, Some(400));
    for s in seen {
        assert!(!contains(&s.body, b"xxxx"), "extension reached the origin");
    }
    // A line within the limit is relayed.
    let mut req =
        b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=".to_vec();
    req.extend(std::iter::repeat_n(b'x', 4000));
    req.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    let (status, _) = send_through(&req).await;
    assert_eq!(status, Some(200));
}

const RESPONSE_START: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";

#[tokio::test]
async fn malformed_response_trailers_close_the_client_connection() {
    for bad in [
        &b"0\r\nHTTP/1.1 200 OK\r\n\r\n"[..],
        b"0\r\nX-A: 1\r\n folded\r\n\r\n",
    ] {
        // The origin sends the head and a first chunk, and the rest once the client has
        // the head: the failure comes after the response began.
        let go = Arc::new(tokio::sync::Notify::new());
        let go2 = go.clone();
        let origin = listen_with(false, move |mut s, _| {
            let go = go2.clone();
            async move {
                let mut buf = Vec::new();
                if read_head(&mut s, &mut buf).await.is_none() {
                    return;
                }
                let _ = s.write_all(RESPONSE_START).await;
                go.notified().await;
                let _ = s.write_all(bad).await;
                let mut sink = [0u8; 1024];
                while let Ok(Ok(n)) = timeout(limit(), s.read(&mut sink)).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        })
        .await;
        let (_server, addr) = proxy(vec![origin], |_| {});
        let mut c = Client::connect(addr).await;
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let (status, _) = next_head(&mut c).await.expect("a head");
        assert_eq!(status, 200);
        go.notify_one();
        let mut rest = std::mem::take(&mut c.buf);
        let mut chunk = [0u8; 4096];
        loop {
            match timeout(limit(), c.stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => rest.extend_from_slice(&chunk[..n]),
                Err(_) => panic!(
                    "connection not closed: {:?}",
                    String::from_utf8_lossy(&rest)
                ),
            }
        }
        assert!(
            !contains(&rest, &bad[3..]) && !rest.ends_with(b"\r\n\r\n"),
            "bad trailers relayed: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

#[tokio::test]
async fn framing_fields_in_response_trailers_are_dropped() {
    let origin = Recorder::start(|_, _| {
        Act::Keep(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\
              Content-Length: 99\r\nConnection: close\r\nX-Sum: 1\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (status, _) = next_head(&mut c).await.expect("a head");
    assert_eq!(status, 200);
    let want = b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n";
    while c.buf.len() < want.len() {
        assert!(
            c.fill().await > 0,
            "EOF: {:?}",
            String::from_utf8_lossy(&c.buf)
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&c.buf),
        String::from_utf8_lossy(want)
    );
}

#[tokio::test]
async fn response_chunk_line_longer_than_4_kib_is_a_bad_response() {
    let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 5000));
    raw.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    let origin = Recorder::start(move |_, _| Act::Keep(raw.clone())).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let r = final_response(&mut c, false).await.expect("a response");
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn request_trailers_named_by_the_heads_connection_are_dropped() {
    let req = b"POST /t HTTP/1.1\r\nHost: t\r\nConnection: x-secret\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n0\r\nX-Secret: b\r\nX-Sum: 1\r\n\r\n";
    let (status, seen) = send_through(req).await;
    assert_eq!(status, Some(200));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("x-secret"), None);
    assert_eq!(
        String::from_utf8_lossy(&seen[0].body),
        "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
        "a trailer the head's Connection named reached the origin"
    );
}

#[tokio::test]
async fn response_trailers_named_by_the_heads_connection_are_dropped() {
    let origin = Recorder::start(|_, _| {
        Act::Keep(
            b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n0\r\nX-Secret: b\r\nX-Sum: 1\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (status, _) = next_head(&mut c).await.expect("a head");
    assert_eq!(status, 200);
    let want = b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n";
    while c.buf.len() < want.len() {
        assert!(
            c.fill().await > 0,
            "EOF: {:?}",
            String::from_utf8_lossy(&c.buf)
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&c.buf),
        String::from_utf8_lossy(want)
    );
    assert_eq!(origin.seen().len(), 1);
}
