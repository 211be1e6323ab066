//! Premature resets ("open, wait, reset"): a client that resets streams just after
//! refproxy forwarded them has its connection closed with `GOAWAY ENHANCE_YOUR_CALM`
//! once it passes `limits.h2_max_premature_resets`; honest clients that reset a few
//! streams, or old ones, keep theirs. The gated origin records every request it got.

use ::h2::Reason;

use super::super::exchange_origin::{Bodies, Event, exchange_origin};
use super::*;

const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;
/// Streams the attacker opens (and resets) at once.
const BATCH: u32 = 3;
/// Rounds the attacker tries before it gives up.
const ROUNDS: u32 = 20;

/// What the attacker's connection saw.
struct Attack {
    /// The GOAWAY (last-stream-id, code), if one came.
    goaway: Option<(u32, u32)>,
    /// Its requests the origin was seen to receive during the attack.
    reached: u32,
    /// The highest stream id it opened.
    highest: u32,
}

/// What the attacker's streams ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `GET /slow`.
    Get,
    /// An extended CONNECT (WebSocket over HTTP/2) for `/slow`: the origin holds the
    /// upgrade request, so no `101` comes before the reset.
    WebSocket,
}

impl Shape {
    /// The request's fields for `/slow`.
    fn fields(self) -> Vec<(&'static str, &'static str)> {
        self.fields_for("/slow")
    }

    /// The request's fields for `path`.
    fn fields_for(self, path: &'static str) -> Vec<(&'static str, &'static str)> {
        match self {
            Shape::Get => vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "localhost"),
                (":path", path),
            ],
            Shape::WebSocket => vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":authority", "localhost"),
                (":path", path),
                ("sec-websocket-version", "13"),
            ],
        }
    }
}

/// A plain `CONNECT`, which refproxy answers itself (501) without an origin.
const PLAIN_CONNECT: &[(&str, &str)] = &[(":method", "CONNECT"), (":authority", "localhost:443")];

/// Round after round: opens [`BATCH`] streams of `shape` for `/slow` (which the origin
/// holds), waits until the origin has each request, and resets them (CANCEL), then
/// opens `pad` plain `CONNECT` streams and waits for their answers (refproxy's own 501,
/// counted in `padded`), until a GOAWAY comes or after [`ROUNDS`] rounds. After each
/// round the honest connection gets one response (its 200s are counted in `honest_ok`).
async fn attack(
    addr: SocketAddr,
    origin: &mut GatedOrigin,
    honest: &SendRequest<Bytes>,
    honest_ok: &mut u64,
    shape: Shape,
    pad: u32,
    padded: &mut u64,
) -> Attack {
    let mut raw = Raw::connect(addr).await;
    let (mut next, mut reached) = (1u32, 0u32);
    for _ in 0..ROUNDS {
        let ids: Vec<u32> = (0..BATCH).map(|i| next + 2 * i).collect();
        next += 2 * BATCH;
        for &id in &ids {
            // The proxy may have closed already (its GOAWAY is read below).
            let _ = raw
                .stream
                .write_all(&Raw::headers_bytes(id, &shape.fields(), true))
                .await;
        }
        let mut arrived = 0;
        while arrived < BATCH {
            tokio::select! {
                () = origin.arrival("/slow") => arrived += 1,
                f = raw.frame() => match f {
                    Some(f) if f.kind == GOAWAY => {
                        // Its streams are all done once refproxy closes.
                        raw.until_closed().await;
                        return Attack {
                            goaway: Some(f.goaway()),
                            reached: reached + arrived,
                            highest: next - 2,
                        };
                    }
                    Some(_) => {}
                    None => panic!("connection ended without a GOAWAY"),
                },
            }
        }
        reached += arrived;
        for &id in &ids {
            let rst = Raw::frame_bytes(RST_STREAM, 0, id, &CANCEL.to_be_bytes());
            let _ = raw.stream.write_all(&rst).await;
        }
        let pads: Vec<u32> = (0..pad).map(|i| next + 2 * i).collect();
        next += 2 * pad;
        for &id in &pads {
            let _ = raw
                .stream
                .write_all(&Raw::headers_bytes(id, PLAIN_CONNECT, true))
                .await;
        }
        let mut answered = 0;
        while answered < pad {
            match raw.frame().await {
                Some(f) if f.kind == GOAWAY => {
                    for f in raw.until_closed().await {
                        *padded += u64::from(pads.iter().any(|&id| ends(&f, id)));
                    }
                    return Attack {
                        goaway: Some(f.goaway()),
                        reached,
                        highest: next - 2,
                    };
                }
                Some(f) if pads.iter().any(|&id| ends(&f, id)) => {
                    answered += 1;
                    *padded += 1;
                }
                Some(f) => assert!(
                    !pads.contains(&f.stream) || f.kind != RST_STREAM,
                    "a padding stream reset: {f:?}"
                ),
                None => panic!("connection ended without a GOAWAY"),
            }
        }
        let ok = h2_get(honest, "/").await.unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"hello"[..]));
        *honest_ok += 1;
    }
    Attack {
        goaway: None,
        reached,
        highest: next - 2,
    }
}

/// Waits until the origin has seen `n` more `/slow` requests (ones forwarded before the
/// attacker's connection closed but not yet read by the test), then checks it sees no
/// more.
async fn more_arrivals(origin: &mut GatedOrigin, n: u64) {
    for _ in 0..n {
        origin.arrival("/slow").await;
    }
    while let Ok(path) = origin.arrived.try_recv() {
        assert_ne!(
            path, "/slow",
            "more requests reached the origin than forwarded"
        );
    }
}

#[tokio::test]
async fn premature_resets_beyond_the_limit_get_goaway_enhance_your_calm_and_others_are_served() {
    attacker_trips(Shape::Get, 0).await;
}

/// Streams refproxy answers itself (a plain `CONNECT`: 501) are not forwarded and do not
/// count: twice as many of them as resets per round do not hide the resets (they did
/// when every ended stream counted: 3 resets among any 10 ends never reached 6).
#[tokio::test]
async fn streams_answered_without_an_origin_do_not_pad_the_premature_reset_account() {
    attacker_trips(Shape::Get, 2 * BATCH).await;
}

/// A WebSocket over HTTP/2 reset before the origin's `101` cost an origin connection
/// like any forwarded stream: it counts as a premature reset.
#[tokio::test]
async fn websocket_streams_reset_before_the_101_are_premature_resets() {
    attacker_trips(Shape::WebSocket, 0).await;
}

/// The attacker of `shape`, padding each round with `pad` plain CONNECTs, against
/// `limits.h2_max_premature_resets = 5`: `GOAWAY ENHANCE_YOUR_CALM` once it passes the
/// limit, the honest connection served meanwhile, counts checked against the origin's.
async fn attacker_trips(shape: Shape, pad: u32) {
    const MAX: u32 = 5;
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.max_premature_resets = MAX;
        // Far longer than a round takes, even on a loaded machine.
        c.http2.premature_reset_window = Duration::from_secs(10);
    });
    let honest = h2c(addr).await;
    let mut honest_ok = 0;
    let mut padded = 0;
    let got = attack(
        addr,
        &mut origin,
        &honest,
        &mut honest_ok,
        shape,
        pad,
        &mut padded,
    )
    .await;
    let (last, code) = got.goaway.expect("a GOAWAY before the attacker gave up");
    assert_eq!(code, ENHANCE_YOUR_CALM);
    // The stream whose reset tripped it was taken; at most the next batch after it.
    // Each round opens BATCH + pad streams; the (MAX + 1)th reset is in the round
    // MAX / BATCH (from 0).
    let before = (MAX / BATCH) * (BATCH + pad) + MAX % BATCH;
    assert!(
        (2 * before + 1..=got.highest).contains(&last),
        "last-stream-id {last}, highest opened {}",
        got.highest
    );
    // The honest connection goes on meanwhile.
    for _ in 0..5 {
        assert_eq!(h2_get(&honest, "/").await.unwrap().status, 200);
        honest_ok += 1;
    }
    let counted = server.counters();
    assert_eq!(
        counted.errors.get("premature_reset"),
        Some(&1),
        "{counted:?}"
    );
    // The padding answered by refproxy (501), as the client counted it: all of it, but
    // for answers of the last round that the GOAWAY cut.
    let bad = counted.errors.get("bad_request").copied().unwrap_or(0);
    assert!(
        (padded..=padded + u64::from(pad)).contains(&bad),
        "{padded} answers seen, {counted:?}"
    );
    assert_eq!(
        counted.errors.len(),
        1 + usize::from(bad > 0),
        "{counted:?}"
    );
    // Every attacker request forwarded reached the origin: the limit's resets, plus
    // at most a batch in flight when it tripped.
    let forwarded = counted.forwarded - honest_ok;
    more_arrivals(&mut origin, forwarded - u64::from(got.reached)).await;
    assert!(
        (u64::from(MAX) + 1..=u64::from(MAX + 1 + BATCH)).contains(&forwarded),
        "{forwarded} attacker requests reached the origin"
    );
    // Each attacker stream refproxy took is aborted (reset by the client, or ended by
    // the GOAWAY); none answered; the honest ones all completed, as the origin counts.
    assert!(
        (forwarded..=u64::from(last.div_ceil(2))).contains(&counted.aborted),
        "{counted:?}, last-stream-id {last}"
    );
    assert_eq!(counted.completed, honest_ok);
    assert_eq!(origin.served(), honest_ok);
}

/// The control: with the guard off (0), the same attacker runs all its rounds, every
/// request of it reaching the origin.
#[tokio::test]
async fn premature_resets_go_on_unchecked_with_the_guard_off() {
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.max_premature_resets = 0;
        c.http2.premature_reset_window = Duration::from_secs(10);
    });
    let honest = h2c(addr).await;
    let mut honest_ok = 0;
    let got = attack(
        addr,
        &mut origin,
        &honest,
        &mut honest_ok,
        Shape::Get,
        0,
        &mut 0,
    )
    .await;
    assert_eq!(got.goaway, None);
    assert_eq!(got.reached, ROUNDS * BATCH);
    let counted = server.counters();
    assert_eq!(counted.errors.get("premature_reset"), None, "{counted:?}");
    assert_eq!(counted.forwarded - honest_ok, u64::from(ROUNDS * BATCH));
    assert_eq!(origin.served(), honest_ok);
}

/// Opens a `/slow` stream on `send` and waits until the origin has its request; the
/// stream's sending half (to reset it) and its response (kept so that the stream lives).
async fn slow_stream(
    send: &SendRequest<Bytes>,
    origin: &mut GatedOrigin,
) -> (::h2::SendStream<Bytes>, ::h2::client::ResponseFuture) {
    let mut send = timeout(limit(), send.clone().ready())
        .await
        .unwrap()
        .unwrap();
    let req = ::http::Request::get("http://localhost/slow")
        .body(())
        .unwrap();
    let (resp, stream) = send.send_request(req, true).unwrap();
    origin.arrival("/slow").await;
    (stream, resp)
}

#[tokio::test]
async fn an_honest_client_that_resets_a_few_streams_or_old_ones_keeps_its_connection() {
    const MAX: u32 = 5;
    const WINDOW: Duration = Duration::from_millis(300);
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.max_premature_resets = MAX;
        c.http2.premature_reset_window = WINDOW;
    });
    let send = h2c(addr).await;
    let (mut ok, mut slow) = (0u64, 0u64);
    let get_all = async |n: u64, ok: &mut u64| {
        for _ in 0..n {
            let r = h2_get(&send, "/").await.unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
            *ok += 1;
        }
    };
    // A few streams cancelled young (a page left): as many as the limit, not more.
    let young = async |origin: &mut GatedOrigin, slow: &mut u64| {
        let mut held = Vec::new();
        for _ in 0..MAX {
            held.push(slow_stream(&send, origin).await);
            *slow += 1;
        }
        for (stream, _) in &mut held {
            stream.send_reset(Reason::CANCEL);
        }
    };
    young(&mut origin, &mut slow).await;
    get_all(3, &mut ok).await;
    // Long downloads cancelled once they are older than the window: refproxy forwarded
    // each (took an origin slot for it) before its request reached the origin, so a
    // reset sent a window after the last arrival comes at least a window after each was
    // forwarded (this wait is the subject of the test, not a synchronisation).
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(slow_stream(&send, &mut origin).await);
        slow += 1;
    }
    tokio::time::sleep(WINDOW + Duration::from_millis(50)).await;
    for (stream, _) in &mut held {
        stream.send_reset(Reason::CANCEL);
    }
    // Enough answers to leave the first young resets behind the span the guard judges
    // (the last 2 × MAX streams), then as many young resets again.
    get_all(2 * u64::from(MAX), &mut ok).await;
    young(&mut origin, &mut slow).await;
    get_all(5, &mut ok).await;
    let counted = server.counters();
    assert_eq!(counted.errors.get("premature_reset"), None, "{counted:?}");
    assert_eq!(counted.completed, ok);
    assert_eq!(origin.served(), ok);
    assert_eq!(counted.forwarded, ok + slow);
    // Each reset stream counted aborted, once it has seen its reset.
    timeout(limit(), async {
        while server.counters().aborted < slow {
            // A poll of the server's counters, which signal nothing.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("every reset stream counted");
    assert_eq!(server.counters().aborted, slow);
}

/// Body length of `/big`: far more than the client's stream window (65,535 bytes, never
/// opened) and every buffer on the way, so that its response is in the middle of its
/// body when the client resets it.
const BIG: usize = 64 << 20;

/// Resets that come while refproxy relays a response body (the relay then fails on the
/// stream too) count as premature resets every time: the `(MAX + 1)`th trips it, as the
/// origin's own count of the exchanges cut says. (They counted about half the time when
/// the relay's failure and the reset raced.)
#[tokio::test]
async fn resets_in_the_middle_of_a_response_body_are_premature_resets() {
    const MAX: u32 = 10;
    let mut origin = exchange_origin(Bodies { big: BIG, huge: 0 }).await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.max_premature_resets = MAX;
        c.http2.premature_reset_window = Duration::from_secs(10);
    });
    let mut raw = Raw::connect(addr).await;
    // The connection window wide open: each stream stops at its own window only.
    raw.send(WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes())
        .await;
    let mut cut = 0u32;
    for n in 1..=3 * MAX {
        let id = 2 * n - 1;
        let _ = raw
            .stream
            .write_all(&Raw::headers_bytes(
                id,
                &Shape::Get.fields_for("/big"),
                true,
            ))
            .await;
        // The response's first DATA (its body under way), or the GOAWAY.
        let goaway = loop {
            match raw.frame().await {
                Some(f) if f.kind == GOAWAY => break Some(f.goaway()),
                Some(f) if f.kind == DATA && f.stream == id => break None,
                Some(f) => assert_ne!(f.kind, RST_STREAM, "{f:?}"),
                None => panic!("connection ended without a GOAWAY"),
            }
        };
        if let Some((last, code)) = goaway {
            assert_eq!(code, ENHANCE_YOUR_CALM);
            // The (MAX + 1)th stream's reset tripped it, before the next was taken.
            assert_eq!((last, cut), (2 * (MAX + 1) - 1, MAX + 1));
            raw.until_closed().await;
            let counted = server.counters();
            assert_eq!(
                counted.errors.get("premature_reset"),
                Some(&1),
                "{counted:?}"
            );
            assert_eq!(counted.forwarded, u64::from(cut), "{counted:?}");
            assert_eq!(counted.aborted, u64::from(cut), "{counted:?}");
            assert_eq!(origin.started(), u64::from(cut));
            return;
        }
        let rst = Raw::frame_bytes(RST_STREAM, 0, id, &CANCEL.to_be_bytes());
        raw.write(&rst).await;
        // The origin sees its exchange cut: refproxy gave the stream up (and told the
        // account) before it closed the origin connection.
        origin.wait(Event::Ended("/big".to_owned(), false)).await;
        cut += 1;
    }
    panic!("no GOAWAY after {cut} streams reset in the middle of their bodies");
}

/// Streams reset while they wait for a place in their connection's share of the origin
/// slots were never forwarded: they are not premature resets, however young (a browser
/// leaving a page whose resources wait behind the share).
#[tokio::test]
async fn streams_reset_while_waiting_for_an_origin_slot_are_not_premature_resets() {
    const MAX: u32 = 3;
    const WAITING: u32 = 10;
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.max_premature_resets = MAX;
        c.http2.premature_reset_window = Duration::from_secs(10);
        c.http2.max_origin_slots_per_connection = Some(1);
        // The waiting streams wait for the test, not for a timeout.
        c.timeouts.connect = limit();
    });
    let mut raw = Raw::connect(addr).await;
    raw.get(1, "/slow").await;
    origin.arrival("/slow").await;
    for i in 0..WAITING {
        raw.get(3 + 2 * i, "/slow").await;
    }
    // A plain CONNECT after them: refproxy answers it (501) only once it has taken it,
    // so every stream before it too (streams are taken in order).
    let marker = 3 + 2 * WAITING;
    raw.write(&Raw::headers_bytes(marker, PLAIN_CONNECT, true))
        .await;
    raw.until(|f| ends(f, marker)).await;
    for i in 0..WAITING {
        raw.send(RST_STREAM, 0, 3 + 2 * i, &CANCEL.to_be_bytes())
            .await;
    }
    timeout(limit(), async {
        while server.counters().aborted < u64::from(WAITING) {
            // A poll of the server's counters, which signal nothing.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("every reset stream counted");
    // The connection goes on: the held stream is answered, then a new one.
    origin.gate.send_replace(true);
    let seen = raw.until(|f| ends(f, 1)).await;
    raw.get(marker + 2, "/").await;
    let more = raw.until(|f| ends(f, marker + 2)).await;
    for f in seen.iter().chain(&more) {
        assert!(f.kind != GOAWAY && f.kind != RST_STREAM, "{f:?}");
    }
    let counted = server.counters();
    assert_eq!(counted.errors.get("premature_reset"), None, "{counted:?}");
    assert_eq!(counted.aborted, u64::from(WAITING), "{counted:?}");
    assert_eq!(
        (counted.forwarded, counted.completed),
        (2, 2),
        "{counted:?}"
    );
    assert_eq!(origin.served(), 2);
}

/// With the defaults (`h2_max_premature_resets = 250`, `h2_premature_reset_window = 1s`),
/// a browser that leaves two pages of 100 resources each, all of them forwarded and
/// reset young, keeps its connection (200 premature resets, under the limit).
#[tokio::test]
async fn leaving_two_pages_of_100_resources_stays_under_the_default_limit() {
    const PAGE: u32 = 100;
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        // Every resource forwarded at once (the default share would hold some back,
        // and those would not count).
        c.http2.max_origin_slots_per_connection = Some(PAGE);
    });
    let mut raw = Raw::connect(addr).await;
    let mut next = 1;
    for page in 1..=2u64 {
        let ids: Vec<u32> = (0..PAGE).map(|i| next + 2 * i).collect();
        next += 2 * PAGE;
        for &id in &ids {
            raw.get(id, "/slow").await;
        }
        for _ in 0..PAGE {
            origin.arrival("/slow").await;
        }
        for &id in &ids {
            raw.send(RST_STREAM, 0, id, &CANCEL.to_be_bytes()).await;
        }
        timeout(limit(), async {
            while server.counters().aborted < page * u64::from(PAGE) {
                // A poll of the server's counters, which signal nothing.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("every reset stream counted");
    }
    raw.get(next, "/").await;
    for f in raw.until(|f| ends(f, next)).await {
        assert!(f.kind != GOAWAY && f.kind != RST_STREAM, "{f:?}");
    }
    let counted = server.counters();
    assert_eq!(counted.errors.get("premature_reset"), None, "{counted:?}");
    assert_eq!(counted.forwarded, 2 * u64::from(PAGE) + 1, "{counted:?}");
    assert_eq!(origin.served(), 1);
}
