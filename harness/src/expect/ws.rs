//! WebSocket metrics of a `kind = "websocket"` case: connection ends,
//! failed opens, lost messages and reconnect time, over the whole load
//! and per restart, reload or kill.
//!
//! loadgen counts each WebSocket outcome per time bucket (sparse columns of
//! [`WsBuckets`]). A bucket's counts belong to the last action whose
//! attribution window overlaps it, as for HTTP/2 GOAWAYs (see
//! `expect::goaway`): the resolution is one bucket, and counts in a bucket
//! no window overlaps belong to no action.

use reloadbench_model::run::CaseReport;
use reloadbench_model::ws::{WsBuckets, WsReport};

/// A WebSocket count an expectation can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsMetric {
    /// `ws_cut`: connections that ended without a close frame.
    Cut,
    /// `ws_closed`: connections the server closed with a close frame.
    Closed,
    /// `ws_failed`: connection attempts that failed to open.
    Failed,
    /// `messages_lost`: messages lost with their connection.
    MessagesLost,
}

/// Every WebSocket count with its key.
pub(super) const ALL: [(WsMetric, &str); 4] = [
    (WsMetric::Cut, "ws_cut"),
    (WsMetric::Closed, "ws_closed"),
    (WsMetric::Failed, "ws_failed"),
    (WsMetric::MessagesLost, "messages_lost"),
];

impl WsMetric {
    /// The key as written in scenarios.
    pub(crate) fn key(self) -> &'static str {
        ALL.iter().find(|(m, _)| *m == self).map_or("?", |(_, k)| k)
    }

    /// The metric of `key`, if it is a WebSocket count.
    pub(crate) fn from_key(key: &str) -> Option<WsMetric> {
        ALL.iter().find(|(_, k)| *k == key).map(|(m, _)| *m)
    }

    /// The count over the whole load.
    pub(super) fn total(self, ws: &WsReport) -> u64 {
        match self {
            WsMetric::Cut => ws.cut,
            WsMetric::Closed => ws.closed_cleanly,
            WsMetric::Failed => ws.failed,
            WsMetric::MessagesLost => ws.lost,
        }
    }

    /// The count's sparse per-bucket column.
    fn column(self, b: &WsBuckets) -> &[(usize, u64)] {
        match self {
            WsMetric::Cut => &b.cut,
            WsMetric::Closed => &b.closed_cleanly,
            WsMetric::Failed => &b.failed,
            WsMetric::MessagesLost => &b.lost,
        }
    }
}

/// The count of `m` attributed to each restart, reload and kill, in
/// timeline order; `None` for a case without a WebSocket load.
pub(super) fn per_reload(case: &CaseReport, m: WsMetric) -> Option<Vec<u64>> {
    let ws = case.load.ws.as_ref()?;
    let width = ws.buckets.width_ns.max(1);
    let spans = m.column(&ws.buckets).iter().map(|&(i, n)| {
        let start = (i as u64).saturating_mul(width);
        (start, start.saturating_add(width), n)
    });
    Some(super::goaway::per_replacement(case, spans))
}

/// Messages lost per connection that ended (closed cleanly or cut), `None`
/// without a WebSocket load or without an ended connection.
///
/// A message is lost when its connection ends while it awaits its echo,
/// so this is the messages in flight per connection at its end: with one
/// message per `message_interval` and echoes much faster than that, at most
/// one; more only when the echoes lag (a loaded machine); never more than
/// `message_timeout / message_interval + 1` (older ones are late, not lost).
/// A proxy that ends a tunnel (refproxy's `drain_tunnels = "close"`) relays
/// nothing after its close frame: the echoes still on their way are lost,
/// and so is a message the client sent before it read the close frame.
pub(super) fn lost_per_close(case: &CaseReport) -> Option<f64> {
    let ws = case.load.ws.as_ref()?;
    let ended = ws.closed_cleanly + ws.cut;
    (ended > 0).then(|| ws.lost as f64 / ended as f64)
}

/// p99 reconnect time (a connection's end to the same client's next open), ms.
pub(super) fn reconnect_p99_ms(case: &CaseReport) -> Option<f64> {
    let t = &case.load.ws.as_ref()?.reconnect_time;
    (t.count > 0).then_some(())?;
    Some(t.at(99.0)? as f64 / 1000.0)
}
