//! report.md stays bounded however many actions a run has: a synthetic run of
//! 10 cases × 1,000 actions renders to under 100 KB and 1,500 lines, lists
//! the worst action of every case (found here independently), states the
//! cut-off, and keeps per-action lists short; report.html has every action in
//! a collapsed table per case. Cases at or under the cut-off are unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;

use reloadbench_model::ledger::ProxySide;
use reloadbench_model::run::{ActionReport, CaseReport, RunReport};
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::render_markdown;
use reloadbench_reports::synthetic::{Shape, run};

/// The length report.md must stay under for 10 cases × 1,000 actions.
const MAX_BYTES: usize = 100_000;
const MAX_LINES: usize = 1_500;

fn shape(cases: usize, actions: usize) -> Shape {
    Shape {
        cases,
        // Buckets do not appear in report.md (only in charts and timeline.csv).
        buckets: 600,
        actions,
        failing_every: 50,
    }
}

/// The worst action by the report's stated order (most failures attributed,
/// then failed actions, then slowest trigger → ready, then the earliest),
/// computed here from the run data.
fn worst_of(case: &CaseReport) -> &ActionReport {
    case.actions
        .iter()
        .max_by_key(|a| {
            let failed: u64 = a.failures.iter().map(|f| f.count).sum();
            let ready = a.ready_ns.map_or(0, |r| r - a.trigger_ns);
            (failed, !a.ok, ready, Reverse(a.index))
        })
        .unwrap()
}

/// The text between `start` and the next line starting with `end` (or the end).
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} is missing"));
    let rest = &text[from + start.len()..];
    let to = rest.find(&format!("\n{end}")).unwrap_or(rest.len());
    &rest[..to]
}

/// The run of 10 cases × 1,000 actions, with case 0's per-action lists made
/// long on purpose: every action lost a request after forwarding, and 1,000
/// proxy generations never reported.
fn big_run() -> RunReport {
    let mut r = run(shape(10, 1_000));
    let case = &mut r.cases[0];
    for a in &mut case.actions {
        a.lost_after_forwarding = Some(1);
    }
    let ledger = case.ledger.as_mut().unwrap();
    ledger.lost_after_forwarding = Some(1_000);
    let missing: Vec<u64> = (1..=1_000).collect();
    ledger.unchecked.push(format!(
        "proxy: generation(s) {missing:?} never reported (killed or crashed)"
    ));
    ledger.proxy = Some(ProxySide {
        missing,
        ..ProxySide::default()
    });
    r
}

#[test]
fn report_md_of_10_cases_of_1000_actions_stays_short_and_lists_each_worst_action() {
    let r = big_run();
    assert_eq!(
        r.cases.iter().map(|c| c.actions.len()).sum::<usize>(),
        10_000
    );
    let md = render_markdown(&r);
    if let Some(out) = std::env::var_os("RELOADBENCH_CHART_DUMP") {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(std::path::Path::new(&out).join("bounded_report.md"), &md).unwrap();
    }
    let lines = md.lines().count();
    assert!(
        md.len() < MAX_BYTES && lines < MAX_LINES,
        "report.md is {} bytes and {lines} lines",
        md.len()
    );
    let actions = section(&md, "## Actions\n", "## ");
    for case in &r.cases {
        let part = section(actions, &format!("### {}\n", case.name), "### ");
        let w = worst_of(case);
        let row = format!(
            "| {} | {:.3} | {} |",
            w.index,
            w.trigger_ns as f64 / 1e9,
            w.label
        );
        assert!(
            part.contains(&row),
            "{}: worst row {row} missing",
            case.name
        );
        assert!(
            part.contains("A case with more than 10 actions is summarised here")
                && part.contains(
                    "the full table of all 1,000 actions is in actions.csv and report.html"
                ),
            "{}: the cut-off is stated:\n{part}",
            case.name
        );
        assert!(part.contains("| trigger → ready | 1,000 |"), "{part}");
        // Header, divider and 10 rows of worst actions; 3 phase rows + 2.
        assert_eq!(part.matches("\n|").count(), 5 + 12, "{part}");
    }
    let observed = section(&md, "## Observed reload phases\n", "## ");
    assert_eq!(
        observed
            .matches("every action's observed phases are in actions.csv")
            .count(),
        10
    );
    let kernel = section(&md, "## Kernel counters and machine load\n", "## ");
    // Restart and naive cases lose requests at every 50th action: 20 each.
    assert!(
        kernel.contains("The counters moved in 20 of 1,000 actions"),
        "{kernel}"
    );
    // The long lists of case 0: lost after forwarding per action (ledger and
    // diagnosis) and the generations that never reported.
    assert!(
        md.contains(", and 990 more actions (the most listed"),
        "ledger"
    );
    assert!(
        md.contains("after #9 reload (restart), and 990 more actions)"),
        "diagnosis"
    );
    assert!(md.contains(
        "proxy: 1,000 generations never reported (killed or crashed): 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, and 990 more"
    ));
}

#[test]
fn the_cut_off_is_ten_actions_a_case_of_ten_keeps_its_full_table() {
    let at = run(shape(1, 10));
    let md = render_markdown(&at);
    let actions = section(&md, "## Actions\n", "## ");
    assert!(!actions.contains("summarised"), "{actions}");
    // Header, divider and one row per action.
    assert_eq!(actions.matches("\n|").count(), 12, "{actions}");
    for a in &at.cases[0].actions {
        assert!(actions.contains(&format!("\n| {} | ", a.index)));
    }
    let above = run(shape(1, 11));
    let md = render_markdown(&above);
    let actions = section(&md, "## Actions\n", "## ");
    assert!(
        actions.contains("the full table of all 11 actions"),
        "{actions}"
    );
}

#[test]
fn report_html_has_every_action_in_a_collapsed_table_per_case() {
    // Fewer buckets and cases than above: the page draws every chart.
    let r = Shape {
        buckets: 100,
        ..shape(2, 1_000)
    };
    let r = run(r);
    let html = String::from_utf8(HtmlExporter.render(&r).unwrap()).unwrap();
    let actions = section(&html, "<h2>Actions</h2>", "<h2>");
    for case in &r.cases {
        let open = format!(
            "<details><summary>All 1,000 actions of {}</summary>",
            case.name
        );
        let body = section(actions, &open, "</details>");
        assert_eq!(body.matches("<tr>").count(), 1 + 1_000, "{}", case.name);
        let w = worst_of(case);
        let (index, at) = (w.index, w.trigger_ns as f64 / 1e9);
        assert!(body.starts_with("\n<table class=\"all\">"), "{body:.80}");
        assert!(body.contains(&format!("<tr><td>{index}</td><td>{at:.3}</td>")));
        let summary = section(actions, &format!("<h3>{}</h3>", case.name), "<details>");
        let cell = format!("<tr><td class=\"r\">{index}</td><td class=\"r\">{at:.3}</td>");
        assert!(
            summary.contains(&cell),
            "the worst action is in the summary"
        );
        assert!(summary.contains("is in actions.csv and below"));
    }
    assert_eq!(html.matches("<details><summary>All ").count(), 2);
}
