//! Premature resets ("open, wait, reset"): a client that resets streams just after
//! refproxy forwarded them has its connection closed with `GOAWAY ENHANCE_YOUR_CALM`
//! once it passes `limits.h2_max_premature_resets`; honest clients that reset a few
//! streams, or old ones, keep theirs. The gated origin records every request it got.

use ::h2::Reason;

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

/// Round after round: opens [`BATCH`] streams for `/slow` (which the origin holds), waits
/// until the origin has each request, and resets them (CANCEL), until a GOAWAY comes or
/// after [`ROUNDS`] rounds. After each round the honest connection gets one response
/// (its 200s are counted in `honest_ok`).
async fn attack(
    addr: SocketAddr,
    origin: &mut GatedOrigin,
    honest: &SendRequest<Bytes>,
    honest_ok: &mut u64,
) -> Attack {
    let mut raw = Raw::connect(addr).await;
    let (mut next, mut reached) = (1u32, 0u32);
    for _ in 0..ROUNDS {
        let ids: Vec<u32> = (0..BATCH).map(|i| next + 2 * i).collect();
        next += 2 * BATCH;
        for &id in &ids {
            let fields = [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "localhost"),
                (":path", "/slow"),
            ];
            // The proxy may have closed already (its GOAWAY is read below).
            let _ = raw
                .stream
                .write_all(&Raw::headers_bytes(id, &fields, true))
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
    const MAX: u32 = 5;
    let mut origin = gated_origin().await;
    let (server, addr) = h2_proxy(vec![origin.addr], |c| {
        c.http2.max_premature_resets = MAX;
        // Far longer than a round takes, even on a loaded machine.
        c.http2.premature_reset_window = Duration::from_secs(10);
    });
    let honest = h2c(addr).await;
    let mut honest_ok = 0;
    let got = attack(addr, &mut origin, &honest, &mut honest_ok).await;
    let (last, code) = got.goaway.expect("a GOAWAY before the attacker gave up");
    assert_eq!(code, ENHANCE_YOUR_CALM);
    // The stream whose reset tripped it was taken; at most the next batch after it.
    assert!(
        (2 * MAX + 1..=got.highest).contains(&last),
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
    assert_eq!(counted.errors.len(), 1, "{counted:?}");
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
    let got = attack(addr, &mut origin, &honest, &mut honest_ok).await;
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
