//! The HTTP/2 table: per case whose load spoke HTTP/2, the GOAWAYs it
//! received (graceful, with an error), what became of its streams (refused
//! by a GOAWAY, reset by the server with their codes, lost with their
//! connection, protocol errors) and the retries of refused streams. A run
//! without HTTP/2 shows no table, so its report reads as it always did.

use reloadbench_model::run::RunReport;

use crate::export::grid::{Align, Table};

/// Note under the HTTP/2 table.
pub const H2_LEGEND: &str = "streams = concurrent streams per connection; GOAWAY = GOAWAY \
frames received (graceful = NO_ERROR; a two-step drain sends two); refused = streams above a \
GOAWAY's last-stream-id, which the server says it never processed (safe to retry); reset = \
streams the server ended with RST_STREAM, by error code; lost = streams open when their \
connection ended without a GOAWAY refusing them (requests cut in flight); retries = refused \
streams sent once more on a new connection (`retry_refused`; – without), and the refused \
count includes every attempt; reconnects = connections opened after a GOAWAY or a closed \
connection.";

/// The HTTP/2 table, when a case spoke HTTP/2; `None` otherwise.
pub fn h2(report: &RunReport) -> Option<Table> {
    if !report.cases.iter().any(|c| c.load.h2.is_some()) {
        return None;
    }
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("streams", Align::Right),
        ("GOAWAY", Align::Right),
        ("graceful", Align::Right),
        ("with error", Align::Right),
        ("refused", Align::Right),
        ("reset", Align::Right),
        ("reset by code", Align::Left),
        ("lost", Align::Right),
        ("protocol errors", Align::Right),
        ("retries", Align::Right),
        ("reconnects", Align::Right),
    ]);
    for case in &report.cases {
        let Some(h) = &case.load.h2 else {
            continue;
        };
        let codes: Vec<String> = h
            .reset_codes
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        t.push(vec![
            case.label(),
            h.streams.to_string(),
            h.goaway.to_string(),
            h.goaway_graceful.to_string(),
            h.goaway_error.to_string(),
            h.refused.to_string(),
            h.reset.to_string(),
            if codes.is_empty() {
                "–".to_owned()
            } else {
                codes.join(", ")
            },
            h.lost.to_string(),
            h.protocol_errors.to_string(),
            if h.retry_refused {
                case.load.retries.to_string()
            } else {
                "–".to_owned()
            },
            h.reconnects.to_string(),
        ]);
    }
    Some(t)
}
