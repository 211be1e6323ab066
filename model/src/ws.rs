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

use serde::{Deserialize, Serialize};

use crate::load::LatencySummary;
use crate::outcome::FailureClass;

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
}
