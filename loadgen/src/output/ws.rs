//! The text lines of long-lived loads: a `--ws` run's connections, messages
//! and reconnect times, and a `--stream` run's streamed responses.

use std::fmt::Write as _;

use reloadbench_model::ws::{StreamReport, WsReport};

use super::AB_PERCENTILES;

/// `WebSocket connections: ...`, `Messages: ...`, failed attempts by class,
/// close codes and the `Reconnect time (ms)` percentiles.
pub(super) fn ws_block(o: &mut String, ws: &WsReport) {
    let _ = writeln!(o, "{}", ws.connections_line());
    let _ = writeln!(o, "{}", ws.messages_line());
    for c in &ws.failed_classes {
        let _ = writeln!(o, "  failed to open, {:<22}{:>9}", c.class.label(), c.count);
    }
    for c in &ws.close_codes {
        let _ = writeln!(o, "  closed with code {:<5}{:>22}", c.code, c.count);
    }
    let _ = writeln!(
        o,
        "Reconnect time (ms)    ({} reconnects)",
        ws.reconnect_time.count
    );
    for p in AB_PERCENTILES {
        let v = ws.reconnect_time.at(p).unwrap_or(0) as f64 / 1000.0;
        let tail = if p == 100.0 {
            " (longest reconnect)"
        } else {
            ""
        };
        let _ = writeln!(o, " {:>3}%  {v:>9.3}{tail}", p as u64);
    }
    let _ = writeln!(o);
}

/// `Streams: complete N, truncated T (B bytes received)`.
pub(super) fn stream_line(o: &mut String, s: &StreamReport) {
    let _ = writeln!(o, "{}", s.line());
    let _ = writeln!(o);
}
