//! The TLS table: per case whose load spoke TLS, its handshakes (full,
//! resumed, failed), the resumed ratio over the whole load and the lowest in
//! the second after a restart or reload, and the handshake time. A run
//! without TLS shows no table, so its report reads as it always did.

use reloadbench_model::load::LatencySummary;
use reloadbench_model::run::RunReport;

use crate::export::grid::{Align, Table};

/// Note under the TLS table.
pub const TLS_LEGEND: &str = "handshakes = TLS handshakes begun (one per new connection) = \
full + resumed + failed; resumed ratio = resumed / handshakes over the whole load; \
lowest after a reload = the lowest resumed ratio of the handshakes (failed ones included) in the second \
after a restart or reload had its new process ready (– without reloads): a new process that \
does not know the old one's session-ticket keys makes every returning client pay a full \
handshake; handshake time = TCP connect done to handshake done (completed handshakes).";

/// The TLS table, when a case spoke TLS; `None` otherwise.
pub fn tls(report: &RunReport) -> Option<Table> {
    if !report.cases.iter().any(|c| c.load.tls.is_some()) {
        return None;
    }
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("protocol", Align::Left),
        ("handshakes", Align::Right),
        ("full", Align::Right),
        ("resumed", Align::Right),
        ("failed", Align::Right),
        ("resumed ratio", Align::Right),
        ("lowest after a reload", Align::Right),
        ("handshake p50 (ms)", Align::Right),
        ("handshake p99 (ms)", Align::Right),
    ]);
    for case in &report.cases {
        let Some(tls) = &case.load.tls else {
            continue;
        };
        let ratio = |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.3}"));
        let mut protocol = tls.protocol.clone().unwrap_or_else(|| "–".to_owned());
        if !tls.resumption {
            protocol.push_str(" (no resumption)");
        }
        t.push(vec![
            case.label(),
            protocol,
            tls.handshakes.to_string(),
            tls.full.to_string(),
            tls.resumed.to_string(),
            tls.failed.to_string(),
            ratio(tls.resumed_ratio()),
            ratio(case.lowest_tls_resumed_ratio_after_reload()),
            ms_at(&tls.handshake_time, 50.0),
            ms_at(&tls.handshake_time, 99.0),
        ]);
    }
    Some(t)
}

/// Percentile `p` of `l` in ms with two decimals, `–` when not measured.
fn ms_at(l: &LatencySummary, p: f64) -> String {
    match l.at(p) {
        Some(us) if l.count > 0 => format!("{:.2}", us as f64 / 1000.0),
        _ => "–".to_owned(),
    }
}
