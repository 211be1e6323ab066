//! HTTP/2 in the report: the failure classes of streams refused by a GOAWAY,
//! reset and lost are drawn per bucket on the timeline and explained once in
//! report.md; an "HTTP/2 streams" table has a row per case that spoke it
//! (GOAWAYs, refused, reset by code, lost, retries); the load line says
//! HTTP/2 and its streams. A run without HTTP/2 shows none of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use reloadbench_model::load::{BucketFailures, ClassCount, H2Report};
use reloadbench_model::outcome::FailureClass;
use reloadbench_reports::RunReport;
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::chart::{Chart, render_svg};
use reloadbench_reports::export::html::HtmlExporter;

/// The refused, reset and lost streams planted in the fd-pass case.
const PLANTED: [(FailureClass, u64); 3] = [
    (FailureClass::GoawayRefused, 9),
    (FailureClass::StreamReset, 2),
    (FailureClass::StreamLost, 1),
];

/// The fixture with HTTP/2 (10 streams) on every case; the fd-pass case
/// (index 3) received 6 GOAWAYs (one with an error) and has 9 refused, 2
/// reset (CANCEL) and 1 lost stream in the bucket of its first reload; the
/// normal case (index 0) retried refused streams.
fn h2_fixture() -> RunReport {
    let mut r = same_load(support::fixture());
    for c in &mut r.cases {
        c.load.h2 = Some(H2Report {
            streams: 10,
            ..H2Report::default()
        });
    }
    r.cases[0].load.h2.as_mut().unwrap().retry_refused = true;
    r.cases[0].load.retries = 4;
    let case = &mut r.cases[3];
    let trigger = case.actions[0].trigger_ns;
    let width = case.load.config.bucket_ns();
    let b = case
        .load
        .buckets
        .iter_mut()
        .find(|b| b.start_ns <= trigger && trigger < b.start_ns + width)
        .unwrap();
    b.goaways = 6;
    for (class, count) in PLANTED {
        b.failed.push(BucketFailures { class, count });
        case.load.classes.push(ClassCount {
            class,
            count,
            on_reused: count,
            first_ns: trigger,
            last_ns: trigger,
        });
        case.load.failed += count;
    }
    case.load.h2 = Some(H2Report {
        streams: 10,
        retry_refused: false,
        goaway: 6,
        goaway_graceful: 5,
        goaway_error: 1,
        refused: 9,
        reset: 2,
        reset_codes: BTreeMap::from([("CANCEL".to_owned(), 2)]),
        lost: 1,
        protocol_errors: 0,
        reconnects: 7,
    });
    r
}

/// `r` with every case's load settings those of its first case.
fn same_load(mut r: RunReport) -> RunReport {
    let cfg = r.cases[0].load.config.clone();
    for c in &mut r.cases {
        c.load.config = cfg.clone();
    }
    r
}

fn row<'a>(md: &'a str, case: &str, after: &str) -> Vec<&'a str> {
    let section = &md[md.find(after).unwrap_or_else(|| panic!("no {after:?}"))..];
    let line = section
        .lines()
        .find(|l| l.starts_with(&format!("| {case} |")))
        .unwrap_or_else(|| panic!("no row for {case} after {after:?}"));
    line.split('|').map(str::trim).collect()
}

#[test]
fn an_h2_run_gets_a_stream_table_the_classes_explained_and_drawn() {
    let run = h2_fixture();
    let md = reloadbench_reports::render_markdown(&run);
    let fd = &run.cases[3].name;
    let cells = row(&md, fd, "### HTTP/2 streams");
    assert_eq!(
        &cells[1..13],
        &[
            fd.as_str(),
            "10",
            "6",
            "5",
            "1",
            "9",
            "2",
            "CANCEL 2",
            "1",
            "0",
            "–",
            "7"
        ],
        "{md}"
    );
    // Retries only where refused streams were retried.
    let normal = &run.cases[0].name;
    assert_eq!(row(&md, normal, "### HTTP/2 streams")[11], "4");
    // Every class once, in one sentence; refused = never processed.
    for (class, _) in PLANTED {
        let line = format!("- **{}**: {}", class.label(), class.meaning());
        assert_eq!(md.matches(&line).count(), 1, "{line:?} in\n{md}");
    }
    assert!(
        FailureClass::GoawayRefused
            .meaning()
            .contains("never processed")
    );
    // The failures table has a column per stream class with its count.
    for (class, count) in PLANTED {
        assert_eq!(run.cases[3].failed_of(class), count);
        assert!(md.contains(class.label()), "{md}");
    }
    assert!(
        md.contains("Load of every case: HTTP/2, "),
        "{}",
        md.lines().find(|l| l.starts_with("Load of")).unwrap_or("")
    );
    assert!(md.contains("× 10 concurrent streams"));
    // The timeline draws each stream class of the bucket in its colour.
    let svg = render_svg(Chart::Timeline, &run).unwrap();
    for (class, _) in PLANTED {
        assert!(
            svg.contains(class.label()),
            "legend lacks {}",
            class.label()
        );
    }
    for fill in ["#2CA08C", "#FFBB78", "#A0522D"] {
        assert!(
            svg.matches(&format!("fill=\"{fill}\"")).count() >= 2,
            "{fill}: legend swatch and bar"
        );
    }
    // The ab-style block has loadgen's HTTP/2 lines; an HTTP/1.1 case's has none.
    let ab = reloadbench_reports::ab_text(&run.cases[3]);
    for line in [
        "HTTP/2 streams:         10 per connection\n",
        "GOAWAY received:        6 (graceful 5, with error 1)\n",
        "Streams refused by GOAWAY: 9\n",
        "Streams reset:          2 (CANCEL 2)\n",
        "Streams lost:           1\n",
        "Reconnects:             7 (after a GOAWAY or a closed connection)\n",
    ] {
        assert!(ab.contains(line), "{line:?} in\n{ab}");
    }
    assert!(!ab.contains("Retries:"), "{ab}");
    assert!(reloadbench_reports::ab_text(&run.cases[0]).contains("Retries:                4"));
    let html = String::from_utf8(HtmlExporter.render(&run).unwrap()).unwrap();
    assert!(html.contains("<h3>HTTP/2 streams</h3>"));
}

#[test]
fn a_run_without_h2_has_no_stream_table_and_its_load_line_is_unchanged() {
    let run = same_load(support::fixture());
    let md = reloadbench_reports::render_markdown(&run);
    assert!(!md.contains("HTTP/2"), "{md}");
    assert!(!reloadbench_reports::ab_text(&run.cases[3]).contains("HTTP/2"));
    assert!(
        md.contains("Load of every case: 100 concurrent clients"),
        "{md}"
    );
    // One case over HTTP/2 among HTTP/1.1 ones: the cases' loads differ.
    let mut mixed = same_load(support::fixture());
    mixed.cases[1].load.h2 = Some(H2Report {
        streams: 4,
        ..H2Report::default()
    });
    let md = reloadbench_reports::render_markdown(&mixed);
    assert!(!md.contains("Load of every case"), "{md}");
    assert!(md.contains("HTTP/2, 4 streams"), "the load table says it");
}
