//! The origin's book of its long-lived endpoints: the WebSockets of `/ws`
//! (opened, and how each ended: closed by the client, closed by the origin
//! with its close code, or cut; messages received and echoed) and the
//! streamed responses of `/stream` (started, complete, cut). It goes into
//! the origin's ledger ([`reloadbench_model::ledger::OriginLedger::ws`] and
//! [`reloadbench_model::ledger::OriginLedger::streams`]), so a harness can
//! check loadgen's `--ws` and `--stream` counts against it.
//!
//! Counters are atomics, bumped once per event; the close codes sit behind a
//! mutex taken once per closing WebSocket. Each open WebSocket holds a
//! [`WsOpen`]: the book knows how many are live, so a stopping origin can
//! wait until each has been counted ([`LongBook::ws_all_ended`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reloadbench_model::ws::{CloseCodeCount, OriginStreamLedger, OriginWsEnd, OriginWsLedger};
use tokio::sync::watch;

/// What the long-lived endpoints counted.
#[derive(Debug)]
pub(crate) struct LongBook {
    ws_opened: AtomicU64,
    ws_by_client: AtomicU64,
    ws_by_server: AtomicU64,
    ws_cut: AtomicU64,
    server_codes: Mutex<BTreeMap<u16, u64>>,
    received: AtomicU64,
    echoed: AtomicU64,
    streams_started: AtomicU64,
    streams_complete: AtomicU64,
    streams_cut: AtomicU64,
    /// WebSockets opened and not yet counted as ended.
    live: watch::Sender<u64>,
}

impl Default for LongBook {
    fn default() -> LongBook {
        LongBook {
            ws_opened: AtomicU64::new(0),
            ws_by_client: AtomicU64::new(0),
            ws_by_server: AtomicU64::new(0),
            ws_cut: AtomicU64::new(0),
            server_codes: Mutex::new(BTreeMap::new()),
            received: AtomicU64::new(0),
            echoed: AtomicU64::new(0),
            streams_started: AtomicU64::new(0),
            streams_complete: AtomicU64::new(0),
            streams_cut: AtomicU64::new(0),
            live: watch::Sender::new(0),
        }
    }
}

/// One open WebSocket: ended exactly once, by [`WsOpen::ended`] or, if the
/// task is dropped first, as cut.
pub(crate) struct WsOpen {
    book: Arc<LongBook>,
    ended: bool,
}

impl WsOpen {
    /// Counts how the WebSocket ended (`code`: the origin's close code,
    /// for [`OriginWsEnd::ClosedByServer`]).
    pub(crate) fn ended(mut self, end: OriginWsEnd, code: Option<u16>) {
        self.ended = true;
        self.book.ws_end(end, code);
    }

    /// A data message was read.
    pub(crate) fn received(&self) {
        self.book.received.fetch_add(1, Ordering::Relaxed);
    }

    /// A data message was echoed.
    pub(crate) fn echoed(&self) {
        self.book.echoed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for WsOpen {
    fn drop(&mut self) {
        if !self.ended {
            self.book.ws_end(OriginWsEnd::Cut, None);
        }
    }
}

/// One streamed response: complete when dropped after its last chunk, cut
/// when dropped before.
pub(crate) struct StreamOpen {
    book: Arc<LongBook>,
    complete: bool,
}

impl StreamOpen {
    /// Its last chunk was handed to the connection.
    pub(crate) fn complete(&mut self) {
        self.complete = true;
    }
}

impl Drop for StreamOpen {
    fn drop(&mut self) {
        let c = if self.complete {
            &self.book.streams_complete
        } else {
            &self.book.streams_cut
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl LongBook {
    /// Counts a WebSocket that opened; its [`WsOpen`] counts its end.
    pub(crate) fn ws_opened(self: &Arc<Self>) -> WsOpen {
        self.ws_opened.fetch_add(1, Ordering::Relaxed);
        self.live.send_modify(|n| *n += 1);
        WsOpen {
            book: self.clone(),
            ended: false,
        }
    }

    fn ws_end(&self, end: OriginWsEnd, code: Option<u16>) {
        let c = match end {
            OriginWsEnd::ClosedByClient => &self.ws_by_client,
            OriginWsEnd::ClosedByServer => &self.ws_by_server,
            OriginWsEnd::Cut => &self.ws_cut,
        };
        if let (OriginWsEnd::ClosedByServer, Some(code)) = (end, code) {
            let mut codes = self.server_codes.lock().unwrap_or_else(|e| e.into_inner());
            *codes.entry(code).or_default() += 1;
        }
        c.fetch_add(1, Ordering::Relaxed);
        self.live.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Counts a streamed response that started; its [`StreamOpen`] counts
    /// how it ended.
    pub(crate) fn stream_started(self: &Arc<Self>) -> StreamOpen {
        self.streams_started.fetch_add(1, Ordering::Relaxed);
        StreamOpen {
            book: self.clone(),
            complete: false,
        }
    }

    /// Waits (at most `limit`) until every opened WebSocket was counted as
    /// ended; false when some were still open.
    pub(crate) async fn ws_all_ended(&self, limit: Duration) -> bool {
        let mut rx = self.live.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The `/ws` counts so far (exact once the origin stopped; while it
    /// runs, `open` may include a connection that ended as it was read).
    pub(crate) fn ws_ledger(&self) -> OriginWsLedger {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        // Ends first: an end is counted after its open, so `open` never underflows.
        let (by_client, by_server, cut) = (
            get(&self.ws_by_client),
            get(&self.ws_by_server),
            get(&self.ws_cut),
        );
        let codes = self
            .server_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(code, count)| CloseCodeCount {
                code: *code,
                count: *count,
            })
            .collect();
        let opened = get(&self.ws_opened);
        OriginWsLedger {
            opened,
            closed_by_client: by_client,
            closed_by_server: by_server,
            server_close_codes: codes,
            cut,
            open: opened.saturating_sub(by_client + by_server + cut),
            messages_received: get(&self.received),
            messages_echoed: get(&self.echoed),
        }
    }

    /// The `/stream` counts so far.
    pub(crate) fn streams_ledger(&self) -> OriginStreamLedger {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (complete, cut) = (get(&self.streams_complete), get(&self.streams_cut));
        let started = get(&self.streams_started);
        OriginStreamLedger {
            started,
            complete,
            cut,
            open: started.saturating_sub(complete + cut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_websocket_and_stream_ends_once() {
        let book = Arc::new(LongBook::default());
        let a = book.ws_opened();
        let b = book.ws_opened();
        let c = book.ws_opened();
        let d = book.ws_opened();
        let _e = book.ws_opened();
        a.received();
        a.echoed();
        a.received();
        a.ended(OriginWsEnd::ClosedByClient, None);
        b.ended(OriginWsEnd::ClosedByServer, Some(1001));
        c.ended(OriginWsEnd::ClosedByServer, Some(1000));
        drop(d);
        let l = book.ws_ledger();
        assert_eq!(
            (
                l.opened,
                l.closed_by_client,
                l.closed_by_server,
                l.cut,
                l.open
            ),
            (5, 1, 2, 1, 1)
        );
        assert_eq!((l.messages_received, l.messages_echoed), (2, 1));
        let codes: Vec<(u16, u64)> = l
            .server_close_codes
            .iter()
            .map(|c| (c.code, c.count))
            .collect();
        assert_eq!(codes, vec![(1000, 1), (1001, 1)]);
        assert_eq!(*book.live.borrow(), 1);

        let mut s1 = book.stream_started();
        let s2 = book.stream_started();
        let _s3 = book.stream_started();
        s1.complete();
        drop(s1);
        drop(s2);
        let s = book.streams_ledger();
        assert_eq!((s.started, s.complete, s.cut, s.open), (3, 1, 1, 1));
    }

    #[tokio::test]
    async fn waits_until_every_websocket_ended() {
        let book = Arc::new(LongBook::default());
        assert!(book.ws_all_ended(Duration::ZERO).await);
        let open = book.ws_opened();
        assert!(!book.ws_all_ended(Duration::from_millis(1)).await);
        let waiter = {
            let book = book.clone();
            tokio::spawn(async move { book.ws_all_ended(Duration::from_secs(60)).await })
        };
        open.ended(OriginWsEnd::Cut, None);
        assert!(waiter.await.unwrap());
    }
}
