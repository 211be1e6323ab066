//! `report.md`: the run as GitHub-flavoured markdown, readable on GitHub and
//! in a CI job summary. Charts are referenced as `charts/*.png`.

use std::fmt::Write as _;

use reloadbench_model::run::{CaseReport, Interruption, RunReport};
use reloadbench_model::words::count;

use super::Exporter;
use super::ab_text::ab_text;
use super::chart::Chart;
use super::glossary;
use super::grid::markdown_cell as md;
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
    let load = load_line(report);
    if let Some(load) = &load {
        let _ = writeln!(w, "{load}\n");
    }
    let _ = writeln!(w, "## Summary\n");
    if let Some(cases) = glossary::cases_markdown(report) {
        let _ = writeln!(w, "{cases}");
    }
    let _ = writeln!(w, "{}", tables::summary(report).to_markdown());
    let _ = writeln!(w, "{}\n", SUMMARY_LEGEND);
    if let Some(t) = tables::trials(report) {
        let _ = writeln!(
            w,
            "## Trials\n\n{}\n{}\n",
            t.to_markdown(),
            tables::TRIALS_LEGEND
        );
    }
    let _ = writeln!(w, "## Failures and reloads\n");
    let _ = writeln!(w, "{}", tables::failures(report).to_markdown());
    let _ = writeln!(w, "{}\n", FAILURES_LEGEND);
    if report.cases.iter().any(tables::ws_rows::is_ws) {
        let _ = writeln!(w, "{}\n", tables::ws_rows::WS_ROWS_LEGEND);
    }
    if tables::methods::retry_split(report) {
        let _ = writeln!(w, "{}\n", tables::methods::RETRY_LEGEND);
    }
    if tables::methods::any_stale_check(report) {
        let _ = writeln!(w, "{}\n", tables::methods::STALE_LEGEND);
    }
    if let Some(t) = tables::methods::methods(report) {
        let _ = writeln!(
            w,
            "### Failures by method\n\n{}\n{}\n",
            t.to_markdown(),
            tables::methods::METHODS_LEGEND
        );
    }
    if let Some(t) = tables::tls::tls(report) {
        let _ = writeln!(
            w,
            "### TLS handshakes\n\n{}\n{}\n",
            t.to_markdown(),
            tables::tls::TLS_LEGEND
        );
    }
    if let Some(t) = tables::h2::h2(report) {
        let _ = writeln!(
            w,
            "### HTTP/2 streams\n\n{}\n{}\n",
            t.to_markdown(),
            tables::h2::H2_LEGEND
        );
    }
    if let Some(t) = tables::ws::ws(report) {
        let _ = writeln!(
            w,
            "### WebSocket connections\n\n{}\n{}\n",
            t.to_markdown(),
            tables::ws::WS_LEGEND
        );
    }
    if let Some(classes) = glossary::classes_markdown(report) {
        let _ = writeln!(w, "{classes}");
    }
    w.push_str(&tables::diagnosis::markdown(report));
    for case in report.cases.iter().filter(|c| c.error.is_some()) {
        let _ = writeln!(
            w,
            "> **{}** did not run to its end: {}\n",
            md(&case.label()),
            md(case.error.as_deref().unwrap_or_default())
        );
    }
    let expectations = tables::expectations(report);
    if !expectations.rows.is_empty() {
        let _ = writeln!(w, "## Expectations\n");
        let _ = writeln!(w, "{}", expectations.to_markdown());
        let _ = writeln!(w, "{}\n", EXPECTATIONS_LEGEND);
    }
    w.push_str(&tables::ledger_markdown(report));
    let _ = writeln!(w, "## Charts\n");
    for chart in Chart::ALL {
        let _ = writeln!(w, "![{}](charts/{}.png)\n", chart.title(), chart.stem());
        let _ = writeln!(w, "*{}*\n", chart.how_to_read());
        if chart == Chart::Timeline
            && let Some(note) = super::chart::timeline_strips_note(report)
        {
            let _ = writeln!(w, "*{note}*\n");
        }
    }
    w.push_str(&tables::action_summary::markdown(report));
    w.push_str(&tables::kernel::markdown(report));
    w.push_str(&tables::evidence::markdown(report));
    let _ = writeln!(w, "## ab view\n");
    let _ = writeln!(w, "{}\n", AB_LEGEND);
    let _ = writeln!(w, "{}", tables::ab_view(report).to_markdown());
    for case in &report.cases {
        let _ = writeln!(
            w,
            "<details><summary>ab-style output: {}</summary>\n\n```text\n{}```\n\n</details>\n",
            super::grid::escape_html(&case.label()).replace(['\r', '\n'], " "),
            ab_text(case)
        );
    }
    let _ = writeln!(w, "## Environment\n");
    let _ = writeln!(w, "{}", tables::environment(report).to_markdown());
    if load.is_none() && !report.cases.is_empty() {
        let _ = writeln!(w, "Load of each case:\n");
        let _ = writeln!(w, "{}", tables::load(report).to_markdown());
    }
    let _ = writeln!(w, "CPU time used during each case:\n");
    out.push_str(&tables::cpu(report).to_markdown());
    out
}

/// The one-line result: passed, how many expectations failed, or how far an
/// interrupted run got.
pub fn headline(report: &RunReport) -> String {
    let mut s = match &report.interrupted {
        Some(i) => interrupted_line(report, i),
        None => verdict(report),
    };
    let _ = write!(
        s,
        ". Scenario `{}`, started {}, reloadbench {}.",
        report.scenario.file, report.started_at, report.tool_version
    );
    s
}

fn verdict(report: &RunReport) -> String {
    let (total, failed) = expectation_counts(report.cases.iter());
    let errored = report.cases.iter().filter(|c| c.error.is_some()).count();
    let mut s = if report.passed() {
        format!(
            "**Result: ✅ passed** ({} held)",
            count(total as u64, "expectation")
        )
    } else {
        format!(
            "**Result: ❌ failed** ({failed} of {} failed)",
            count(total as u64, "expectation")
        )
    };
    if errored > 0 {
        let _ = write!(s, ", {} did not finish", count(errored as u64, "case"));
    }
    s
}

/// `**Result: ⏹ interrupted: 2 of 5 cases finished** (SIGINT; ...)`: only the
/// finished cases' expectations are counted; the cut and never-run cases are named.
fn interrupted_line(report: &RunReport, i: &Interruption) -> String {
    let finished: Vec<_> = report.finished_cases().collect();
    let planned = report.planned_cases.len().max(report.cases.len());
    let mut s = format!(
        "**Result: ⏹ interrupted: {} of {} finished** (by {}",
        finished.len(),
        count(planned as u64, "case"),
        i.signal
    );
    let (total, failed) = expectation_counts(finished.iter().copied());
    if total > 0 {
        let _ = write!(
            s,
            "; expectations of the finished cases: {failed} of {total} failed"
        );
    }
    if let Some(cut) = &i.case {
        let _ = write!(s, "; cut short: `{cut}`");
    }
    let never = report.never_ran();
    if !never.is_empty() {
        let names: Vec<String> = never.iter().map(|n| format!("`{n}`")).collect();
        let _ = write!(s, "; never ran: {}", names.join(", "));
    }
    s.push(')');
    s
}

/// (expectations, failed expectations) over `cases`.
fn expectation_counts<'a>(cases: impl Iterator<Item = &'a CaseReport>) -> (usize, usize) {
    cases
        .flat_map(|c| &c.expectations)
        .fold((0, 0), |(t, f), e| (t + 1, f + usize::from(!e.passed)))
}

/// The load every case ran, in words, when all cases ran the same load
/// (the target URL aside); `None` when they differ or there are no cases.
pub fn load_line(report: &RunReport) -> Option<String> {
    let first = &report.cases.first()?.load.config;
    let first_h2 = report.cases.first()?.load.h2.as_ref().map(|h| h.streams);
    let same = report.cases.iter().all(|c| {
        let c = &c.load.config;
        (
            &c.method,
            c.concurrency,
            c.requests,
            c.duration_ms,
            c.keep_alive,
            c.timeout_ms,
        )
            .eq(&(
                &first.method,
                first.concurrency,
                first.requests,
                first.duration_ms,
                first.keep_alive,
                first.timeout_ms,
            ))
            && c.rate.map(f64::to_bits) == first.rate.map(f64::to_bits)
            && c.tls == first.tls
    }) && report
        .cases
        .iter()
        .all(|c| c.load.h2.as_ref().map(|h| h.streams) == first_h2);
    if !same {
        return None;
    }
    if report.cases.iter().any(|c| c.load.ws.is_some()) {
        return tables::ws::load_line(report, first.concurrency, first.duration_ms?);
    }
    let mut s = match first_h2 {
        // HTTP/2: `concurrency` connections, each with its streams.
        Some(streams) => format!(
            "Load of every case: HTTP/2, {} connections × {streams} concurrent streams sending {}",
            first.concurrency, first.method
        ),
        None => format!(
            "Load of every case: {} concurrent clients sending {}",
            first.concurrency, first.method
        ),
    };
    match (first.requests, first.duration_ms) {
        (Some(n), Some(ms)) => {
            let _ = write!(
                s,
                " requests, {n} in total or for {:.1} s",
                ms as f64 / 1000.0
            );
        }
        (Some(n), None) => {
            let _ = write!(s, " requests, {n} in total");
        }
        (None, Some(ms)) => {
            let _ = write!(s, " requests for {:.1} s", ms as f64 / 1000.0);
        }
        (None, None) => s.push_str(" requests"),
    }
    if let Some(rate) = first.rate {
        let _ = write!(s, " at {rate:.0} requests/s");
    }
    let _ = write!(
        s,
        ", {}, {:.1} s timeout per request; time buckets of {} ms.",
        if first_h2.is_some() {
            "every connection kept"
        } else if first.keep_alive {
            "keep-alive"
        } else {
            "a new connection per request"
        },
        first.timeout_ms as f64 / 1000.0,
        first.bucket_ms
    );
    if let Some(tls) = &first.tls {
        let _ = write!(s, " Over {}.", tls.describe());
    }
    Some(s)
}

/// Note under the expectations table.
pub(crate) const EXPECTATIONS_LEGEND: &str = "Each row is one rule of the case's `expect` \
table in the scenario file, checked against the value measured in this run (actual).";

/// Note under the summary table.
pub(crate) const SUMMARY_LEGEND: &str = "Each case runs the same load against the proxy while \
it is (or is not) restarted or reloaded. complete = requests finished, ok or failed; \
connections = TCP connections the clients opened (one per request without keep-alive; with \
keep-alive, a reload that closes connections shows as more of them); requests/s = complete / time taken; latency percentiles (ms) are of successful requests; \
verdict = ✅ all of the case's expectations held, ❌ one did not, – none were set.";

/// Note under the failures table.
pub(crate) const FAILURES_LEGEND: &str = "Every failed request is counted once, in exactly one \
class (columns shown only for classes that occur). actions = restarts or reloads done during \
the load; failed/action = failures attributed to the actions (see Actions) / actions; \
reload time = from the trigger until the new \
process reported ready to serve (for a server reloadbench did not start: until the target \
accepted a connection again, which the old process may still do; the observed phases show when \
a new process listened).";

/// Note above the per-action tables.
pub(crate) const ACTIONS_LEGEND: &str = "at = trigger time since load start; reload (new \
process ready), drained (old process finished its requests) and exited (old process gone) \
are ms after the trigger; failed = failures attributed to the action (seen between its \
trigger and shortly after its last phase); disruption window = first to last of them (\
\"at\" when they all came within a millisecond, as when a closed listen queue resets its \
connections at once); recovery = trigger until the first full time bucket after the action's \
last failure whose ok count (and the mean of it and the next) was back to 90 % of the case's \
steady level, measured in whole buckets (≤ 100 = within the first 100 ms bucket); – = none, \
or not measured (recovery: the action caused no failures, or throughput was not back before \
the next action or the end of the load).";

/// Note above the ab view table.
pub(crate) const AB_LEGEND: &str = "The same failures in ApacheBench's counters, for \
comparison with `ab` output. Unlike ab, each failed request is counted once and Connect + \
Receive + Length + Exceptions + Write errors + Non-2xx = failed.";

/// The markdown exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        Ok(render_markdown(report).into_bytes())
    }
}
