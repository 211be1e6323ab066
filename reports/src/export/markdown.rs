//! `report.md`: the run as GitHub-flavoured markdown, readable on GitHub and
//! in a CI job summary. Charts are referenced as `charts/*.png`.

use std::fmt::Write as _;

use reloadbench_model::run::RunReport;

use super::Exporter;
use super::ab_text::ab_text;
use super::chart::Chart;
use super::tables;
use crate::error::ExportError;

/// Renders `report.md`.
pub fn render_markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# reloadbench: {}\n", report.scenario.name);
    if !report.scenario.description.is_empty() {
        let _ = writeln!(w, "{}\n", report.scenario.description);
    }
    let _ = writeln!(w, "{}\n", headline(report));
    let _ = writeln!(w, "## Summary\n");
    let _ = writeln!(w, "{}", tables::summary(report).to_markdown());
    let _ = writeln!(w, "{}\n", SUMMARY_LEGEND);
    for case in report.cases.iter().filter(|c| c.error.is_some()) {
        let _ = writeln!(
            w,
            "> **{}** did not run to its end: {}\n",
            case.name,
            case.error.as_deref().unwrap_or_default()
        );
    }
    let expectations = tables::expectations(report);
    if !expectations.rows.is_empty() {
        let _ = writeln!(w, "## Expectations\n");
        let _ = writeln!(w, "{}", expectations.to_markdown());
    }
    let _ = writeln!(w, "## Charts\n");
    for chart in Chart::ALL {
        let _ = writeln!(w, "![{}](charts/{}.png)\n", chart.title(), chart.stem());
    }
    if report.cases.iter().any(|c| !c.actions.is_empty()) {
        let _ = writeln!(w, "## Actions\n");
        let _ = writeln!(w, "{}\n", ACTIONS_LEGEND);
        for case in &report.cases {
            if let Some(t) = tables::actions(case) {
                let _ = writeln!(w, "### {}\n", case.name);
                let _ = writeln!(w, "{}", t.to_markdown());
            }
        }
    }
    let _ = writeln!(w, "## ab view\n");
    let _ = writeln!(w, "{}\n", AB_LEGEND);
    let _ = writeln!(w, "{}", tables::ab_view(report).to_markdown());
    for case in &report.cases {
        let _ = writeln!(
            w,
            "<details><summary>ab-style output: {}</summary>\n\n```text\n{}```\n\n</details>\n",
            case.name,
            ab_text(case)
        );
    }
    let _ = writeln!(w, "## Environment\n");
    let _ = writeln!(w, "{}", tables::environment(report).to_markdown());
    let _ = writeln!(w, "CPU time used during each case:\n");
    out.push_str(&tables::cpu(report).to_markdown());
    out
}

/// The one-line result: passed, or how many expectations failed.
pub fn headline(report: &RunReport) -> String {
    let total: usize = report.cases.iter().map(|c| c.expectations.len()).sum();
    let failed: usize = report
        .cases
        .iter()
        .flat_map(|c| &c.expectations)
        .filter(|e| !e.passed)
        .count();
    let errored = report.cases.iter().filter(|c| c.error.is_some()).count();
    let mut s = if report.passed() {
        format!("**Result: ✅ passed** ({total} expectations held)")
    } else {
        format!("**Result: ❌ failed** ({failed} of {total} expectations failed)")
    };
    if errored > 0 {
        let _ = write!(s, ", {errored} case(s) did not finish");
    }
    let _ = write!(
        s,
        ". Scenario `{}`, started {}, reloadbench {}.",
        report.scenario.file, report.started_at, report.tool_version
    );
    s
}

const SUMMARY_LEGEND: &str = "complete = ok + failed, each request counted once in exactly one \
failure class; requests/s = complete / time taken; latency percentiles are of successful requests; \
reload time = trigger until the new process reported ready.";

const ACTIONS_LEGEND: &str = "at = trigger time since load start; reload, drained and exited are \
ms after the trigger; disruption window = first to last failure attributed to the action; \
recovery = trigger until throughput was back at its steady level.";

const AB_LEGEND: &str = "The same failures in ApacheBench's counters, for comparison with `ab` \
output. Unlike ab, each failed request is counted once and Connect + Receive + Length + \
Exceptions + Write errors + Non-2xx = failed.";

/// The markdown exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        Ok(render_markdown(report).into_bytes())
    }
}
