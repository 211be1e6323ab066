//! The text lines of long-lived loads: a `--ws` run's connections, messages
//! and reconnect times, and a `--stream` run's streamed responses.

use std::fmt::Write as _;

use reloadbench_model::load::LoadReport;
use reloadbench_model::ws::{StreamReport, WsReport};

use super::AB_PERCENTILES;

/// The whole text of a `--ws` run: target, time, the opening handshakes in
/// ab's counters ([`ab_lines`]), TLS handshakes, the WebSocket block and the
/// TCP connections opened.
pub(super) fn text(r: &LoadReport, ws: &WsReport, [host, port, path]: [&str; 3]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Server Hostname:        {host}");
    let _ = writeln!(o, "Server Port:            {port}");
    let _ = writeln!(o, "WebSocket Path:         {path}");
    let _ = writeln!(o);
    let _ = writeln!(o, "Connections held:       {}", r.config.concurrency);
    let _ = writeln!(
        o,
        "Message every:          {} ms, {} bytes (late after {} ms)",
        ws.message_interval_ms, ws.message_bytes, ws.message_timeout_ms
    );
    let _ = writeln!(
        o,
        "Time taken for tests:   {:.3} seconds",
        r.elapsed_ns as f64 / 1e9
    );
    let _ = writeln!(o, "TCP connections opened: {}", r.connections);
    ab_lines(&mut o, ws);
    let _ = writeln!(o);
    if let Some(tls) = &r.tls {
        super::tls_block(&mut o, tls);
    }
    ws_block(&mut o, ws);
    let e = &ws.echo_time;
    let _ = writeln!(
        o,
        "Echo round trip (ms):   50% {:.3}, 99% {:.3}, max {:.3}",
        e.at(50.0).unwrap_or(0) as f64 / 1000.0,
        e.at(99.0).unwrap_or(0) as f64 / 1000.0,
        e.max_us as f64 / 1000.0
    );
    o
}

/// ab's request lines, for the opening handshakes
/// ([`WsReport::handshakes_ab`]): each attempt is a request, a 101 its
/// success, a failed attempt counted in its class's ab counter. Closes, cuts
/// and messages come after the handshake's request completed: they are in the
/// WebSocket lines, not in ab's counters.
pub(super) fn ab_lines(o: &mut String, ws: &WsReport) {
    let ab = ws.handshakes_ab();
    let _ = writeln!(
        o,
        "Complete requests:      {} (opening handshakes: {} answered 101)",
        ws.handshakes(),
        ws.opened
    );
    let _ = writeln!(o, "Failed requests:        {}", ws.failed);
    let _ = writeln!(
        o,
        "   (Connect: {}, Receive: {}, Length: {}, Exceptions: {})",
        ab.connect, ab.receive, ab.length, ab.exceptions
    );
    let _ = writeln!(o, "Write errors:           {}", ab.write_errors);
    let _ = writeln!(o, "Non-2xx responses:      {}", ab.non_2xx);
}

/// `WebSocket connections: ...`, `Messages: ...`, failed attempts by class,
/// close codes and the `Reconnect time (ms)` percentiles.
pub(super) fn ws_block(o: &mut String, ws: &WsReport) {
    let _ = writeln!(o, "{}", ws.connections_line());
    let _ = writeln!(o, "{}", ws.messages_line());
    for c in &ws.failed_classes {
        let label = format!("failed to open, {}", c.class.label());
        let _ = writeln!(o, "  {label:<38}{:>9}", c.count);
    }
    for c in &ws.close_codes {
        let label = format!("closed with code {}", c.code);
        let _ = writeln!(o, "  {label:<38}{:>9}", c.count);
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
