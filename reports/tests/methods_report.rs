//! Failures split by method and by what a client would retry: shown when a
//! run sends several methods, keeps connections alive or retries; absent (the
//! report unchanged) otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::load::{
    AfterRetry, FailureRecord, MethodCounts, RequestKindSummary, RetryPolicy,
};
use reloadbench_reports::RunReport;
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::actions_csv::ActionsCsvExporter;
use reloadbench_reports::export::csv::CsvExporter;
use reloadbench_reports::render_markdown;

fn counts(method: &str, ok: u64, failed: u64, retryable: u64, after: Option<u64>) -> MethodCounts {
    MethodCounts {
        method: method.into(),
        ok,
        failed,
        failed_retryable: retryable,
        failed_not_retryable: failed - retryable,
        retries: retryable,
        failed_by_class: Default::default(),
        after_retry: after.map(|f| AfterRetry {
            ok: ok + failed - f,
            failed: f,
            failed_by_class: Default::default(),
        }),
    }
}

/// The fixture's "reload without socket" case (3 resets, 2 reloads) as an
/// 80/20 GET/POST keep-alive run with `retry = "both"`: of its 3 failures,
/// 2 are POSTs attributed to the first reload (not retryable) and 1 a GET
/// (retryable, and its retry succeeded).
fn mixed() -> RunReport {
    let mut run = support::fixture();
    let case = &mut run.cases[2];
    let kind = |weight, method: &str| RequestKindSummary {
        weight,
        method: method.into(),
        path: "/".into(),
        body_bytes: if method == "POST" { 4096 } else { 0 },
    };
    let load = &mut case.load;
    load.config.mix = vec![kind(80, "GET"), kind(20, "POST")];
    load.config.method = "GET+POST".into();
    load.config.keep_alive = true;
    load.config.retry = RetryPolicy::Both;
    let ok = load.ok;
    load.methods = vec![
        counts("GET", ok - ok / 5, 1, 1, Some(0)),
        counts("POST", ok / 5, 2, 0, Some(2)),
    ];
    load.failed_retryable = 1;
    load.failed_not_retryable = 2;
    load.retries = 1;
    load.after_retry = Some(AfterRetry {
        ok: ok + 1,
        failed: 2,
        failed_by_class: Default::default(),
    });
    assert_eq!(load.failures.len(), 3, "the fixture's three resets");
    let kinds = [1u16, 0, 1];
    for (f, k) in load.failures.iter_mut().zip(kinds) {
        f.kind = k;
        f.retryable = k == 0;
        f.reused = true;
    }
    // Both POST failures inside the first action's disruption window.
    let ts: Vec<u64> = load
        .failures
        .iter()
        .map(|f: &FailureRecord| f.t_ns)
        .collect();
    let a = &mut case.actions[0];
    a.disruption_start_ns = Some(ts[0]);
    a.disruption_end_ns = Some(ts[2]);
    run
}

#[test]
fn a_mixed_keep_alive_run_gets_the_method_table_retry_columns_and_post_lost() {
    let run = mixed();
    let md = render_markdown(&run);
    assert!(md.contains("### Failures by method"), "{md}");
    assert!(
        md.contains("| reload without socket | POST |"),
        "a row per case and method:\n{md}"
    );
    assert!(md.contains("failed after retry"), "{md}");
    assert!(md.contains("what a careful client would feel"), "{md}");
    // The failures table: failed, retryable, not retryable, retries, after retry.
    let row = md
        .lines()
        .find(|l| l.starts_with("| reload without socket | 3 |"))
        .expect("failures row");
    assert!(
        row.starts_with("| reload without socket | 3 | 1 | 2 | 1 | 2 |"),
        "{row}"
    );
    // Only the mixed case sends POSTs: its action table has the column.
    assert!(md.contains("POST lost"), "{md}");
    let html = String::from_utf8(
        reloadbench_reports::export::html::HtmlExporter
            .render(&run)
            .unwrap(),
    )
    .unwrap();
    assert!(html.contains("<h3>Failures by method</h3>"));
    let csv = String::from_utf8(ActionsCsvExporter.render(&run).unwrap()).unwrap();
    let head = csv.lines().next().unwrap();
    assert!(head.ends_with(",kernel,failed_GET,failed_POST"), "{head}");
    let first = csv
        .lines()
        .find(|l| l.starts_with("reload without socket,,0,"))
        .unwrap();
    assert!(first.ends_with(",1,2"), "{first}");
    let timeline = String::from_utf8(CsvExporter.render(&run).unwrap()).unwrap();
    assert!(
        timeline
            .lines()
            .next()
            .unwrap()
            .ends_with(",failed_retryable"),
        "{timeline}"
    );
}

#[test]
fn a_single_method_run_without_keep_alive_or_retries_shows_none_of_it() {
    let run = support::fixture();
    let md = render_markdown(&run);
    for absent in [
        "Failures by method",
        "retryable",
        "POST lost",
        "failed after retry",
        "stale connections",
    ] {
        assert!(!md.contains(absent), "{absent} in:\n{md}");
    }
    let csv = String::from_utf8(ActionsCsvExporter.render(&run).unwrap()).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",kernel"));
}

#[test]
fn careful_clients_show_the_stale_connections_they_replaced() {
    let mut run = mixed();
    assert!(
        !render_markdown(&run).contains("stale connections"),
        "not with both"
    );
    let load = &mut run.cases[2].load;
    load.config.retry = RetryPolicy::Safe;
    load.after_retry = None;
    load.stale_discarded = 42;
    let md = render_markdown(&run);
    assert!(
        md.contains("found closed by the server before reusing them"),
        "{md}"
    );
    // failed, retryable, not retryable, retries, stale connections (no after-retry column).
    let row = md
        .lines()
        .find(|l| l.starts_with("| reload without socket | 3 |"))
        .expect("failures row");
    assert!(
        row.starts_with("| reload without socket | 3 | 1 | 2 | 1 | 42 |"),
        "{row}"
    );
    // Cases with another policy show a dash.
    let other = md
        .lines()
        .find(|l| l.starts_with(&format!("| {} |", run.cases[0].name)) && l.contains(" – |"));
    assert!(other.is_some(), "{md}");
}
