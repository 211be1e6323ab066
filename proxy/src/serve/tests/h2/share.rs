//! One client connection cannot take every origin slot: an HTTP/2 connection's streams
//! hold at most its share (`limits.h2_max_origin_slots_per_connection`), an HTTP/1.1
//! connection one slot even when it pipelines, and a stream whose client stops taking
//! its response is reset after `timeouts.body`, its origin connection closed. Counts
//! are checked against an origin written here that counts its own exchanges.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Body length of `/big`: more than every socket buffer between the origin and a
/// client that does not read, so its exchange stays in progress.
const BIG: usize = 64 << 20;

/// What the counting origin did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A request for this path arrived.
    Started(String),
    /// The exchange for this path ended: its response written in full (`true`), or the
    /// connection failed (`false`).
    Ended(String, bool),
}

/// An HTTP/1.1 origin that counts its exchanges in progress: one is in progress from
/// its head's arrival until its response was written in full or the connection failed.
/// `/big` gets a [`BIG`] body, anything else 5 bytes.
struct CountingOrigin {
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
    /// `/big` exchanges in progress, now and at most.
    big_now: Arc<AtomicUsize>,
    big_peak: Arc<AtomicUsize>,
}

async fn counting_origin() -> CountingOrigin {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let big_now = Arc::new(AtomicUsize::new(0));
    let big_peak = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (big_now.clone(), big_peak.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(counting_conn(s, tx.clone(), now.clone(), peak.clone()));
        }
    });
    CountingOrigin {
        addr,
        events,
        big_now,
        big_peak,
    }
}

/// One origin connection: requests without bodies, answered in turn.
async fn counting_conn(
    mut s: TcpStream,
    tx: mpsc::UnboundedSender<Event>,
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
) {
    static CHUNK: [u8; 65536] = [b'x'; 65536];
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = head_end(&buf) {
                break end;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let big = path == "/big";
        if big {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
        }
        let _ = tx.send(Event::Started(path.clone()));
        let len = if big { BIG } else { 5 };
        let mut written = s
            .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").as_bytes())
            .await;
        let mut left = len;
        while written.is_ok() && left > 0 {
            let n = left.min(CHUNK.len());
            written = s.write_all(&CHUNK[..n]).await;
            left -= n;
        }
        if big {
            now.fetch_sub(1, Ordering::SeqCst);
        }
        let _ = tx.send(Event::Ended(path, written.is_ok()));
        if written.is_err() {
            return;
        }
    }
}

impl CountingOrigin {
    /// Waits for `event`; the other events on the way are skipped.
    async fn wait(&mut self, event: Event) {
        loop {
            let got = timeout(limit(), self.events.recv()).await.unwrap().unwrap();
            if got == event {
                return;
            }
        }
    }

    /// Waits until `n` requests for `path` have arrived.
    async fn started(&mut self, path: &str, n: usize) {
        for _ in 0..n {
            self.wait(Event::Started(path.to_owned())).await;
        }
    }
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
    origin.started("/big", 12).await;
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
    assert_eq!(origin.big_peak.load(Ordering::SeqCst), 12);
    assert_eq!(origin.big_now.load(Ordering::SeqCst), 12);
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
    assert_eq!(origin.big_now.load(Ordering::SeqCst), 0);
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
    assert_eq!(origin.big_peak.load(Ordering::SeqCst), 1);
    assert_eq!(server.counters().forwarded, 1 + 5);
}
