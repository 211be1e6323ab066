//! The kernel evidence in the report: the "Observed reload phases" section
//! (markdown and HTML) and the accept-queue chart, from the fixture run
//! with evidence attached to one case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::evidence::{CaseEvidence, ObservedPhases, QueueSeries};
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::chart::{Chart, render_svg};
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::{RunReport, render_markdown};

const MS: u64 = 1_000_000;

/// The fixture with a naive reload's evidence on "reload without socket":
/// at 1 s pid 200 binds a second socket, pid 100's socket closes with 12
/// connections queued; the second action's old process never exited.
fn with_evidence() -> RunReport {
    let mut run = support::fixture();
    let case = run
        .cases
        .iter_mut()
        .find(|c| c.name == "reload without socket")
        .unwrap();
    case.evidence = Some(CaseEvidence {
        address: "127.0.0.1:8080".into(),
        fast_interval_ns: 5 * MS,
        slow_interval_ns: 100 * MS,
        samples: 900,
        sampler_cpu_s: 0.125,
        queues: vec![
            QueueSeries {
                inode: 11,
                backlog: 128,
                max_depth: 12,
                first_seen_ns: 0,
                last_seen_ns: 1_030 * MS,
                depth: vec![(0, 0), (1_005 * MS, 5), (1_025 * MS, 12)],
                owners: vec![(0, vec![100])],
            },
            QueueSeries {
                inode: 12,
                backlog: 128,
                max_depth: 3,
                first_seen_ns: 1_010 * MS,
                last_seen_ns: 2_010 * MS,
                depth: vec![(1_010 * MS, 0), (1_500 * MS, 3), (1_600 * MS, 0)],
                owners: vec![(1_010 * MS, vec![200])],
            },
        ],
        ..CaseEvidence::default()
    });
    let t0 = case.actions[0].trigger_ns;
    case.actions[0].observed = Some(ObservedPhases {
        old_pids: vec![100],
        new_pids: vec![200],
        new_listening_ns: Some(t0 + 10 * MS),
        old_stopped_accepting_ns: Some(t0 + 35 * MS),
        old_drained_ns: Some(t0 + 40 * MS),
        old_exited_ns: Some(t0 + 45 * MS),
        resolution_ns: 5 * MS,
    });
    let t1 = case.actions[1].trigger_ns;
    case.actions[1].observed = Some(ObservedPhases {
        old_pids: vec![200],
        new_pids: vec![300],
        new_listening_ns: Some(t1 + 12 * MS),
        old_stopped_accepting_ns: Some(t1 + 30 * MS),
        old_drained_ns: None,
        old_exited_ns: None,
        resolution_ns: 6 * MS,
    });
    run
}

fn section(md: &str) -> &str {
    let start = md
        .find("## Observed reload phases")
        .expect("section present");
    let end = md[start..].find("## ab view").unwrap() + start;
    &md[start..end]
}

#[test]
fn observed_phases_section_shows_reported_and_observed_side_by_side() {
    let md = render_markdown(&with_evidence());
    insta::assert_snapshot!("observed_phases_md", section(&md));
    // A phase not seen is said so, never borrowed from another.
    assert!(section(&md).contains("| not observed | not observed |"));
}

#[test]
fn a_run_without_evidence_has_no_section() {
    let md = render_markdown(&support::fixture());
    assert!(!md.contains("## Observed reload phases"));
}

#[test]
fn html_report_has_the_section_and_the_chart() {
    let run = with_evidence();
    let html = String::from_utf8(HtmlExporter.render(&run).unwrap()).unwrap();
    assert!(html.contains("<h2>Observed reload phases</h2>"));
    assert!(html.contains("deepest accept queue 12 (backlog 128)"));
    assert!(html.contains("id=\"accept_queue\""));
}

#[test]
fn accept_queue_chart_draws_each_socket_with_its_depth() {
    let svg = render_svg(Chart::AcceptQueue, &with_evidence()).unwrap();
    assert!(
        svg.contains("socket 1: max 12 of 128"),
        "legend of the old socket"
    );
    assert!(
        svg.contains("socket 2: max 3 of 128"),
        "legend of the new socket"
    );
    assert!(
        svg.contains("no kernel evidence recorded"),
        "cases without evidence say so"
    );
}

#[test]
fn a_case_whose_address_never_showed_a_listener_says_so() {
    let e = CaseEvidence {
        address: "127.0.0.1:8080".into(),
        samples: 50,
        ..Default::default()
    };
    let line = reloadbench_reports::export::tables::evidence::evidence_line(&e);
    assert!(
        line.contains("No listening socket was ever seen on this address"),
        "{line}"
    );
    let seen = CaseEvidence {
        queues: vec![QueueSeries::default()],
        ..e
    };
    let line = reloadbench_reports::export::tables::evidence::evidence_line(&seen);
    assert!(!line.contains("No listening socket"), "{line}");
}
