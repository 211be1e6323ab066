//! The minimum send rate of responses (`limits.min_send_rate`): clients that take a
//! response a few bytes at a time (an HTTP/2 client granting a few bytes of window per
//! tick, an HTTP/1.1 client with a tiny receive buffer reading a few bytes per tick)
//! have it cut, and the origin slots they held serve others; a client that pauses less
//! than a window, or an origin that sends slowly, is never cut. Counts are checked
//! against the origins' own counts.

use super::exchange_origin::{Bodies, Event, ExchangeOrigin, TRICKLE_CHUNKS, exchange_origin};
use super::h2::{DATA, END_STREAM, RST_STREAM, Raw, SETTINGS, WINDOW_UPDATE, h2_get, h2c};
use super::*;

/// The window of these tests: short, so that a cut comes within a second.
const WINDOW: Duration = Duration::from_millis(300);

/// How often the slow clients take a few bytes.
const TICK: Duration = Duration::from_millis(20);

/// `RST_STREAM` code ENHANCE_YOUR_CALM (RFC 9113 7).
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A proxy with the minimum send rate `rate` over [`WINDOW`] and `origin_connections`.
fn rated_proxy(origin: SocketAddr, rate: u32, slots: u32, h2: bool) -> (Server, SocketAddr) {
    proxy(vec![origin], |c| {
        c.http2.enabled = h2;
        c.limits.origin_connections = slots;
        c.limits.min_send_rate = rate;
        c.limits.min_send_rate_window = scaled(WINDOW);
    })
}

/// Body length of `/big`: more than every socket buffer between the origin and a
/// client that reads a few bytes a tick.
const BIG: usize = 16 << 20;

/// Body length of `/huge`: more than what a fast start leaves in every buffer between
/// the origin and the client.
const HUGE: usize = 96 << 20;

/// The origin of these tests ([`exchange_origin`]).
async fn test_origin() -> ExchangeOrigin {
    exchange_origin(Bodies {
        big: BIG,
        huge: HUGE,
    })
    .await
}

/// An h2 connection whose streams start with a window of 100 bytes (its connection
/// window opened wide), having read the server's SETTINGS.
async fn h2_small_window(addr: SocketAddr) -> Raw {
    let mut raw = Raw::connect(addr).await;
    // SETTINGS_INITIAL_WINDOW_SIZE = 100.
    raw.send(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 100]).await;
    raw.send(WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes())
        .await;
    raw.until(|f| f.kind == SETTINGS && f.flags == 0).await;
    raw
}

/// Grants stream 1 eight bytes of window per [`TICK`] (400 bytes/s) until the stream
/// is reset; returns the reset's code and the DATA bytes received.
async fn trickle_window(raw: &mut Raw) -> (u32, usize) {
    let mut tick = tokio::time::interval(TICK);
    let mut data = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => raw.send(WINDOW_UPDATE, 0, 1, &8u32.to_be_bytes()).await,
            f = raw.frame() => {
                let f = f.expect("the connection stays open");
                if f.stream != 1 {
                    continue;
                }
                assert!(f.kind != DATA || f.flags & END_STREAM == 0, "the whole body came");
                if f.kind == DATA {
                    data += f.payload.len();
                }
                if f.kind == RST_STREAM {
                    return (f.reset_code(), data);
                }
            }
        }
    }
}

/// Two HTTP/2 clients that grant 8 bytes of window per tick for a 512 KiB response
/// from the built-in origin hold both origin slots; below the minimum send rate
/// (1024 bytes/s) each has its stream reset (`ENHANCE_YOUR_CALM`) within a few windows,
/// both slots are free again and an honest client gets its 200. Without the minimum
/// the streams go on for `timeouts.body` of no progress, which never comes: the wait
/// for the resets fails.
#[tokio::test]
async fn h2_clients_taking_a_few_bytes_a_tick_are_reset_and_free_their_origin_slots() {
    let origin = origin(512 * 1024).await;
    let (server, addr) = rated_proxy(origin.addr(), 1024, 2, true);
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut raw = h2_small_window(addr).await;
        raw.get(1, "/").await;
        slow.push(tokio::spawn(async move {
            let cut = timeout(scaled(Duration::from_secs(10)), trickle_window(&mut raw)).await;
            (cut.expect("the slow stream is reset in time"), raw)
        }));
    }
    let mut kept = Vec::new();
    for s in slow {
        let ((code, data), raw) = s.await.unwrap();
        assert_eq!(code, ENHANCE_YOUR_CALM);
        assert!(data < 512 * 1024, "{data}");
        kept.push(raw);
    }
    let send = h2c(addr).await;
    let r = h2_get(&send, "/").await.unwrap();
    assert_eq!((r.status, r.body.len()), (200, 512 * 1024));
    drop((kept, send));
    // Every connection done: every count is final.
    timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(origin.requests(), 3);
    let c = server.counters();
    assert_eq!(c.errors.get("slow_client"), Some(&2), "{c:?}");
    assert_eq!((c.forwarded, c.completed, c.aborted), (3, 1, 0), "{c:?}");
    assert_eq!(c.errors.len(), 1, "{c:?}");
}

/// An HTTP/1.1 client with a 4 KiB receive buffer that reads 8 bytes per tick.
async fn slow_http1_client(addr: SocketAddr, path: &str) -> tokio::task::JoinHandle<()> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = timeout(limit(), socket.connect(addr))
        .await
        .unwrap()
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        let mut buf = [0u8; 8];
        loop {
            tick.tick().await;
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
}

/// Two HTTP/1.1 clients that read 8 bytes per tick through a tiny receive buffer hold
/// both origin slots; below the minimum send rate each response is cut: the origin
/// sees both its connections fail (its own count), and an honest client gets its 200.
/// Without the minimum the origin connections stay busy for `timeouts.body` of no
/// progress, which never comes: the wait for the origin's failures fails.
#[tokio::test]
async fn http1_clients_reading_a_few_bytes_a_tick_are_cut_and_free_their_origin_slots() {
    let mut origin = test_origin().await;
    // A minimum well above what the socket buffers took at once: their bytes are
    // credit for the windows after (at most 16), which at a lower minimum lasts seconds.
    let (server, addr) = rated_proxy(origin.addr, 256 * 1024, 2, false);
    let readers = [
        slow_http1_client(addr, "/big").await,
        slow_http1_client(addr, "/big").await,
    ];
    let ended = async {
        origin.wait(Event::Ended("/big".into(), false)).await;
        origin.wait(Event::Ended("/big".into(), false)).await;
    };
    timeout(scaled(Duration::from_secs(10)), ended)
        .await
        .expect("both slow responses are cut in time");
    let mut honest = Client::connect(addr).await;
    let r = honest.get("/").await;
    assert_eq!((r.status, r.body.len()), (200, 5));
    for r in readers {
        r.abort();
    }
    drop(honest);
    timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(origin.started(), 3);
    let c = server.counters();
    assert_eq!(c.errors.get("slow_client"), Some(&2), "{c:?}");
    assert_eq!((c.forwarded, c.completed, c.aborted), (3, 1, 0), "{c:?}");
    assert_eq!(c.errors.len(), 1, "{c:?}");
}

/// Clients that pause for a third of a window before they read their 16 MiB response
/// at full speed (HTTP/1.1, and HTTP/2 with the h2 client's windows) are not cut, at a
/// minimum of 64 KiB/s.
#[tokio::test]
async fn clients_pausing_less_than_a_window_then_reading_are_not_cut() {
    let origin = test_origin().await;
    let (server, addr) = rated_proxy(origin.addr, 64 * 1024, 2, true);
    let pause = scaled(WINDOW) / 3;
    let mut c = Client::connect(addr).await;
    c.send(b"GET /big HTTP/1.1\r\nhost: t\r\n\r\n").await;
    // The client's own pace, not a synchronisation.
    tokio::time::sleep(pause).await;
    let r = c.response().await;
    assert_eq!((r.status, r.body.len()), (200, BIG));
    let send = h2c(addr).await;
    let mut ready = timeout(limit(), send.ready()).await.unwrap().unwrap();
    let req = ::http::Request::get("http://localhost/big")
        .body(())
        .unwrap();
    let (resp, _) = ready.send_request(req, true).unwrap();
    let resp = timeout(limit(), resp).await.unwrap().unwrap();
    tokio::time::sleep(pause).await;
    let (parts, mut body) = resp.into_parts();
    let mut got = 0;
    while let Some(data) = timeout(limit(), body.data()).await.unwrap() {
        let data = data.unwrap();
        let _ = body.flow_control().release_capacity(data.len());
        got += data.len();
    }
    assert_eq!((parts.status.as_u16(), got), (200, BIG));
    drop((c, ready, body));
    both_served_whole(server, &origin).await;
}

/// An origin that sends its body 100 bytes per tick (5 KB/s, far below a minimum of
/// 1 MB/s) to fast clients over HTTP/1.1 and HTTP/2: the time the proxy waits on the
/// origin does not count against the clients, and neither response is cut.
#[tokio::test]
async fn a_slow_origin_does_not_get_fast_clients_cut() {
    let mut origin = test_origin().await;
    let (server, addr) = rated_proxy(origin.addr, 1_000_000, 2, true);
    let mut c = Client::connect(addr).await;
    let r = c.get("/trickle").await;
    assert_eq!((r.status, r.body.len()), (200, 100 * TRICKLE_CHUNKS));
    origin.wait(Event::Ended("/trickle".into(), true)).await;
    let send = h2c(addr).await;
    let r = h2_get(&send, "/trickle").await.unwrap();
    assert_eq!((r.status, r.body.len()), (200, 100 * TRICKLE_CHUNKS));
    origin.wait(Event::Ended("/trickle".into(), true)).await;
    drop((c, send));
    both_served_whole(server, &origin).await;
}

/// A client that reads its first 16 MiB at full speed (its receive buffer and the
/// proxy's send buffer grow to a few MiB), then 16 KiB per tick (800 KB/s, 12.5 times
/// the minimum of 64 KiB/s) for five windows: never cut. TCP then delivers in bursts
/// (the client's kernel opens its window only once a sixteenth of its buffer is free,
/// and the proxy's waiting write wakes only once a third of its buffer is), so some
/// windows see no progress; without the credit earlier windows leave, the response
/// was cut (3 runs of 3).
#[tokio::test]
async fn a_client_reading_fast_then_steadily_above_the_rate_is_not_cut() {
    let origin = test_origin().await;
    let (server, addr) = rated_proxy(origin.addr, 64 * 1024, 2, false);
    let mut s = timeout(limit(), TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    s.write_all(b"GET /huge HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < 16 << 20 {
        let n = timeout(limit(), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the response ended after {got} bytes");
        got += n;
    }
    let slow_for = scaled(WINDOW) * 5;
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(TICK);
    while start.elapsed() < slow_for {
        tick.tick().await;
        let mut left = 16 * 1024;
        while left > 0 {
            let n = timeout(limit(), s.read(&mut buf[..left]))
                .await
                .unwrap()
                .unwrap();
            assert!(
                n > 0,
                "cut after {got} bytes, {:?} into the slow part",
                start.elapsed()
            );
            got += n;
            left -= n;
        }
    }
    drop(s);
    timeout(limit(), server.drain()).await.unwrap();
    let c = server.counters();
    assert!(c.errors.is_empty(), "{c:?}");
    assert_eq!((c.forwarded, c.aborted), (1, 1), "{c:?}");
}

/// An HTTP/2 connection on which the client gives window to stream 3 only: stream 1
/// waits with no progress of its own for three windows while the connection takes far
/// more than the minimum. The streams of a connection share its bandwidth, and h2 does
/// not share it evenly, so a stream is held to the connection's progress: stream 1 is
/// not cut (per stream, it was reset after a window).
#[tokio::test]
async fn an_h2_stream_waiting_while_its_connection_progresses_is_not_cut() {
    let origin = test_origin().await;
    let (server, addr) = proxy(vec![origin.addr], |c| {
        c.http2.enabled = true;
        c.limits.origin_connections = 4;
        c.http2.max_origin_slots_per_connection = Some(4);
        c.limits.min_send_rate = 64 * 1024;
        c.limits.min_send_rate_window = scaled(WINDOW);
    });
    let mut raw = Raw::connect(addr).await;
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream sends until given window.
    raw.send(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]).await;
    raw.send(WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes())
        .await;
    raw.until(|f| f.kind == SETTINGS && f.flags == 0).await;
    raw.get(1, "/big").await;
    raw.get(3, "/big").await;
    let slow_for = scaled(WINDOW) * 3;
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(TICK);
    let mut data = [0usize; 2];
    while start.elapsed() < slow_for {
        tick.tick().await;
        // 32 KiB per tick for stream 3 (1.6 MB/s), read before the next grant.
        raw.send(WINDOW_UPDATE, 0, 3, &(32u32 * 1024).to_be_bytes())
            .await;
        let target = data[1] + 32 * 1024;
        while data[1] < target {
            let f = raw.frame().await.expect("the connection stays open");
            assert!(f.kind != RST_STREAM, "stream {} reset: {f:?}", f.stream);
            if f.kind == DATA {
                data[usize::from(f.stream == 3)] += f.payload.len();
            }
        }
    }
    assert_eq!(data[0], 0, "stream 1 got no window");
    drop(raw);
    timeout(limit(), server.drain()).await.unwrap();
    let c = server.counters();
    assert!(c.errors.is_empty(), "{c:?}");
    assert_eq!((c.forwarded, c.aborted), (2, 2), "{c:?}");
}

/// Drains `server` and checks that its two requests reached the origin and were both
/// answered in full: nothing aborted, nothing cut.
async fn both_served_whole(server: Server, origin: &ExchangeOrigin) {
    timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(origin.started(), 2);
    let c = server.counters();
    assert_eq!((c.forwarded, c.completed, c.aborted), (2, 2, 0), "{c:?}");
    assert!(c.errors.is_empty(), "{c:?}");
}
