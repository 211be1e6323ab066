//! WebSockets in the report: a "WebSocket connections" table in report.md
//! and report.html with a row per case whose load held WebSocket
//! connections (opened, failed, closed cleanly and with 1001, cut, open at
//! end, messages sent/echoed/lost/late, reconnect p50/p99), and a load
//! sentence that says WebSocket clients. A run without WebSockets shows
//! none of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::load::{LatencySummary, Percentile};
use reloadbench_model::ws::{CloseCodeCount, WsReport};
use reloadbench_reports::RunReport;
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;

/// The fixture with every case's load the first case's, holding WebSockets
/// (a 64-byte message every 100 ms, late after 1 s, reconnect after 10 ms);
/// case 3 had its connections closed with 1001 (5) and 1000 (1), 2 cut.
fn ws_fixture() -> RunReport {
    let mut r = support::fixture();
    let mut cfg = r.cases[0].load.config.clone();
    cfg.duration_ms = Some(10_000);
    let base = WsReport {
        message_interval_ms: 100,
        message_bytes: 64,
        message_timeout_ms: 1000,
        reconnect_delay_ms: 10,
        opened: 100,
        open_at_end: 100,
        sent: 10_000,
        echoed: 10_000,
        ..WsReport::default()
    };
    for c in &mut r.cases {
        c.load.config = cfg.clone();
        c.load.ws = Some(base.clone());
    }
    r.cases[3].old_generations_max = Some(2);
    r.cases[3].load.ws = Some(WsReport {
        opened: 108,
        failed: 3,
        closed_cleanly: 6,
        close_codes: vec![
            CloseCodeCount {
                code: 1000,
                count: 1,
            },
            CloseCodeCount {
                code: 1001,
                count: 5,
            },
        ],
        cut: 2,
        open_at_end: 100,
        sent: 9_990,
        echoed: 9_970,
        lost: 15,
        late: 5,
        reconnect_time: LatencySummary {
            count: 8,
            percentiles: vec![
                Percentile { p: 50.0, us: 1_250 },
                Percentile {
                    p: 99.0,
                    us: 40_500,
                },
            ],
            ..LatencySummary::default()
        },
        ..base
    });
    r
}

fn row<'a>(text: &'a str, case: &str, after: &str) -> Vec<&'a str> {
    let section = &text[text.find(after).unwrap_or_else(|| panic!("no {after:?}"))..];
    let line = section
        .lines()
        .find(|l| l.starts_with(&format!("| {case} |")))
        .unwrap_or_else(|| panic!("no row for {case} after {after:?}"));
    line.split('|').map(str::trim).collect()
}

#[test]
fn a_websocket_run_gets_a_connection_table_and_a_websocket_load_line() {
    let run = ws_fixture();
    let md = reloadbench_reports::render_markdown(&run);
    let name = &run.cases[3].name;
    let cells = row(&md, name, "### WebSocket connections");
    assert_eq!(
        &cells[1..15],
        &[
            name.as_str(),
            "108",
            "3",
            "6",
            "5",
            "2",
            "100",
            "9990",
            "9970",
            "15",
            "5",
            "1.25",
            "40.50",
            "2"
        ],
        "{md}"
    );
    // The counts add up as the legend says.
    let w = run.cases[3].load.ws.as_ref().unwrap();
    assert_eq!(w.opened, w.closed_cleanly + w.cut + w.open_at_end);
    assert_eq!(w.sent, w.echoed + w.lost + w.late);
    // A case without reconnects shows no reconnect time.
    let first = row(&md, &run.cases[0].name, "### WebSocket connections");
    assert_eq!(&first[12..15], &["–", "–", "–"], "{md}");
    let load = md.lines().find(|l| l.starts_with("Load of")).unwrap_or("");
    assert_eq!(
        load,
        "Load of every case: 100 WebSocket clients, each holding a connection for 10.0 s and \
         sending a 64-byte message every 100 ms (late when not echoed within 1000 ms), \
         reconnecting 10 ms after its connection ends; time buckets of 100 ms.",
        "{md}"
    );
    // The ab-style block has loadgen's WebSocket lines.
    let ab = reloadbench_reports::ab_text(&run.cases[3]);
    for line in [
        "WebSocket connections: opened 108, failed 3, closed cleanly 6 (1001: 5), cut 2, open at end 100\n",
        "Messages: sent 9990, echoed 9970, lost 15, late 5\n",
    ] {
        assert!(ab.contains(line), "{line:?} in\n{ab}");
    }
    assert!(!reloadbench_reports::ab_text(&support::fixture().cases[3]).contains("WebSocket"));
    // A stream load's block has loadgen's stream line.
    let mut streamed = support::fixture().cases[3].clone();
    streamed.load.stream = Some(reloadbench_model::ws::StreamReport {
        complete: 10,
        truncated: 4,
        truncated_bytes: 992,
    });
    assert!(
        reloadbench_reports::ab_text(&streamed)
            .contains("Streams: complete 10, truncated 4 (992 bytes received)\n")
    );
    let html = String::from_utf8(HtmlExporter.render(&run).unwrap()).unwrap();
    assert!(html.contains("<h3>WebSocket connections</h3>"), "{html}");
    assert!(html.contains("40.50"));
}

#[test]
fn a_run_without_websockets_has_no_websocket_table() {
    let run = support::fixture();
    let md = reloadbench_reports::render_markdown(&run);
    assert!(!md.contains("WebSocket"), "{md}");
    let html = String::from_utf8(HtmlExporter.render(&run).unwrap()).unwrap();
    assert!(!html.contains("WebSocket"));
    // Cases with different WebSocket settings: no common load sentence.
    let mut mixed = ws_fixture();
    mixed.cases[1].load.ws.as_mut().unwrap().message_bytes = 128;
    let md = reloadbench_reports::render_markdown(&mixed);
    assert!(!md.contains("Load of every case"), "{md}");
    assert!(md.contains("### WebSocket connections"));
}
