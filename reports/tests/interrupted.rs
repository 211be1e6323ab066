//! An interrupted run's reports say so, name the case that was cut short and
//! the cases that never ran, and do not claim a pass or a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::run::Interruption;
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::export::json::JsonExporter;
use reloadbench_reports::{RunReport, parse_results, render_markdown};

/// The fixture as a five-case run interrupted by SIGINT during its third case.
fn interrupted() -> RunReport {
    let mut run = support::fixture();
    run.planned_cases = run.cases.iter().map(|c| c.name.clone()).collect();
    run.planned_cases.push("reload master-worker".into());
    run.cases.truncate(3);
    run.cases[2].error = Some("interrupted by SIGINT".into());
    run.interrupted = Some(Interruption {
        signal: "SIGINT".into(),
        case: Some("reload without socket".into()),
        trial: None,
    });
    run
}

#[test]
fn markdown_headline_of_an_interrupted_run_counts_finished_cases_and_names_the_rest() {
    let md = render_markdown(&interrupted());
    let first = md.lines().find(|l| l.starts_with("**Result")).unwrap();
    assert_eq!(
        first,
        "**Result: ⏹ interrupted: 2 of 5 cases finished** (by SIGINT; expectations of the \
         finished cases: 0 of 1 failed; cut short: `reload without socket`; never ran: \
         `reload with socket`, `reload master-worker`). Scenario `scenarios/seed.toml`, \
         started 2026-11-24T02:00:00Z, reloadbench 0.1.0."
    );
    assert!(!md.contains("❌ failed"), "{md}");
    assert!(!md.contains("✅ passed"), "{md}");
}

#[test]
fn html_says_the_same() {
    let html = String::from_utf8(HtmlExporter.render(&interrupted()).unwrap()).unwrap();
    // The ⏹ of report.md is a mark drawn inline (no emoji font needed).
    assert!(
        html.contains("Result: <span class=\"mk stop\"><svg"),
        "{html}"
    );
    assert!(
        html.contains("</svg></span> interrupted: 2 of 5 cases finished (by SIGINT;"),
        "{html}"
    );
    assert!(!html.contains('⏹'), "{html}");
    assert!(
        html.contains("never ran: reload with socket, reload master-worker)"),
        "{html}"
    );
    assert!(!html.contains("❌ failed"));
}

#[test]
fn an_interruption_before_any_case_finished_lists_every_planned_case() {
    let mut run = interrupted();
    run.cases.clear();
    run.interrupted = Some(Interruption {
        signal: "SIGTERM".into(),
        case: Some("normal".into()),
        trial: None,
    });
    let md = render_markdown(&run);
    assert!(
        md.contains(
            "**Result: ⏹ interrupted: 0 of 5 cases finished** (by SIGTERM; cut short: \
             `normal`; never ran: `restart`, `reload without socket`, `reload with socket`, \
             `reload master-worker`)"
        ),
        "{md}"
    );
    assert!(!run.passed());
}

#[test]
fn results_json_keeps_the_interruption_and_the_plan() {
    let run = interrupted();
    let bytes = JsonExporter.render(&run).unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.contains(&format!(
            "\"schema_version\": {}",
            reloadbench_model::SCHEMA_VERSION
        )),
        "written in the current schema, whatever the fixture's"
    );
    let back = parse_results("mem.json".as_ref(), text).unwrap();
    let mut current = run.clone();
    current.schema_version = reloadbench_model::SCHEMA_VERSION;
    for c in &mut current.cases {
        c.load.schema_version = reloadbench_model::SCHEMA_VERSION;
    }
    assert_eq!(back, current);
    assert_eq!(
        back.never_ran(),
        ["reload with socket", "reload master-worker"]
    );
    assert_eq!(back.finished_cases().count(), 2);
}

#[test]
fn a_version_1_file_reads_as_not_interrupted_with_no_plan() {
    let text = std::fs::read_to_string(support::fixture_path()).unwrap();
    assert!(text.contains("\"schema_version\": 1,"));
    let run = support::fixture();
    // Read into the current schema, which it says.
    assert_eq!(run.schema_version, reloadbench_model::SCHEMA_VERSION);
    assert!(run.interrupted.is_none());
    assert!(run.planned_cases.is_empty());
    assert!(run.never_ran().is_empty());
}
