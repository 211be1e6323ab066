//! The budget of premature ends per client address, across its connections: an attacker
//! on 127.0.0.2 that cuts forwarded streams by closing its connections, or resets them
//! and reconnects, is refused (`GOAWAY ENHANCE_YOUR_CALM`, last-stream-id 0) once its
//! address's bucket is empty, while an honest client on 127.0.0.1 is served; an honest
//! client that cancels a few streams and closes its connections after their responses
//! is never stopped. The gated origin records every request it got (the attacker's are
//! `/slow`, which it holds; the honest client's `/`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use super::*;

const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The attacker's streams per connection.
const K: u32 = 5;
const BURST: u32 = 20;
const RATE: u32 = 1;
/// Connections the attacker tries before it gives up.
const ROUNDS: u32 = 12;

/// How the attacker ends each connection after its streams were forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// Closes it (FIN) with the streams open.
    Close,
    /// Resets each stream (CANCEL), then asks for `/` (answered at once) and waits for
    /// its response (or a GOAWAY), so that the resets are judged on the open connection;
    /// then closes it.
    ResetThenClose,
}

/// What one attacker connection saw.
#[derive(Debug)]
enum Round {
    /// `GOAWAY` with last-stream-id 0 before any stream: refused.
    Refused(u32),
    /// Its `K` streams reached the origin; the GOAWAY it got before the end, if any;
    /// whether it asked for `/` and got its response.
    Served {
        goaway: Option<(u32, u32)>,
        asked: bool,
        answered: bool,
    },
}

/// One attacker connection from [`ATTACKER`]: `K` `/slow` streams, each waited for at
/// the origin, then left as `leave` says; reads to the end of the connection (refproxy
/// closes it once it has counted the streams cut).
async fn round(addr: SocketAddr, origin: &mut GatedOrigin, leave: Leave) -> Round {
    let mut raw = Raw::connect_from(addr, ATTACKER).await;
    let ids: Vec<u32> = (0..K).map(|i| 1 + 2 * i).collect();
    for &id in &ids {
        // The proxy may have refused the connection already (its GOAWAY is read below).
        let _ = raw
            .stream
            .write_all(&Raw::headers_bytes(id, &get("/slow"), true))
            .await;
    }
    let mut arrived = 0;
    while arrived < K {
        tokio::select! {
            () = origin.arrival("/slow") => arrived += 1,
            f = raw.frame() => match f {
                Some(f) if f.kind == GOAWAY => {
                    let (last, code) = f.goaway();
                    assert_eq!((last, arrived), (0, 0), "a GOAWAY after streams were taken");
                    raw.until_closed().await;
                    return Round::Refused(code);
                }
                Some(_) => {}
                None => panic!("connection ended without a GOAWAY"),
            },
        }
    }
    let (mut goaway, mut answered) = (None, false);
    let asked = leave == Leave::ResetThenClose;
    if asked {
        for &id in &ids {
            let rst = Raw::frame_bytes(RST_STREAM, 0, id, &CANCEL.to_be_bytes());
            let _ = raw.stream.write_all(&rst).await;
        }
        let id = 1 + 2 * K;
        let _ = raw
            .stream
            .write_all(&Raw::headers_bytes(id, &get("/"), true))
            .await;
        let seen = raw.until(|f| ends(f, id) || f.kind == GOAWAY).await;
        if let Some(f) = seen.last().filter(|f| f.kind == GOAWAY) {
            goaway = Some(f.goaway());
        } else {
            answered = seen.last().is_some_and(|f| f.kind != RST_STREAM);
        }
    }
    // A FIN: refproxy ends the connection, counts the streams it cut, and only then
    // closes its side (the EOF read here).
    let _ = raw.stream.shutdown().await;
    for f in raw.until_closed().await {
        if f.kind == GOAWAY {
            goaway.get_or_insert(f.goaway());
        }
    }
    Round::Served {
        goaway,
        asked,
        answered,
    }
}

fn get(path: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", path),
    ]
}

/// What an attack of [`ROUNDS`] connections did.
struct Attack {
    /// The round (from 0) whose connection was refused first.
    refused_at: Option<u32>,
    /// Connections refused (the first refusal and one more try after it).
    refused: u64,
    /// GOAWAY ENHANCE_YOUR_CALM on connections whose streams were taken.
    calmed: u64,
    /// Attacker requests the origin got.
    reached: u64,
    /// Responses the honest client got meanwhile (one per round).
    honest_ok: u64,
    /// `/` asked by the attacker, and answered.
    asked: u64,
    answered: u64,
    elapsed: Duration,
}

/// Connections from [`ATTACKER`] left as `leave` says, until one is refused (then one
/// more, refused too) or [`ROUNDS`]; the honest client on 127.0.0.1 gets a response
/// after each.
async fn attack(
    addr: SocketAddr,
    origin: &mut GatedOrigin,
    honest: &SendRequest<Bytes>,
    leave: Leave,
) -> Attack {
    let start = Instant::now();
    let mut a = Attack {
        refused_at: None,
        refused: 0,
        calmed: 0,
        reached: 0,
        honest_ok: 0,
        asked: 0,
        answered: 0,
        elapsed: Duration::ZERO,
    };
    for n in 0..ROUNDS {
        match round(addr, origin, leave).await {
            Round::Refused(code) => {
                assert_eq!(code, ENHANCE_YOUR_CALM);
                a.refused += 1;
                a.refused_at.get_or_insert(n);
            }
            Round::Served {
                goaway,
                asked,
                answered,
            } => {
                a.reached += u64::from(K);
                a.asked += u64::from(asked);
                a.answered += u64::from(answered);
                if let Some((_, code)) = goaway {
                    assert_eq!(code, ENHANCE_YOUR_CALM);
                    a.calmed += 1;
                }
            }
        }
        let ok = h2_get(honest, "/").await.unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"hello"[..]));
        a.honest_ok += 1;
        if a.refused == 2 {
            break;
        }
    }
    a.elapsed = start.elapsed();
    a
}

/// A proxy with the budget at `rate` (0: off), [`BURST`], a window far longer than the
/// test, and room for each connection's `K` streams at once.
fn budget_proxy(origin: SocketAddr, rate: u32, burst: u32) -> (Server, SocketAddr) {
    h2_proxy(vec![origin], |c| {
        c.http2.address_premature_resets_per_second = rate;
        c.http2.address_premature_resets_burst = burst;
        c.http2.premature_reset_window = Duration::from_secs(60);
        c.http2.max_origin_slots_per_connection = Some(K);
    })
}

/// The attacker, stopped: refused once its cuts took the burst, having reached the
/// origin at most `BURST + K` times plus the refill; the honest client served; counts
/// checked against the origin's.
async fn attacker_is_stopped(leave: Leave) {
    let mut origin = gated_origin().await;
    let (server, addr) = budget_proxy(origin.addr, RATE, BURST);
    let honest = h2c(addr).await;
    let a = attack(addr, &mut origin, &honest, leave).await;
    let refused_at = a.refused_at.expect("the attacker refused");
    assert_eq!(a.refused, 2, "each connection after the burst is refused");
    let refill = u64::from(RATE) * (a.elapsed.as_secs() + 1);
    assert!(
        (u64::from(BURST)..=u64::from(BURST + K) + refill).contains(&a.reached),
        "{} attacker requests reached the origin, refused at round {refused_at}, refill {refill}",
        a.reached
    );
    let counted = server.counters();
    assert_eq!(
        counted.errors.get("address_premature_reset").copied(),
        Some(a.refused + a.calmed),
        "{counted:?}"
    );
    assert_eq!(counted.errors.get("premature_reset"), None, "{counted:?}");
    // Every attacker `/slow` request forwarded reached the origin, none answered; the
    // honest requests all completed, and the attacker's `/` that were answered.
    let ok = a.honest_ok + a.answered;
    assert!(
        (a.reached + ok..=a.reached + a.honest_ok + a.asked).contains(&counted.forwarded),
        "{counted:?}"
    );
    assert_eq!(counted.completed, ok, "{counted:?}");
    assert!(origin.served() >= ok);
    while let Ok(path) = origin.arrived.try_recv() {
        assert_ne!(path, "/slow", "more attacker requests than counted");
    }
    // After the attack, the honest address is still served.
    assert_eq!(h2_get(&honest, "/").await.unwrap().status, 200);
}

#[tokio::test]
async fn an_address_that_closes_connections_under_forwarded_streams_is_refused_after_its_burst() {
    attacker_is_stopped(Leave::Close).await;
}

#[tokio::test]
async fn an_address_that_resets_streams_and_reconnects_is_refused_after_its_burst() {
    attacker_is_stopped(Leave::ResetThenClose).await;
}

/// A connection pays, when it ends, for all its premature ends beyond the streams it let
/// finish, however few tokens its address had left when it was let in: with a burst of
/// 16 and 5 resets and 1 answer per connection (4 charged each), the 5th connection is
/// refused; 2 s later the address has 2 tokens back and the next connection is let in,
/// and its 4 put the address in debt, so the one after it is refused again.
#[tokio::test]
async fn a_connection_let_in_with_a_token_left_pays_for_all_its_premature_ends() {
    const BURST: u32 = 16;
    let mut origin = gated_origin().await;
    let (server, addr) = budget_proxy(origin.addr, RATE, BURST);
    let honest = h2c(addr).await;
    let a = attack(addr, &mut origin, &honest, Leave::ResetThenClose).await;
    assert_eq!((a.refused_at, a.calmed), (Some(4), 0));
    // The refill is the subject of the test: 2 tokens back at 1 per second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(matches!(
        round(addr, &mut origin, Leave::ResetThenClose).await,
        Round::Served { .. }
    ));
    assert!(matches!(
        round(addr, &mut origin, Leave::ResetThenClose).await,
        Round::Refused(ENHANCE_YOUR_CALM)
    ));
    let counted = server.counters();
    assert_eq!(
        counted.errors.get("address_premature_reset").copied(),
        Some(a.refused + 1),
        "{counted:?}"
    );
}

/// A client that ends its connections with forwarded streams in flight after many
/// answered ones (a benchmark ending each run, loadgen or h2load at the end of `-t`) is
/// not charged for them: 30 answers, then 5 `/slow` streams forwarded and the
/// connection closed, more times than the burst would allow if the cuts were charged.
#[tokio::test]
async fn connections_that_end_with_streams_in_flight_after_many_answers_are_not_charged() {
    const ANSWERED: u32 = 30;
    let mut origin = gated_origin().await;
    let (server, addr) = budget_proxy(origin.addr, RATE, BURST);
    let rounds = 2 * BURST / K;
    for _ in 0..rounds {
        let mut raw = Raw::connect_from(addr, ATTACKER).await;
        for i in 0..ANSWERED {
            answered(&mut raw, 1 + 2 * i).await;
        }
        for i in 0..K {
            raw.get(1 + 2 * (ANSWERED + i), "/slow").await;
            origin.arrival("/slow").await;
        }
        closed_without_goaway(raw).await;
    }
    let counted = server.counters();
    assert_eq!(
        counted.errors.get("address_premature_reset"),
        None,
        "{counted:?}"
    );
    assert_eq!(
        counted.completed,
        u64::from(rounds * ANSWERED),
        "{counted:?}"
    );
    assert_eq!(
        counted.forwarded,
        u64::from(rounds * (ANSWERED + K)),
        "{counted:?}"
    );
}

/// The control: with the budget off (rate 0), the attacker that closes its connections
/// runs all its rounds, every request of it reaching the origin.
#[tokio::test]
async fn closing_connections_under_forwarded_streams_goes_on_unchecked_with_the_budget_off() {
    let mut origin = gated_origin().await;
    let (server, addr) = budget_proxy(origin.addr, 0, BURST);
    let honest = h2c(addr).await;
    let a = attack(addr, &mut origin, &honest, Leave::Close).await;
    assert_eq!(a.refused_at, None);
    assert_eq!(a.reached, u64::from(ROUNDS * K));
    assert!(a.reached > u64::from(BURST + K) + 1);
    let counted = server.counters();
    assert_eq!(
        counted.errors.get("address_premature_reset"),
        None,
        "{counted:?}"
    );
    assert_eq!(counted.forwarded, a.reached + a.honest_ok, "{counted:?}");
}

/// An honest client on one address: more connections than the burst, each with a few
/// responses and one stream cancelled young (fewer cancels in all than the burst), each
/// closed after its responses ended: never refused, never sent a GOAWAY, as the origin's
/// count of its responses says. Closing a connection with no forwarded stream in flight
/// costs no token (else the closes alone would empty the burst).
#[tokio::test]
async fn an_honest_address_that_cancels_a_few_streams_and_closes_its_connections_is_not_stopped() {
    const CONNECTIONS: u32 = 2 * BURST;
    const CANCELLING: u32 = BURST - 5;
    let mut origin = gated_origin().await;
    let (server, addr) = budget_proxy(origin.addr, RATE, BURST);
    let (mut ok, mut cancelled) = (0u64, 0u64);
    for n in 0..CONNECTIONS {
        let mut raw = Raw::connect_from(addr, ATTACKER).await;
        for id in [1, 3, 5] {
            answered(&mut raw, id).await;
            ok += 1;
        }
        if n < CANCELLING {
            raw.get(7, "/slow").await;
            origin.arrival("/slow").await;
            raw.send(RST_STREAM, 0, 7, &CANCEL.to_be_bytes()).await;
            cancelled += 1;
        }
        closed_without_goaway(raw).await;
    }
    let counted = server.counters();
    assert_eq!(
        counted.errors.get("address_premature_reset"),
        None,
        "{counted:?}"
    );
    assert_eq!(counted.completed, ok, "{counted:?}");
    assert_eq!(origin.served(), ok);
    assert_eq!(counted.forwarded, ok + cancelled, "{counted:?}");
}

/// Asks for `/` on stream `id` and reads its whole answer: no GOAWAY, no reset on the way.
async fn answered(raw: &mut Raw, id: u32) {
    raw.get(id, "/").await;
    for f in raw.until(|f| ends(f, id)).await {
        assert!(f.kind != GOAWAY && f.kind != RST_STREAM, "{f:?}");
    }
}

/// Closes the connection and reads it to its end: no GOAWAY came.
async fn closed_without_goaway(mut raw: Raw) {
    let _ = raw.stream.shutdown().await;
    for f in raw.until_closed().await {
        assert_ne!(f.kind, GOAWAY, "{f:?}");
    }
}
