//! An HTTP/1.1 origin written for the tests, which says what it did: each request's
//! arrival and the end of its exchange (the response written in full, or the connection
//! failed) on a channel, the requests it read, and the exchanges in progress for its
//! big path (now and at most). `/big` gets [`Bodies::big`] bytes at once, `/huge`
//! [`Bodies::huge`], `/trickle` [`TRICKLE_CHUNKS`] chunks of 100 bytes, one per
//! [`TRICKLE_TICK`], anything else 5 bytes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::*;

/// Chunks of `/trickle`.
pub(super) const TRICKLE_CHUNKS: usize = 20;

/// The pace of `/trickle`: a chunk of 100 bytes per tick.
pub(super) const TRICKLE_TICK: Duration = Duration::from_millis(20);

/// Body lengths of `/big` and `/huge`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bodies {
    pub(super) big: usize,
    pub(super) huge: usize,
}

/// What the origin did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    /// A request for this path arrived.
    Started(String),
    /// The exchange for this path ended: its response written in full (`true`), or the
    /// connection failed (`false`).
    Ended(String, bool),
}

/// The origin's address and what it said.
pub(super) struct ExchangeOrigin {
    pub(super) addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
    counts: Arc<Counts>,
}

/// The origin's own counts.
#[derive(Default)]
struct Counts {
    /// Requests read.
    started: AtomicU64,
    /// `/big` exchanges in progress, now and at most.
    big_now: AtomicUsize,
    big_peak: AtomicUsize,
}

/// Starts the origin with these body lengths.
pub(super) async fn exchange_origin(bodies: Bodies) -> ExchangeOrigin {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(exchanges(s, bodies, tx.clone(), c.clone()));
        }
    });
    ExchangeOrigin {
        addr,
        events,
        counts,
    }
}

/// One origin connection: requests without bodies, answered in turn.
async fn exchanges(
    mut s: TcpStream,
    bodies: Bodies,
    tx: mpsc::UnboundedSender<Event>,
    counts: Arc<Counts>,
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
        counts.started.fetch_add(1, Ordering::SeqCst);
        let big = path == "/big";
        if big {
            let n = counts.big_now.fetch_add(1, Ordering::SeqCst) + 1;
            counts.big_peak.fetch_max(n, Ordering::SeqCst);
        }
        let _ = tx.send(Event::Started(path.clone()));
        let (len, trickle) = match path.as_str() {
            "/big" => (bodies.big, false),
            "/huge" => (bodies.huge, false),
            "/trickle" => (100 * TRICKLE_CHUNKS, true),
            _ => (5, false),
        };
        let mut written = s
            .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").as_bytes())
            .await;
        let mut left = len;
        while written.is_ok() && left > 0 {
            let n = left.min(if trickle { 100 } else { CHUNK.len() });
            if trickle {
                // The origin's own pace, not a synchronisation.
                tokio::time::sleep(TRICKLE_TICK).await;
            }
            written = s.write_all(&CHUNK[..n]).await;
            left -= n;
        }
        if big {
            counts.big_now.fetch_sub(1, Ordering::SeqCst);
        }
        let _ = tx.send(Event::Ended(path, written.is_ok()));
        if written.is_err() {
            return;
        }
    }
}

impl ExchangeOrigin {
    /// Waits for `event`; the other events on the way are skipped.
    pub(super) async fn wait(&mut self, event: Event) {
        loop {
            let got = timeout(limit(), self.events.recv()).await.unwrap().unwrap();
            if got == event {
                return;
            }
        }
    }

    /// Waits until `n` requests for `path` have arrived.
    pub(super) async fn arrivals(&mut self, path: &str, n: usize) {
        for _ in 0..n {
            self.wait(Event::Started(path.to_owned())).await;
        }
    }

    /// Requests read so far.
    pub(super) fn started(&self) -> u64 {
        self.counts.started.load(Ordering::SeqCst)
    }

    /// `/big` exchanges in progress now.
    pub(super) fn big_now(&self) -> usize {
        self.counts.big_now.load(Ordering::SeqCst)
    }

    /// The most `/big` exchanges in progress at once so far.
    pub(super) fn big_peak(&self) -> usize {
        self.counts.big_peak.load(Ordering::SeqCst)
    }
}
