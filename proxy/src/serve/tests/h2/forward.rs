//! What an HTTP/2 request becomes at the origin, and what comes back: the same header
//! rules as HTTP/1.1, bodies both ways under flow control, h2c and HTTP/1.1 on one
//! cleartext listener, ALPN `h2` and `http/1.1` on one TLS listener.

use super::*;

#[tokio::test]
async fn h2c_and_http1_are_served_on_one_listener() {
    let origin = origin(1000).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let send = h2c(addr).await;
    let a = h2_get(&send, "/").await.unwrap();
    assert_eq!((a.status, a.body.len()), (200, 1000));
    let mut h1 = Client::connect(addr).await;
    let b = h1.get("/").await;
    assert_eq!((b.status, b.body.len()), (200, 1000));
    let c = h2_get(&send, "/").await.unwrap();
    assert_eq!(c.status, 200);
    assert_eq!(origin.requests(), 3);
    let counted = server.counters();
    assert_eq!(
        (counted.accepted, counted.forwarded, counted.completed),
        (2, 3, 3)
    );
}

#[tokio::test]
async fn without_http2_the_preface_is_a_bad_request() {
    let origin = origin(10).await;
    let (_server, addr) = proxy(vec![origin.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(crate::serve::h2::PREFACE).await;
    let r = c.response().await;
    assert!(r.status >= 400, "{r:?}");
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn the_origin_gets_host_from_the_authority_forwarded_for_joined_cookies_and_a_chunked_body() {
    let origin = echo_origin("h2").await;
    let (_server, addr) = h2_proxy(vec![origin], |_| {});
    let send = h2c(addr).await;
    let req = ::http::Request::post("http://example.com:81/up")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("x-custom", "v")
        .body(())
        .unwrap();
    let r = h2_send(&send, req, &[b"hello ", b"world"]).await.unwrap();
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "host: example.com:81",
        "x-forwarded-for: 127.0.0.1",
        "cookie: a=1; b=2",
        "x-custom: v",
        "transfer-encoding: chunked",
        "body-bytes: 11",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in\n{text}"
        );
    }
    // No connection-specific field came back (h2 would have refused the response).
    assert!(r.headers.get("connection").is_none());
}

#[tokio::test]
async fn a_body_with_content_length_is_relayed_as_is() {
    let origin = echo_origin("h2").await;
    let (_server, addr) = h2_proxy(vec![origin], |_| {});
    let send = h2c(addr).await;
    let req = ::http::Request::put("http://localhost/x")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let r = h2_send(&send, req, &[b"abcde"]).await.unwrap();
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.lines().any(|l| l == "content-length: 5"), "{text}");
    assert!(text.lines().any(|l| l == "body-bytes: 5"), "{text}");
    assert!(!text.contains("transfer-encoding"), "{text}");
}

#[tokio::test]
async fn a_large_response_respects_the_clients_flow_control_windows() {
    // The h2 client's windows are 64 KiB: 2 MB only arrive as it releases capacity.
    let origin = origin(2_000_000).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let send = h2c(addr).await;
    let (a, b) = tokio::join!(h2_get(&send, "/"), h2_get(&send, "/"));
    assert_eq!(a.unwrap().body.len(), 2_000_000);
    assert_eq!(b.unwrap().body.len(), 2_000_000);
    assert_eq!(origin.requests(), 2);
    assert_eq!(server.counters().completed, 2);
}

#[tokio::test]
async fn an_origin_failure_is_answered_502_on_the_stream() {
    let (server, addr) = h2_proxy(vec![dead_addr()], |_| {});
    let send = h2c(addr).await;
    let r = h2_get(&send, "/").await.unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(server.counters().errors.get("connect"), Some(&1));
}

#[tokio::test]
async fn tls_offers_h2_and_http1_on_one_listener() {
    use rustls::pki_types::ServerName;
    let origin = origin(300).await;
    let (tls, cert) = super::super::tls::tls_config();
    let (server, addr) = h2_proxy(vec![origin.addr()], |c| c.tls = Some(tls));
    let connect = |alpn: &'static [u8]| {
        let cert = cert.clone();
        async move {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(cert).unwrap();
            let mut cfg =
                rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            cfg.alpn_protocols = vec![alpn.to_vec()];
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                .connect(name, tcp)
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
            tls
        }
    };
    let send = h2_over(connect(b"h2").await).await;
    let a = h2_get(&send, "/").await.unwrap();
    assert_eq!((a.status, a.body.len()), (200, 300));
    let mut h1 = connect(b"http/1.1").await;
    h1.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    let _ = timeout(limit(), h1.read_to_end(&mut all)).await.unwrap();
    assert!(
        all.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&all)
    );
    assert_eq!(origin.requests(), 2);
    assert_eq!(server.counters().completed, 2);
}

/// A burst of HTTP/2 connections, all queued before the proxy accepts, is served by
/// every serving thread alike (each connection's requests on the thread that serves
/// it): not by the one thread that happened to accept the burst.
#[tokio::test]
async fn h2_connections_opened_at_once_are_spread_over_the_serving_threads() {
    let origin = origin(1000).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config::new(vec![addr], vec![origin.addr()]);
    cfg.http2.enabled = true;
    let server = Server::start_held(vec![listener], Arc::new(cfg), ID).unwrap();
    let threads = crate::serve::threads::thread_count();
    let per_thread = 5;
    let n = per_thread * threads;
    // Every connection is queued in the backlog before any thread accepts one.
    let mut queued = Vec::new();
    for _ in 0..n {
        queued.push(TcpStream::connect(addr).await.unwrap());
    }
    server.open_gate();
    let mut clients = Vec::new();
    for tcp in queued {
        clients.push(h2_over(tcp).await);
    }
    // Each thread serves 2 requests per connection it holds.
    for send in &clients {
        for _ in 0..2 {
            let r = h2_get(send, "/").await.unwrap();
            assert_eq!((r.status, r.body.len()), (200, 1000));
        }
    }
    assert_eq!(origin.requests(), 2 * n as u64);
    let served: Vec<u64> = (0..threads)
        .map(|i| server.shared.counters.thread(i).completed_now())
        .collect();
    assert_eq!(served, vec![2 * per_thread as u64; threads]);
    assert_eq!(server.shared.balance.loads(), vec![per_thread; threads]);
    let counted = server.counters();
    assert_eq!(
        (counted.accepted, counted.completed),
        (n as u64, 2 * n as u64)
    );
}

/// The streams of one connection reach the origin together: 10 requests to an origin
/// that answers none of them until all 10 have arrived are all forwarded (no stream waits
/// for another's response), then all complete.
#[tokio::test]
async fn h2_streams_of_one_connection_wait_for_the_origin_together_not_in_turn() {
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |_| {});
    let send = h2c(addr).await;
    let n = 10;
    let streams: Vec<_> = (0..n)
        .map(|_| {
            let send = send.clone();
            tokio::spawn(async move { h2_get(&send, "/slow").await })
        })
        .collect();
    for _ in 0..n {
        origin.arrival("/slow").await;
    }
    assert_eq!(origin.served(), 0);
    origin.gate.send_replace(true);
    for s in streams {
        let r = timeout(limit(), s).await.unwrap().unwrap().unwrap();
        assert_eq!((r.status, r.body), (200, b"hello".to_vec()));
    }
    assert_eq!(origin.served(), n);
    assert_eq!(server.counters().completed, n);
}

#[tokio::test]
async fn a_stream_cut_by_the_end_of_its_connection_is_counted_aborted() {
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.drain.linger = Duration::from_secs(60);
    });
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/slow").await;
    origin.arrival("/slow").await;
    // The client goes away with the stream waiting for the origin's answer.
    drop(raw);
    let mut open = server.shared.open.subscribe();
    timeout(limit(), open.wait_for(|n| *n == 0))
        .await
        .unwrap()
        .unwrap();
    let c = server.counters();
    assert_eq!((c.forwarded, c.completed, c.aborted), (1, 0, 1));
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    origin.gate.send_replace(true);
}

/// A body whose length the origin gave ends with END_STREAM on its last DATA frame, not on
/// an empty DATA frame after it; every byte arrives, in frames of at most 16 KiB.
#[tokio::test]
async fn a_body_of_known_length_ends_on_its_last_data_frame() {
    let origin = origin(40_000).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    let frames = raw.until(|f| ends(f, 1)).await;
    let data: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.kind == DATA && f.stream == 1)
        .collect();
    let sizes: Vec<usize> = data.iter().map(|f| f.payload.len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 40_000, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n > 0 && n <= 16_384), "{sizes:?}");
    let last = frames.last().unwrap();
    assert_eq!((last.kind, last.flags & END_STREAM), (DATA, END_STREAM));
    assert_eq!(origin.requests(), 1);
    assert_eq!(server.counters().completed, 1);
}

/// The answer to HEAD gives the body's length but has no body: the stream still ends (with
/// no DATA bytes), and the next request on the connection is served.
#[tokio::test]
async fn a_head_response_with_a_length_and_no_body_ends_its_stream() {
    let origin = origin(40_000).await;
    let (server, addr) = h2_proxy(vec![origin.addr()], |_| {});
    let mut raw = Raw::connect(addr).await;
    let fields = [
        (":method", "HEAD"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/"),
    ];
    raw.write(&Raw::headers_bytes(1, &fields, true)).await;
    let frames = raw.until(|f| ends(f, 1)).await;
    let body: usize = frames
        .iter()
        .filter(|f| f.kind == DATA)
        .map(|f| f.payload.len())
        .sum();
    assert_eq!(body, 0, "{frames:?}");
    raw.get(3, "/").await;
    let frames = raw.until(|f| ends(f, 3)).await;
    let body: usize = frames
        .iter()
        .filter(|f| f.kind == DATA && f.stream == 3)
        .map(|f| f.payload.len())
        .sum();
    assert_eq!(body, 40_000);
    assert_eq!(origin.requests(), 2);
    assert_eq!(server.counters().completed, 2);
}

#[tokio::test]
async fn the_drain_deadline_counts_an_h2_connection_with_streams_in_flight_as_cut_and_its_streams()
{
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.drain.deadline = Duration::from_millis(300);
    });
    let mut raw = Raw::connect(addr).await;
    for id in [1, 3, 5] {
        raw.get(id, "/slow").await;
        origin.arrival("/slow").await;
    }
    // The origin never answers: the three streams are in flight at the deadline.
    let report = timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(
        (report.forced, report.cut, report.cut_requests),
        (1, 1, 3),
        "{report:?}"
    );
    assert_eq!(origin.served(), 0);
}
