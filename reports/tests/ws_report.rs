//! WebSockets in the report: a "WebSocket connections" table in report.md
//! and report.html with a row per case whose load held WebSocket
//! connections (opened, failed, closed cleanly and with 1001, cut, open at
//! end, messages sent/echoed/lost/late, reconnect p50/p99), and a load
//! sentence that says WebSocket clients. A run without WebSockets shows
//! none of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;

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
    let run = support::ws_fixture();
    let md = reloadbench_reports::render_markdown(&run);
    let name = &run.cases[3].name;
    let cells = row(&md, name, "### WebSocket connections");
    // Old processes counted from the process tree (the fixture's series).
    assert_eq!(cells[15], "4", "{md}");
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
    let mut mixed = support::ws_fixture();
    mixed.cases[1].load.ws.as_mut().unwrap().message_bytes = 128;
    let md = reloadbench_reports::render_markdown(&mixed);
    assert!(!md.contains("Load of every case"), "{md}");
    assert!(md.contains("### WebSocket connections"));
}

/// The cells of `case`'s row in the first table after `after` (markdown),
/// with the table's header.
fn table_row<'a>(text: &'a str, case: &str, after: &str) -> (Vec<&'a str>, Vec<&'a str>) {
    let section = &text[text.find(after).unwrap_or_else(|| panic!("no {after:?}"))..];
    let header = section
        .lines()
        .find(|l| l.starts_with("| case |"))
        .unwrap_or_else(|| panic!("no table after {after:?}"));
    let cells =
        |l: &'a str| -> Vec<&'a str> { l.trim_matches('|').split('|').map(str::trim).collect() };
    (cells(header), row(text, case, after)[1..].to_vec())
}

#[test]
fn websocket_cases_show_websocket_numbers_in_the_summary_and_failures_tables() {
    let run = support::ws_fixture();
    let md = reloadbench_reports::render_markdown(&run);
    let name = run.cases[3].name.as_str();
    // Every case held WebSockets: WebSocket columns, no request columns.
    let (head, cells) = table_row(&md, name, "## Summary");
    assert_eq!(
        head,
        [
            "case",
            "time taken s",
            "opened",
            "failed to open",
            "closed cleanly",
            "cut",
            "messages echoed",
            "lost",
            "late",
            "echo p50 ms",
            "echo p99 ms",
            "verdict"
        ],
        "{md}"
    );
    assert_eq!(
        &cells[2..9],
        ["108", "3", "6", "2", "9970", "15", "5"],
        "{md}"
    );
    let (head, cells) = table_row(&md, name, "## Failures and reloads");
    assert_eq!(
        &head[..7],
        [
            "case",
            "failed to open",
            "cut",
            "closed cleanly",
            "1001",
            "messages lost",
            "late"
        ]
    );
    assert_eq!(&cells[..7], [name, "3", "2", "6", "5", "15", "5"], "{md}");
    let actions = run.cases[3].actions.len();
    assert_eq!(cells[7], actions.to_string());
    assert!(md.contains(reloadbench_reports::export::tables::ws_rows::WS_ROWS_LEGEND));

    // Mixed with request cases: the WebSocket rows' request cells are –.
    let mut mixed = support::ws_fixture();
    mixed.cases[0].load.ws = None;
    let md = reloadbench_reports::render_markdown(&mixed);
    let (head, cells) = table_row(&md, name, "## Summary");
    assert_eq!(head[2], "complete", "{md}");
    assert_eq!(&cells[2..10], ["–"; 8], "{md}");
    let (_, first) = table_row(&md, &mixed.cases[0].name, "## Summary");
    assert_ne!(first[2], "–", "{md}");
    let (head, cells) = table_row(&md, name, "## Failures and reloads");
    assert_eq!(head[1], "failed");
    assert_eq!(cells[1], "–", "{md}");
    let n = head.len();
    assert_eq!(head[n - 4], "actions");
    assert_eq!(cells[n - 4], actions.to_string(), "{md}");

    // A run without WebSockets: its tables as they were.
    let plain = support::fixture();
    let md = reloadbench_reports::render_markdown(&plain);
    assert!(!md.contains("failed to open") && !md.contains("messages echoed"));
}

#[test]
fn the_timeline_has_websocket_and_old_generation_strips() {
    use reloadbench_reports::export::chart::{Chart, render_svg};
    let run = support::ws_fixture();
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    let text = |t: &str| svg.lines().any(|l| l.trim() == t);
    for t in [
        "open WebSockets",
        "messages echoed/s",
        "WebSockets cut",
        "closed cleanly",
        "old processes (max 4)",
        "old generations (max 2)",
        "server processes",
    ] {
        assert!(text(t), "{t:?} not in the timeline");
    }
    // The cut and close marks carry their counts: 5 closed at bucket 20,
    // 1 closed and 2 cut at bucket 40.
    for t in ["5", "1", "2"] {
        assert!(text(t), "mark count {t:?}");
    }
    let md = reloadbench_reports::render_markdown(&run);
    assert!(
        md.contains("red ticks rising from the time axis are connections cut"),
        "{md}"
    );
    assert!(md.contains("from the process tree"), "{md}");
    // A run without WebSockets or generations: no strips, no note.
    let plain = support::fixture();
    let svg = render_svg(Chart::Timeline, &plain).unwrap();
    assert!(!svg.contains("WebSockets") && !svg.contains("old processes"));
    assert!(!reloadbench_reports::render_markdown(&plain).contains("red ticks"));
}

#[test]
fn report_html_has_each_websocket_bucket_and_the_old_generations() {
    let run = support::ws_fixture();
    let html = String::from_utf8(HtmlExporter.render(&run).unwrap()).unwrap();
    let start = html.find("id=\"rb-data\">").unwrap() + "id=\"rb-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    let case = &data["cases"][3];
    assert_eq!(case["w_ms"], 100.0);
    let w = case["w"].as_array().unwrap();
    assert_eq!(w.len(), 100);
    // [open, opened, failed, closed, cut, sent, echoed, lost, late]
    let open: Vec<u64> = w.iter().map(|r| r[0].as_u64().unwrap()).collect();
    assert_eq!((open[0], open[19], open[20], open[21]), (100, 100, 95, 100));
    assert_eq!((open[40], open[41], open[99]), (97, 100, 100));
    assert_eq!(w[40], serde_json::json!([97, 0, 0, 1, 2, 100, 100, 5, 0]));
    let g = case["g"].as_array().unwrap();
    assert_eq!(g[2], serde_json::json!([4000.0, 7, 4, 2]));
    // Cases without generations or WebSocket buckets carry none.
    assert!(data["cases"][0].get("g").is_none());
    let plain = support::fixture();
    let html = String::from_utf8(HtmlExporter.render(&plain).unwrap()).unwrap();
    assert!(!html.contains("\"w_ms\""));
}
