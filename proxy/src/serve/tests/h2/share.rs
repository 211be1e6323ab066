//! One client connection cannot take every origin slot: an HTTP/2 connection's streams
//! hold at most its share (`limits.h2_max_origin_slots_per_connection`), an HTTP/1.1
//! connection one slot even when it pipelines, and a stream whose client stops taking
//! its response is reset after `timeouts.body`, its origin connection closed. Counts
//! are checked against an origin written here that counts its own exchanges.

use super::super::exchange_origin::{Bodies, Event, ExchangeOrigin, exchange_origin};
use super::*;

/// Body length of `/big`: more than every socket buffer between the origin and a
/// client that does not read, so its exchange stays in progress.
const BIG: usize = 64 << 20;

/// The origin of these tests ([`exchange_origin`]): `/big` gets a [`BIG`] body.
async fn counting_origin() -> ExchangeOrigin {
    exchange_origin(Bodies { big: BIG, huge: 0 }).await
}

/// A raw h2 connection that opens its connection window wide but never a stream's:
/// each response stops after the 65,535 bytes of the initial stream window.
async fn window_never_opened(addr: SocketAddr) -> Raw {
    let mut raw = Raw::connect(addr).await;
    raw.send(WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes())
        .await;
    raw
}

/// The scaled-down attack: 3 connections of 10 streams each that never take their
/// responses (`/big`, stream windows never opened) on a proxy with 16 origin slots and a
/// share of 4 per connection. Only 3 x 4 of them reach the origin (its own count); the
/// 18 others wait for their connection's share and get 502 (`no_slot`) after
/// `timeouts.connect`; an honest client meanwhile gets its 20 answers, all 200, the
/// stalled streams' slots untouched.
#[tokio::test]
async fn stalled_h2_connections_hold_only_their_share_of_origin_slots_and_others_are_served() {
    let mut origin = counting_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.limits.origin_connections = 16;
        c.http2.max_origin_slots_per_connection = Some(4);
        c.timeouts.connect = scaled(Duration::from_secs(2));
    });
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut raw = window_never_opened(addr).await;
        for i in 0..10 {
            raw.get(1 + 2 * i, "/big").await;
        }
        stalled.push(raw);
    }
    origin.arrivals("/big", 12).await;
    // The honest client, while the stalled streams hold their slots and the others wait.
    let send = h2c(addr).await;
    let honest: Vec<_> = (0..20)
        .map(|_| {
            let send = send.clone();
            tokio::spawn(async move { h2_get(&send, "/").await })
        })
        .collect();
    for h in honest {
        let r = timeout(limit(), h).await.unwrap().unwrap().unwrap();
        assert_eq!((r.status, r.body.len()), (200, 5));
    }
    // Each stalled connection: 6 streams answered 502 (they end), 4 stalled (they never
    // end).
    for raw in &mut stalled {
        let mut ended = std::collections::BTreeSet::new();
        while ended.len() < 6 {
            let f = raw.frame().await.expect("the connection stays open");
            if (f.kind == DATA || f.kind == HEADERS) && f.flags & END_STREAM != 0 {
                ended.insert(f.stream);
            }
        }
    }
    assert_eq!(origin.big_peak(), 12);
    assert_eq!(origin.big_now(), 12);
    let c = server.counters();
    assert_eq!(c.errors.get("no_slot"), Some(&18), "{:?}", c.errors);
    assert_eq!(c.completed, 20);
    assert_eq!(c.forwarded, 12 + 20);
}

/// A stream whose client stops taking its response (its window stays closed) is reset
/// after `timeouts.body`, as an HTTP/1.1 response relay that cannot write is cut: the
/// origin sees its connection closed, and the stream's place in its connection's share
/// is free again (a share of 1 serves the next stream).
#[tokio::test]
async fn a_stalled_h2_stream_is_reset_after_timeouts_body_and_frees_its_origin_slot() {
    let mut origin = counting_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.limits.origin_connections = 1;
        c.http2.max_origin_slots_per_connection = Some(1);
        c.timeouts.body = Duration::from_millis(300);
    });
    let mut raw = window_never_opened(addr).await;
    raw.get(1, "/big").await;
    origin.wait(Event::Started("/big".into())).await;
    let seen = raw.until(|f| f.kind == RST_STREAM).await;
    let reset = seen.last().unwrap();
    assert_eq!(reset.stream, 1);
    let data: usize = seen
        .iter()
        .filter(|f| f.kind == DATA && f.stream == 1)
        .map(|f| f.payload.len())
        .sum();
    assert_eq!(data, 65_535, "the initial stream window, then nothing");
    origin.wait(Event::Ended("/big".into(), false)).await;
    assert_eq!(origin.big_now(), 0);
    raw.get(3, "/").await;
    raw.until(|f| ends(f, 3)).await;
    origin.wait(Event::Ended("/".into(), true)).await;
    let c = server.counters();
    assert_eq!((c.forwarded, c.completed, c.aborted), (2, 1, 1));
}

/// HTTP/1.1 pipelining takes one slot: a connection that sends 5 requests for `/big`
/// at once and reads nothing has one exchange at the origin; the next request is read
/// only after the response before it. With 2 slots, an honest client is served.
#[tokio::test]
async fn a_pipelining_http1_connection_holds_one_origin_slot() {
    let mut origin = counting_origin().await;
    let (server, addr) = proxy(vec![origin.addr], |c| c.limits.origin_connections = 2);
    let mut greedy = Client::connect(addr).await;
    greedy
        .send("GET /big HTTP/1.1\r\nhost: t\r\n\r\n".repeat(5).as_bytes())
        .await;
    origin.wait(Event::Started("/big".into())).await;
    let mut honest = Client::connect(addr).await;
    for _ in 0..5 {
        let r = honest.get("/").await;
        assert_eq!((r.status, r.body.len()), (200, 5));
    }
    assert_eq!(origin.big_peak(), 1);
    assert_eq!(server.counters().forwarded, 1 + 5);
}
