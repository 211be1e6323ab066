//! The WebSocket table: per case whose load held WebSocket connections
//! (`kind = "websocket"`), how its connections ended (opened, failed to
//! open, closed cleanly by the server and with 1001 Going Away, cut, still
//! open at the end), what became of its messages (sent, echoed, lost, late)
//! and the reconnect time. A run without WebSockets shows no table, so its
//! report reads as it always did.

use reloadbench_model::generations::GenerationSource;
use reloadbench_model::load::LatencySummary;
use reloadbench_model::run::RunReport;
use reloadbench_model::ws::GOING_AWAY;

use crate::export::grid::{Align, Table};

/// Note under the WebSocket table.
pub const WS_LEGEND: &str = "One row per case whose load held WebSocket connections. opened = \
connections the upgrade answered with 101; failed = attempts that did not open (a refused connect, an \
upgrade not answered with 101); closed cleanly = the server ended the connection with \
a close frame, 1001 = with 1001 Going Away (the polite reload); cut = the connection ended \
without a close frame (EOF or reset); open at end = still open when the load ended (opened = \
closed cleanly + cut + open at end). Messages: sent = echoed + lost + late; lost = sent, but the \
connection ended before the echo came; late = no echo within the message timeout on a \
connection that stayed open. reconnect = from a connection's end to the same client's next \
opened connection, ms. old generations = the most old generations of the proxy alive at \
once (refproxy: from its events, ready to exited; any other server: from its process tree, \
processes that stopped holding a listening socket on the address while another did, until \
they exited, grouped by the reload they stopped at; – when not measured), old processes = \
the most such processes at once (– when counted from events): kept tunnels hold them.";

/// The WebSocket table, when a case held WebSockets; `None` otherwise.
pub fn ws(report: &RunReport) -> Option<Table> {
    if !report.cases.iter().any(|c| c.load.ws.is_some()) {
        return None;
    }
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("opened", Align::Right),
        ("failed", Align::Right),
        ("closed cleanly", Align::Right),
        ("1001", Align::Right),
        ("cut", Align::Right),
        ("open at end", Align::Right),
        ("sent", Align::Right),
        ("echoed", Align::Right),
        ("lost", Align::Right),
        ("late", Align::Right),
        ("reconnect p50 ms", Align::Right),
        ("reconnect p99 ms", Align::Right),
        ("old generations", Align::Right),
        ("old processes", Align::Right),
    ]);
    for case in &report.cases {
        let Some(w) = &case.load.ws else {
            continue;
        };
        t.push(vec![
            case.label(),
            w.opened.to_string(),
            w.failed.to_string(),
            w.closed_cleanly.to_string(),
            w.closed_with(GOING_AWAY).to_string(),
            w.cut.to_string(),
            w.open_at_end.to_string(),
            w.sent.to_string(),
            w.echoed.to_string(),
            w.lost.to_string(),
            w.late.to_string(),
            ms_at(&w.reconnect_time, 50.0),
            ms_at(&w.reconnect_time, 99.0),
            case.old_generations_max
                .map_or_else(|| "–".to_owned(), |n| n.to_string()),
            case.generations
                .as_ref()
                .filter(|g| g.source == GenerationSource::ProcessTree)
                .map_or_else(|| "–".to_owned(), |g| g.old_processes_max.to_string()),
        ]);
    }
    Some(t)
}

/// The percentile `p` of `l` in ms, `–` without values.
fn ms_at(l: &LatencySummary, p: f64) -> String {
    match l.at(p) {
        Some(us) if l.count > 0 => format!("{:.2}", us as f64 / 1000.0),
        _ => "–".to_owned(),
    }
}

/// The load sentence of a run whose cases all held WebSockets with the
/// same settings (`concurrency` clients for `duration_ms`), `None` when a
/// case did not.
pub(crate) fn load_line(report: &RunReport, concurrency: u64, duration_ms: u64) -> Option<String> {
    let settings = |w: &reloadbench_model::ws::WsReport| {
        (
            w.message_interval_ms,
            w.message_bytes,
            w.message_timeout_ms,
            w.reconnect_delay_ms,
        )
    };
    let first = settings(report.cases.first()?.load.ws.as_ref()?);
    if !report
        .cases
        .iter()
        .all(|c| c.load.ws.as_ref().map(settings) == Some(first))
    {
        return None;
    }
    let (interval, bytes, timeout, delay) = first;
    let bucket_ms = report.cases.first()?.load.config.bucket_ms;
    Some(format!(
        "Load of every case: {concurrency} WebSocket clients, each holding a connection for \
         {:.1} s and sending a {bytes}-byte message every {interval} ms (late when not echoed \
         within {timeout} ms), reconnecting {delay} ms after its connection ends; time buckets \
         of {bucket_ms} ms.",
        duration_ms as f64 / 1000.0
    ))
}
