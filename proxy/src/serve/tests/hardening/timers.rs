//! Timers around bodies and idle connections, stale pooled connections, and configured
//! durations too large to add to an instant.

use super::*;

/// Every timer of the proxy at 2 s or less.
fn tight_timers(c: &mut Config) {
    c.timeouts.request = Duration::from_secs(1);
    c.timeouts.idle = Duration::from_secs(2);
    c.timeouts.header_read = Duration::from_secs(1);
    c.timeouts.body = Duration::from_secs(2);
}

#[tokio::test]
async fn client_stalling_in_its_body_is_not_answered_504() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |c| {
        c.timeouts.request = Duration::from_secs(1);
        c.timeouts.body = Duration::from_secs(1);
    });
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
        .await;
    // 408 (RFC 9110 15.5.9), or a close without a response; never 504.
    if let Some((status, _)) = timeout(limit(), next_head(&mut c)).await.unwrap() {
        assert_ne!(status, 504);
    }
}

#[tokio::test]
async fn origin_stalling_mid_body_does_not_hold_the_client_forever() {
    let origin = listen_with(false, |mut s, _| async move {
        let mut buf = Vec::new();
        if read_head(&mut s, &mut buf).await.is_some() {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                .await;
            // Then nothing more, until the proxy goes away.
            while fill_from(&mut s, &mut buf).await {}
        }
    })
    .await;
    let (server, addr) = proxy(vec![origin], tight_timers);
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (status, _) = next_head(&mut c).await.expect("a response head");
    assert_eq!(status, 200);
    // Every timer of the proxy is at most 2 s here; 15 s of silence is far beyond.
    assert!(
        ends_within(&mut c, scaled(Duration::from_secs(15))).await,
        "client connection still open, {} open in all",
        server.connections()
    );
}

#[tokio::test]
async fn huge_timeouts_from_a_valid_config_do_not_panic() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\norigins = [\"{}\"]\n[timeouts]\nidle = \"500000000000years\"\nheader_read = \"500000000000years\"\n",
        origin.addr
    );
    let parsed = crate::config::parse(&text, std::path::Path::new("t.toml")).expect("valid");
    let (_server, addr) = proxy(vec![origin.addr], |c| c.timeouts = parsed.timeouts);
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHo").await;
    c.send(b"st: t\r\n\r\n").await;
    let r = final_response(&mut c, false).await;
    assert_eq!(r.map(|r| r.status), Some(200));
}

#[tokio::test]
async fn pooled_connection_closed_by_the_origin_is_released_at_the_next_sweep() {
    let (released, mut seen) = tokio::sync::watch::channel(0usize);
    let r2 = Arc::new(released);
    let origin = listen_with(false, move |mut s, _| {
        let released = r2.clone();
        async move {
            let mut buf = Vec::new();
            if read_head(&mut s, &mut buf).await.is_none() {
                return;
            }
            let _ = s.write_all(&ok(b"ok")).await;
            // The origin's own keep-alive timeout: it closes its side at once.
            let _ = s.shutdown().await;
            while fill_from(&mut s, &mut buf).await {}
            released.send_modify(|n| *n += 1);
        }
    })
    .await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(
        final_response(&mut c, false)
            .await
            .expect("a response")
            .status,
        200
    );
    // No traffic follows: the pool sweep (every second) must release the connection
    // the origin closed.
    let released = timeout(limit(), seen.wait_for(|n| *n >= 1)).await;
    assert!(released.is_ok(), "proxy still holds the origin connection");
}

#[tokio::test]
async fn fresh_connection_sending_nothing_is_closed_at_header_read() {
    let origin = Recorder::start(|_, _| Act::Keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |c| {
        c.timeouts.header_read = Duration::from_millis(500);
        c.timeouts.idle = Duration::from_secs(60);
    });
    let mut c = Client::connect(addr).await;
    let start = Instant::now();
    assert!(
        ends_within(&mut c, scaled(Duration::from_secs(10))).await,
        "silent connection still open after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn heavy_client_that_stops_reading_does_not_hold_the_connection_forever() {
    // Built before any request: making 32 MiB in a debug build can take longer than
    // the proxy's 1 s request timeout on a loaded machine (a 504, not what is tested).
    let body = Arc::new(pattern(32 << 20));
    let origin = listen_with(false, move |mut s, _| {
        let body = body.clone();
        async move {
            let mut buf = Vec::new();
            if read_head(&mut s, &mut buf).await.is_some() {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                if s.write_all(head.as_bytes()).await.is_ok() {
                    let _ = s.write_all(&body[..]).await;
                }
                while fill_from(&mut s, &mut buf).await {}
            }
        }
    })
    .await;
    let (server, addr) = proxy(vec![origin], tight_timers);
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let stream = timeout(limit(), socket.connect(addr))
        .await
        .unwrap()
        .unwrap();
    let mut c = Client {
        stream,
        buf: Vec::new(),
    };
    c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (status, _) = next_head(&mut c).await.expect("a response head");
    assert_eq!(status, 200);
    // The client reads nothing more; every timer of the proxy is at most 2 s.
    let mut open = server.shared.open.subscribe();
    let closed = timeout(scaled(Duration::from_secs(15)), open.wait_for(|n| *n == 0)).await;
    assert!(
        closed.is_ok(),
        "{} client connection(s) still open",
        server.connections()
    );
}
