//! The summary and failures tables' rows of WebSocket cases. A WebSocket
//! load sends no requests, so the request columns (complete, failed,
//! requests/s, latency, failures by class) would all read 0: a run whose
//! cases all held WebSockets gets tables of WebSocket columns instead
//! (`summary`, `failures`); in a run that mixes them with request
//! cases, a WebSocket case's request cells are `–` (`dashes`) and its
//! numbers are in the WebSocket table. Streaming loads are requests (one
//! per stream, ok only when complete) and keep the request columns.

use reloadbench_model::load::LatencySummary;
use reloadbench_model::run::{CaseReport, RunReport};
use reloadbench_model::ws::GOING_AWAY;

use super::verdict;
use crate::export::grid::{Align, Table};
use crate::summary::{CaseSummary, fmt_opt_ns_ms};

/// Note under the summary and failures tables of a run with WebSocket cases.
pub const WS_ROWS_LEGEND: &str = "WebSocket cases send no requests: their rows count \
connections and messages (opened, failed to open, closed cleanly by the server, 1001 = with \
Going Away, cut without a close frame; messages echoed, lost with their connection, late), \
echo = a message's round trip; in a run that also has request cases, their request cells \
are – and their numbers are in the WebSocket table.";

/// Whether `case` held WebSockets.
pub fn is_ws(case: &CaseReport) -> bool {
    case.load.ws.is_some()
}

/// Whether every case of `report` held WebSockets (and there is one).
pub(crate) fn all_ws(report: &RunReport) -> bool {
    !report.cases.is_empty() && report.cases.iter().all(is_ws)
}

/// A row of `n` cells after the case name, all `–`.
pub(crate) fn dashes(name: String, n: usize) -> Vec<String> {
    std::iter::once(name)
        .chain(std::iter::repeat_n("–".to_owned(), n))
        .collect()
}

/// The percentile `p` of `l` in ms, `–` without values.
fn ms_at(l: &LatencySummary, p: f64) -> String {
    match l.at(p) {
        Some(us) if l.count > 0 => format!("{:.2}", us as f64 / 1000.0),
        _ => "–".to_owned(),
    }
}

/// The summary of a run whose cases all held WebSockets.
pub(crate) fn summary(report: &RunReport) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("time taken s", Align::Right),
        ("opened", Align::Right),
        ("failed to open", Align::Right),
        ("closed cleanly", Align::Right),
        ("cut", Align::Right),
        ("messages echoed", Align::Right),
        ("lost", Align::Right),
        ("late", Align::Right),
        ("echo p50 ms", Align::Right),
        ("echo p99 ms", Align::Right),
        ("verdict", Align::Center),
    ]);
    for case in &report.cases {
        let s = CaseSummary::of(case);
        let Some(w) = &case.load.ws else { continue };
        t.push(vec![
            s.name,
            format!("{:.3}", s.time_taken_s),
            w.opened.to_string(),
            w.failed.to_string(),
            w.closed_cleanly.to_string(),
            w.cut.to_string(),
            w.echoed.to_string(),
            w.lost.to_string(),
            w.late.to_string(),
            ms_at(&w.echo_time, 50.0),
            ms_at(&w.echo_time, 99.0),
            verdict(case).to_string(),
        ]);
    }
    t
}

/// The failures table of a run whose cases all held WebSockets: how
/// connections ended and messages were lost, per case and per action.
pub(crate) fn failures(report: &RunReport) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("failed to open", Align::Right),
        ("cut", Align::Right),
        ("closed cleanly", Align::Right),
        ("1001", Align::Right),
        ("messages lost", Align::Right),
        ("late", Align::Right),
        ("actions", Align::Right),
        ("cut/action", Align::Right),
        ("reload p50 ms", Align::Right),
        ("reload max ms", Align::Right),
    ]);
    for case in &report.cases {
        let s = CaseSummary::of(case);
        let Some(w) = &case.load.ws else { continue };
        t.push(vec![
            s.name,
            w.failed.to_string(),
            w.cut.to_string(),
            w.closed_cleanly.to_string(),
            w.closed_with(GOING_AWAY).to_string(),
            w.lost.to_string(),
            w.late.to_string(),
            s.actions.to_string(),
            if s.actions > 0 {
                format!("{:.1}", w.cut as f64 / s.actions as f64)
            } else {
                "–".to_owned()
            },
            fmt_opt_ns_ms(s.reload_p50_ns),
            fmt_opt_ns_ms(s.reload_max_ns),
        ]);
    }
    t
}
