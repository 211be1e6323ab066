//! Snapshot tests of the text outputs rendered from the fixture run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::csv::CsvExporter;
use reloadbench_reports::export::json::JsonExporter;
use reloadbench_reports::{ab_text, render_markdown};

#[test]
fn markdown_report_of_the_fixture() {
    insta::assert_snapshot!("report_md", render_markdown(&support::fixture()));
}

#[test]
fn markdown_states_a_shared_load_in_one_sentence() {
    let mut run = support::fixture();
    for case in &mut run.cases {
        case.load.config.requests = Some(100_000);
    }
    let md = render_markdown(&run);
    assert!(
        md.contains(
            "Load of every case: 100 concurrent clients sending GET requests, 100000 in total, \
             a new connection per request, 30.0 s timeout per request; time buckets of 100 ms."
        ),
        "{md}"
    );
    assert!(!md.contains("Load of each case:"), "no per-case table then");
}

#[test]
fn ab_text_of_the_restart_case() {
    let run = support::fixture();
    insta::assert_snapshot!("ab_restart", ab_text(&run.cases[1]));
}

#[test]
fn timeline_csv_of_the_fixture() {
    let csv = String::from_utf8(CsvExporter.render(&support::fixture()).unwrap()).unwrap();
    // The whole file is long; the header and the rows around the first restart tell the story.
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4 * 30, "one row per case and bucket");
    let excerpt: Vec<&str> = lines[..1]
        .iter()
        .chain(&lines[1 + 30 + 9..1 + 30 + 13])
        .copied()
        .collect();
    insta::assert_snapshot!("timeline_csv_excerpt", excerpt.join("\n"));
}

#[test]
fn json_round_trips_through_read_results() {
    let run = support::fixture();
    let bytes = JsonExporter.render(&run).unwrap();
    let back = reloadbench_reports::parse_results(
        "mem.json".as_ref(),
        std::str::from_utf8(&bytes).unwrap(),
    )
    .unwrap();
    assert_eq!(back, run);
    assert!(bytes.ends_with(b"}\n"));
    let head: String = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .take(8)
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("json_head", head);
}

#[test]
fn compare_of_a_run_with_itself_shows_no_regression() {
    let run = support::passing_fixture();
    let cmp = reloadbench_reports::compare(&run, &run, &Default::default()).unwrap();
    assert!(!cmp.regressed);
    insta::assert_snapshot!("compare_same", cmp.markdown);
}

#[test]
fn compare_flags_more_failures_slower_p99_fewer_rps_and_lists_missing_cases() {
    let base = support::passing_fixture();
    let mut new = base.clone();
    // naive reload: 2 more resets.
    let naive = &mut new.cases[2];
    naive.load.failed += 2;
    for c in &mut naive.load.classes {
        if c.class == reloadbench_model::outcome::FailureClass::Reset {
            c.count += 2;
        }
    }
    // fd-pass: p99 +50 %, throughput -20 %, reload time +100 %.
    let fd = &mut new.cases[3];
    for q in &mut fd.load.latency.percentiles {
        if (q.p - 99.0).abs() < 1e-9 {
            q.us = q.us * 3 / 2;
        }
    }
    fd.load.elapsed_ns = fd.load.elapsed_ns * 5 / 4;
    for a in &mut fd.actions {
        a.ready_ns = a.ready_ns.map(|r| a.trigger_ns + (r - a.trigger_ns) * 2);
    }
    // "normal" is gone, a new case appears.
    new.cases.remove(0);
    let mut extra = new.cases[2].clone();
    extra.name = "reload master-worker".into();
    new.cases.push(extra);
    let cmp = reloadbench_reports::compare(&base, &new, &Default::default()).unwrap();
    assert!(cmp.regressed);
    insta::assert_snapshot!("compare_regressed", cmp.markdown);
}

#[test]
fn compare_within_tolerances_is_not_a_regression() {
    let base = support::passing_fixture();
    let mut new = base.clone();
    for case in &mut new.cases {
        // 5 % slower: inside the default 10 % for requests/s.
        case.load.elapsed_ns = case.load.elapsed_ns * 105 / 100;
    }
    assert!(
        !reloadbench_reports::compare(&base, &new, &Default::default())
            .unwrap()
            .regressed
    );
}
