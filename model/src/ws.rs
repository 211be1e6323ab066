//! Long-lived loads: the WebSocket connections and messages of a
//! `loadgen --ws` run ([`WsReport`]) and the streaming responses of a
//! `loadgen --stream` run ([`StreamReport`]).
//!
//! One outcome per connection and one per message, never two:
//! - a connection attempt either fails to open (one [`FailureClass`], as a
//!   request's connect would) or opens; an opened connection ends exactly one
//!   way ([`ConnectionEnd`]): closed cleanly by the server, cut, or still open
//!   at the end of the run, so `opened = closed_cleanly + cut + open_at_end`;
//! - a sent message ends exactly one way ([`MessageOutcome`]): echoed, lost or
//!   late, so `sent = echoed + lost + late`.
//!
//! The same counts per time bucket ([`WsBuckets`]) add up to the totals, and
//! the built-in origin counts its side of `/ws` and `/stream`
//! ([`OriginWsLedger`], [`OriginStreamLedger`]) so the two can be compared.

use serde::{Deserialize, Serialize};

use crate::load::LatencySummary;
use crate::outcome::{AbView, FailureClass};

/// The close code of a server that goes away (RFC 6455, 1001): the polite
/// way to end a WebSocket on reload.
pub const GOING_AWAY: u16 = 1001;

/// How an opened WebSocket connection ended. One per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionEnd {
    /// The server sent a close frame (its code counted).
    ClosedCleanly,
    /// The connection ended without a close frame (EOF or reset).
    Cut,
    /// The connection was still open when the run ended.
    OpenAtEnd,
}

impl ConnectionEnd {
    /// All ends, in report order.
    pub const ALL: [ConnectionEnd; 3] = [
        ConnectionEnd::ClosedCleanly,
        ConnectionEnd::Cut,
        ConnectionEnd::OpenAtEnd,
    ];

    /// Stable snake_case key.
    pub fn key(self) -> &'static str {
        match self {
            ConnectionEnd::ClosedCleanly => "closed_cleanly",
            ConnectionEnd::Cut => "cut",
            ConnectionEnd::OpenAtEnd => "open_at_end",
        }
    }

    /// One sentence a newcomer can read next to the count.
    pub fn meaning(self) -> &'static str {
        match self {
            ConnectionEnd::ClosedCleanly => {
                "The server ended the WebSocket with a close frame (1001 Going Away is the \
                 polite reload); the client reconnects."
            }
            ConnectionEnd::Cut => {
                "The WebSocket ended without a close frame (EOF or reset): a process holding it \
                 exited or dropped it."
            }
            ConnectionEnd::OpenAtEnd => {
                "The WebSocket was still open when the run ended: it survived every reload since \
                 it opened."
            }
        }
    }
}

/// What became of a sent message. One per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageOutcome {
    /// Its echo came back within the message timeout.
    Echoed,
    /// Its connection ended before the echo came (and before the timeout).
    Lost,
    /// No echo within the message timeout on a connection that stayed open.
    Late,
}

impl MessageOutcome {
    /// All outcomes, in report order.
    pub const ALL: [MessageOutcome; 3] = [
        MessageOutcome::Echoed,
        MessageOutcome::Lost,
        MessageOutcome::Late,
    ];

    /// Stable snake_case key.
    pub fn key(self) -> &'static str {
        match self {
            MessageOutcome::Echoed => "echoed",
            MessageOutcome::Lost => "lost",
            MessageOutcome::Late => "late",
        }
    }

    /// One sentence a newcomer can read next to the count.
    pub fn meaning(self) -> &'static str {
        match self {
            MessageOutcome::Echoed => "The server echoed the message within the message timeout.",
            MessageOutcome::Lost => {
                "The message was sent but its connection ended (closed or cut) before the echo \
                 came: the message was lost with the connection."
            }
            MessageOutcome::Late => {
                "The connection stayed open but no echo came within the message timeout (it came \
                 later or never): the server stalled or dropped it."
            }
        }
    }
}

/// How many connection attempts failed to open, in one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsFailedCount {
    /// The class, as for a request that failed in the same phase.
    pub class: FailureClass,
    /// How many attempts.
    pub count: u64,
}

/// How many clean closes carried one close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseCodeCount {
    /// The code of the server's close frame (1005 when the frame had none).
    pub code: u16,
    /// How many connections.
    pub count: u64,
}

/// The WebSocket side of a `loadgen --ws` run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WsReport {
    /// Message interval per connection, in ms.
    pub message_interval_ms: u64,
    /// Bytes per message.
    pub message_bytes: u64,
    /// An echo later than this (ms) makes the message late.
    pub message_timeout_ms: u64,
    /// Pause between a connection's end and the next attempt, in ms.
    pub reconnect_delay_ms: u64,
    /// Connections opened (the upgrade was answered with 101).
    pub opened: u64,
    /// Attempts that failed to open (`sum of failed_classes`).
    pub failed: u64,
    /// The failed attempts per class (non-zero only).
    pub failed_classes: Vec<WsFailedCount>,
    /// Opened connections the server closed with a close frame.
    pub closed_cleanly: u64,
    /// The clean closes per close code, ascending.
    pub close_codes: Vec<CloseCodeCount>,
    /// Opened connections that ended without a close frame.
    pub cut: u64,
    /// Opened connections still open at the end.
    pub open_at_end: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages echoed in time.
    pub echoed: u64,
    /// Messages lost with their connection.
    pub lost: u64,
    /// Messages not echoed within the timeout.
    pub late: u64,
    /// Reconnect time (a connection's end to the next opened connection of
    /// the same client), µs.
    pub reconnect_time: LatencySummary,
    /// Echo round trip of the echoed messages, µs.
    pub echo_time: LatencySummary,
    /// Per time bucket (the run's bucket width), the non-zero counts.
    pub buckets: WsBuckets,
    /// The opening handshakes in ab's counters ([`WsReport::handshakes_ab`]):
    /// each failed attempt counted once, where a request failing with the
    /// same class is; all 0 in files written before it was counted.
    #[serde(default)]
    pub ab: AbView,
}

impl WsReport {
    /// Clean closes with code `code`.
    pub fn closed_with(&self, code: u16) -> u64 {
        self.close_codes
            .iter()
            .find(|c| c.code == code)
            .map_or(0, |c| c.count)
    }

    /// `WebSocket connections: opened N, failed F, closed cleanly C (1001: G), cut X, open at end O`.
    pub fn connections_line(&self) -> String {
        format!(
            "WebSocket connections: opened {}, failed {}, closed cleanly {} (1001: {}), cut {}, \
             open at end {}",
            self.opened,
            self.failed,
            self.closed_cleanly,
            self.closed_with(GOING_AWAY),
            self.cut,
            self.open_at_end
        )
    }

    /// The opening handshakes as ab would count requests: every attempt is
    /// one request (an opening handshake is an HTTP request), a 101 is its
    /// success and a failed attempt lands in the ab counter of its class
    /// ([`FailureClass::ab_counter`]: a refused connect in Connect, a 503 in
    /// Non-2xx, ...), so the counters add up to [`WsReport::failed`].
    ///
    /// What happens after the 101 (clean closes, cuts, lost and late
    /// messages) is in none of ab's counters: the handshake's request had
    /// completed, and counting a cut connection again as a failed request
    /// would count one connection twice; those are the WebSocket lines.
    pub fn handshakes_ab(&self) -> AbView {
        let mut v = AbView::default();
        for c in &self.failed_classes {
            v.add(c.class, c.count);
        }
        v
    }

    /// Opening handshakes attempted (ab's "Complete requests"):
    /// `opened + failed`.
    pub fn handshakes(&self) -> u64 {
        self.opened + self.failed
    }

    /// `Messages: sent S, echoed E, lost L, late T`.
    pub fn messages_line(&self) -> String {
        format!(
            "Messages: sent {}, echoed {}, lost {}, late {}",
            self.sent, self.echoed, self.lost, self.late
        )
    }
}

/// Per-bucket WebSocket counts, each a sparse column of
/// `[bucket_index, count]` pairs (bucket `i` starts at `i × width_ns`); a
/// column with no non-zero count is left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsBuckets {
    /// Bucket width, ns.
    pub width_ns: u64,
    /// Connections opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opened: Vec<(usize, u64)>,
    /// Attempts that failed to open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<(usize, u64)>,
    /// Connections closed cleanly by the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed_cleanly: Vec<(usize, u64)>,
    /// Connections cut.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<(usize, u64)>,
    /// Connections open at the end of the bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<(usize, u64)>,
    /// Messages sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<(usize, u64)>,
    /// Messages echoed (by the time of the echo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub echoed: Vec<(usize, u64)>,
    /// Messages lost (by the time their connection ended).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<(usize, u64)>,
    /// Messages late (by the time their timeout expired).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<(usize, u64)>,
    /// Reconnects (an opened connection that follows an ended one of the
    /// same client), by the time of the reopen; they add up to
    /// `reconnect_time.count`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconnects: Vec<(usize, u64)>,
    /// Median reconnect time (µs) of the bucket's reconnects; one entry for
    /// each bucket of [`WsBuckets::reconnects`] (0 µs included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconnect_p50_us: Vec<(usize, u64)>,
    /// 99th percentile reconnect time (µs), as `reconnect_p50_us`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconnect_p99_us: Vec<(usize, u64)>,
    /// Longest reconnect time (µs), as `reconnect_p50_us`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconnect_max_us: Vec<(usize, u64)>,
}

impl WsBuckets {
    /// The sum of a sparse column.
    pub fn sum(column: &[(usize, u64)]) -> u64 {
        column.iter().map(|(_, n)| n).sum()
    }

    /// The value of a sparse column at bucket `i` (0 when absent).
    pub fn at(column: &[(usize, u64)], i: usize) -> u64 {
        column
            .binary_search_by_key(&i, |(j, _)| *j)
            .map_or(0, |k| column[k].1)
    }
}

/// The streaming responses of a `loadgen --stream` run: each request is ok
/// only when its response is complete; one cut mid-body is `truncated`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamReport {
    /// Complete streamed responses (the run's `ok`).
    pub complete: u64,
    /// Responses cut mid-body (the run's `truncated` class).
    pub truncated: u64,
    /// Bytes the truncated responses had received (heads included) before
    /// the cut.
    pub truncated_bytes: u64,
}

impl StreamReport {
    /// `Streams: complete N, truncated T (B bytes received)`.
    pub fn line(&self) -> String {
        format!(
            "Streams: complete {}, truncated {} ({} bytes received)",
            self.complete, self.truncated, self.truncated_bytes
        )
    }
}

/// How one WebSocket at the built-in origin's `/ws` ended (the origin's
/// side, counted once per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginWsEnd {
    /// The client's close frame came first (the origin answered it).
    ClosedByClient,
    /// The origin sent its close frame first (1001 when it stops).
    ClosedByServer,
    /// The connection ended without a close frame either way (EOF, reset,
    /// or the origin's close frame could not be written).
    Cut,
}

/// What the built-in origin's `/ws` did, from its start until the ledger was
/// taken: `opened = closed_by_client + closed_by_server + cut + open`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginWsLedger {
    /// Upgrades answered with 101 whose WebSocket started.
    pub opened: u64,
    /// Connections the client closed (its close frame came first).
    pub closed_by_client: u64,
    /// Connections the origin closed with a close frame it wrote.
    pub closed_by_server: u64,
    /// The origin's close frames per code, ascending.
    pub server_close_codes: Vec<CloseCodeCount>,
    /// Connections that ended without a close frame.
    pub cut: u64,
    /// Connections still open when the ledger was taken.
    pub open: u64,
    /// Data messages (text or binary) read.
    pub messages_received: u64,
    /// Data messages echoed (written and flushed).
    pub messages_echoed: u64,
}

/// What the built-in origin's `/stream` did, from its start until the
/// ledger was taken: `started = complete + cut + open`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginStreamLedger {
    /// Streamed responses started (answered 200 with a streaming body).
    pub started: u64,
    /// Responses whose last chunk was handed to the connection.
    pub complete: u64,
    /// Responses dropped before their last chunk (the client went away, or
    /// the origin stopped).
    pub cut: u64,
    /// Responses still streaming when the ledger was taken.
    pub open: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_sparse_buckets() {
        let r = WsReport {
            opened: 5,
            failed: 1,
            closed_cleanly: 3,
            close_codes: vec![
                CloseCodeCount {
                    code: 1000,
                    count: 1,
                },
                CloseCodeCount {
                    code: 1001,
                    count: 2,
                },
            ],
            cut: 1,
            open_at_end: 1,
            sent: 10,
            echoed: 7,
            lost: 2,
            late: 1,
            buckets: WsBuckets {
                width_ns: 100_000_000,
                opened: vec![(0, 5)],
                ..WsBuckets::default()
            },
            ..WsReport::default()
        };
        assert_eq!(
            r.connections_line(),
            "WebSocket connections: opened 5, failed 1, closed cleanly 3 (1001: 2), cut 1, \
             open at end 1"
        );
        assert_eq!(
            r.messages_line(),
            "Messages: sent 10, echoed 7, lost 2, late 1"
        );
        let json = serde_json::to_string(&r.buckets).expect("json");
        assert_eq!(json, r#"{"width_ns":100000000,"opened":[[0,5]]}"#);
        let back: WsBuckets = serde_json::from_str(&json).expect("read");
        assert_eq!(back, r.buckets);
    }

    #[test]
    fn handshakes_count_in_ab_as_requests_and_what_follows_the_101_does_not() {
        let failed = |class, count| WsFailedCount { class, count };
        let r = WsReport {
            opened: 10,
            failed: 9,
            failed_classes: vec![
                failed(FailureClass::ConnectRefused, 4),
                failed(FailureClass::TlsHandshake, 1),
                failed(FailureClass::Reset, 1),
                failed(FailureClass::BadResponse, 1),
                failed(FailureClass::Http5xx, 2),
            ],
            closed_cleanly: 3,
            cut: 5,
            open_at_end: 2,
            sent: 100,
            lost: 7,
            late: 3,
            echoed: 90,
            ..WsReport::default()
        };
        let ab = r.handshakes_ab();
        assert_eq!(
            ab,
            AbView {
                connect: 5,
                receive: 1,
                length: 0,
                exceptions: 1,
                write_errors: 0,
                non_2xx: 2,
            }
        );
        // Each failed attempt once; cuts and lost messages in no counter.
        assert_eq!(ab.total(), r.failed);
        assert_eq!(r.handshakes(), 19);
    }

    #[test]
    fn new_bucket_columns_are_sparse_and_old_files_read() {
        let b = WsBuckets {
            width_ns: 100_000_000,
            reconnects: vec![(3, 2)],
            reconnect_p50_us: vec![(3, 0)],
            reconnect_p99_us: vec![(3, 1500)],
            reconnect_max_us: vec![(3, 1500)],
            ..WsBuckets::default()
        };
        let json = serde_json::to_string(&b).expect("json");
        assert_eq!(
            json,
            r#"{"width_ns":100000000,"reconnects":[[3,2]],"reconnect_p50_us":[[3,0]],"reconnect_p99_us":[[3,1500]],"reconnect_max_us":[[3,1500]]}"#
        );
        assert_eq!(serde_json::from_str::<WsBuckets>(&json).expect("read"), b);
        assert_eq!(WsBuckets::at(&b.reconnect_p99_us, 3), 1500);
        assert_eq!(WsBuckets::at(&b.reconnect_p99_us, 4), 0);
        assert_eq!(WsBuckets::sum(&b.reconnects), 2);
        // A report written before `ab` and the reconnect columns.
        let mut old = serde_json::to_value(WsReport {
            opened: 1,
            ..WsReport::default()
        })
        .expect("json");
        old.as_object_mut().expect("object").remove("ab");
        let r: WsReport = serde_json::from_value(old).expect("old report");
        assert_eq!(r.opened, 1);
        assert_eq!(r.ab, AbView::default());
        assert!(r.buckets.reconnects.is_empty());
    }

    #[test]
    fn origin_ledgers_round_trip() {
        let ws = OriginWsLedger {
            opened: 5,
            closed_by_client: 1,
            closed_by_server: 2,
            server_close_codes: vec![CloseCodeCount {
                code: GOING_AWAY,
                count: 2,
            }],
            cut: 1,
            open: 1,
            messages_received: 9,
            messages_echoed: 8,
        };
        let json = serde_json::to_string(&ws).expect("json");
        assert_eq!(
            serde_json::from_str::<OriginWsLedger>(&json).expect("read"),
            ws
        );
        let s = OriginStreamLedger {
            started: 3,
            complete: 1,
            cut: 1,
            open: 1,
        };
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(json, r#"{"started":3,"complete":1,"cut":1,"open":1}"#);
    }
}
