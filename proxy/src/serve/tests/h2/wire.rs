//! The graceful close of HTTP/2 connections, read frame by frame: the first GOAWAY
//! (2^31-1) and the PING, the final GOAWAY naming the last stream answered, the streams
//! in flight finishing, idle connections told at the drain's start.

use std::time::{Duration, Instant};

use super::*;

const MAX_ID: u32 = 0x7fff_ffff;

/// Long timers, so that only the drain itself can close anything in these tests.
fn patient(c: &mut Config) {
    c.drain.deadline = Duration::from_secs(120);
    c.drain.idle_close = Duration::from_secs(120);
    c.timeouts.idle = Duration::from_secs(120);
    c.http2.ping_interval = Duration::from_secs(120);
    c.http2.ping_timeout = Duration::from_secs(120);
}

#[tokio::test]
async fn drain_sends_two_goaways_with_a_ping_between_and_the_stream_in_flight_finishes() {
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], patient);
    let server = Arc::new(server);
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    raw.until(|f| ends(f, 1)).await;
    raw.get(3, "/slow").await;
    origin.arrival("/slow").await;

    let drain = spawn_drain(&server);
    let first = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(first.last().unwrap().goaway(), (MAX_ID, 0), "{first:?}");
    let ping = raw.until(|f| f.kind == PING && f.flags & ACK == 0).await;
    // Nothing but the PING between the two: no stream was reset.
    assert_eq!(ping.len(), 1, "{ping:?}");
    let ping = ping.last().unwrap().clone();
    raw.send(PING, ACK, 0, &ping.payload).await;
    let last = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(last.len(), 1, "{last:?}");
    // The final GOAWAY names the highest stream refproxy took: the one in flight.
    assert_eq!(last[0].goaway(), (3, 0));

    // The stream in flight is answered in full, then the connection closes.
    origin.gate.send_replace(true);
    let rest = raw.until(|f| ends(f, 3)).await;
    assert!(rest.iter().all(|f| f.kind != RST_STREAM), "{rest:?}");
    assert!(
        rest.iter().any(|f| f.kind == HEADERS && f.stream == 3),
        "{rest:?}"
    );
    let tail = raw.until_closed().await;
    assert!(
        tail.iter()
            .all(|f| f.kind != RST_STREAM && f.kind != GOAWAY),
        "{tail:?}"
    );

    let report = timeout(limit(), drain).await.unwrap().unwrap();
    // (`open_at_start` is taken once every accept loop has ended, which may be after
    // the connection closed on a loaded machine: not checked.)
    assert_eq!(report.forced, 0);
    // Two streams answered, as the origin counted.
    assert_eq!(origin.served(), 2);
    let counted = server.counters();
    assert_eq!(
        (counted.forwarded, counted.completed, counted.aborted),
        (2, 2, 0)
    );
    assert!(counted.errors.is_empty(), "{:?}", counted.errors);
}

#[tokio::test]
async fn an_idle_h2_connection_gets_its_goaway_at_the_drain_start() {
    let origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], patient);
    let server = Arc::new(server);
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    raw.until(|f| ends(f, 1)).await;

    let start = Instant::now();
    let drain = spawn_drain(&server);
    let first = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(first.last().unwrap().goaway(), (MAX_ID, 0));
    // At once, not after the idle timers (120 s here) nor after a next request.
    assert!(
        start.elapsed() < scaled(Duration::from_secs(10)),
        "{:?}",
        start.elapsed()
    );
    let ping = raw.until(|f| f.kind == PING && f.flags & ACK == 0).await;
    raw.send(PING, ACK, 0, &ping.last().unwrap().payload).await;
    let last = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(last.last().unwrap().goaway(), (1, 0));
    raw.until_closed().await;
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    // (`open_at_start` is taken once every accept loop has ended, which may be after
    // the connection closed on a loaded machine: not checked.)
    assert_eq!(report.forced, 0);
    assert!(start.elapsed() < scaled(Duration::from_secs(20)));
}

#[tokio::test]
async fn a_client_that_never_acks_the_ping_gets_the_final_goaway_after_the_ping_timeout() {
    let origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        patient(c);
        c.http2.ping_timeout = Duration::from_millis(300);
    });
    let server = Arc::new(server);
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    raw.until(|f| ends(f, 1)).await;
    let drain = spawn_drain(&server);
    let seen = raw.until_closed().await;
    let goaways: Vec<(u32, u32)> = seen
        .iter()
        .filter(|f| f.kind == GOAWAY)
        .map(Frame::goaway)
        .collect();
    assert_eq!(goaways, vec![(MAX_ID, 0), (1, 0)], "{seen:?}");
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    assert_eq!(report.forced, 0);
}

#[tokio::test]
async fn an_unanswered_keepalive_ping_closes_the_connection() {
    let origin = gated_origin().await;
    let (_server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.ping_interval = Duration::from_millis(100);
        c.http2.ping_timeout = Duration::from_millis(200);
    });
    let mut raw = Raw::connect(addr).await;
    let seen = raw.until_closed().await;
    assert!(
        seen.iter().any(|f| f.kind == PING && f.flags & ACK == 0),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_answered_keepalive_ping_keeps_the_connection() {
    let origin = gated_origin().await;
    let (_server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.ping_interval = Duration::from_millis(50);
        c.http2.ping_timeout = Duration::from_millis(500);
    });
    let mut raw = Raw::connect(addr).await;
    for _ in 0..3 {
        let ping = raw.until(|f| f.kind == PING && f.flags & ACK == 0).await;
        raw.send(PING, ACK, 0, &ping.last().unwrap().payload).await;
    }
    raw.get(1, "/").await;
    let answer = raw.until(|f| ends(f, 1)).await;
    assert!(answer.iter().all(|f| f.kind != GOAWAY), "{answer:?}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_gracefully_after_the_idle_timeout() {
    let origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        patient(c);
        c.timeouts.idle = Duration::from_millis(200);
    });
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    raw.until(|f| ends(f, 1)).await;
    // Not draining: the idle timer alone starts the same two-step close.
    assert!(!server.is_draining());
    let first = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(first.last().unwrap().goaway(), (MAX_ID, 0));
    let ping = raw.until(|f| f.kind == PING && f.flags & ACK == 0).await;
    raw.send(PING, ACK, 0, &ping.last().unwrap().payload).await;
    let last = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(last.last().unwrap().goaway(), (1, 0));
    raw.until_closed().await;
    let mut open = server.shared.open.subscribe();
    timeout(limit(), open.wait_for(|n| *n == 0))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_drained_connection_lingers_so_frames_sent_after_the_last_goaway_get_no_reset() {
    let origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        patient(c);
        c.drain.linger = Duration::from_secs(60);
    });
    let server = Arc::new(server);
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/").await;
    raw.until(|f| ends(f, 1)).await;
    let drain = spawn_drain(&server);
    let ping = raw.until(|f| f.kind == PING && f.flags & ACK == 0).await;
    raw.send(PING, ACK, 0, &ping.last().unwrap().payload).await;
    let last = raw.until(|f| f.kind == GOAWAY).await;
    assert_eq!(last.last().unwrap().goaway(), (1, 0), "{last:?}");
    // refproxy is done with the connection: its FIN.
    raw.until_closed().await;
    // Frames the client sent before it read the GOAWAY arrive now. A closed socket
    // answers the first with a reset (which can take the GOAWAY and the last responses
    // from a client that has not read them yet), and the client's next write fails; a
    // lingering one reads and drops them.
    for i in 0..20 {
        let frame = Raw::frame_bytes(WINDOW_UPDATE, 0, 0, &1u32.to_be_bytes());
        let wrote = raw.stream.write_all(&frame).await;
        assert!(wrote.is_ok(), "write {i} after the last GOAWAY: {wrote:?}");
        tokio::task::yield_now().await;
    }
    // Lingering, the connection is still counted open; the client's close ends it.
    assert_eq!(server.connections(), 1);
    assert!(!drain.is_finished());
    drop(raw);
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    assert_eq!((report.forced, report.cut), (0, 0), "{report:?}");
}
