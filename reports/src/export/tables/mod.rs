//! The report's tables as [`Table`] values, built once and rendered to both
//! markdown and HTML.

pub mod action_summary;
mod actions;
mod context;
pub mod diagnosis;
pub mod evidence;
pub mod h2;
pub mod kernel;
mod ledger;
pub mod methods;
pub mod tls;
mod trials;
pub mod ws;
pub mod ws_rows;

pub(crate) use actions::count_of;
pub use actions::{actions, actions_rows};
pub use context::{ab_view, cpu, environment, load};
pub use ledger::{ledger_html, ledger_markdown};
pub use trials::{TRIALS_LEGEND, trials};

use reloadbench_model::load::RetryPolicy;
use reloadbench_model::run::{CaseReport, ExpectationResult, RunReport};

use super::grid::{Align, Table};
use crate::summary::{CaseSummary, classes_present, fmt_opt_ms, fmt_opt_ns_ms};

/// One row per case: the seed's columns (time taken, complete, failed),
/// throughput, latency percentiles and the verdict. Failures by class and the
/// reloads are in [`failures`], so neither table is too wide to read.
pub fn summary(report: &RunReport) -> Table {
    if ws_rows::all_ws(report) {
        return ws_rows::summary(report);
    }
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("time taken s", Align::Right),
        ("complete", Align::Right),
        ("failed", Align::Right),
        ("connections", Align::Right),
        ("requests/s", Align::Right),
        ("p50 ms", Align::Right),
        ("p99 ms", Align::Right),
        ("p99.9 ms", Align::Right),
        ("max ms", Align::Right),
        ("verdict", Align::Center),
    ]);
    for case in &report.cases {
        let s = CaseSummary::of(case);
        if ws_rows::is_ws(case) {
            // No requests: its numbers are in the WebSocket table.
            let mut row = ws_rows::dashes(s.name.clone(), 9);
            row[1] = format!("{:.3}", s.time_taken_s);
            row.push(verdict(case).to_string());
            t.push(row);
            continue;
        }
        t.push(vec![
            s.name.clone(),
            format!("{:.3}", s.time_taken_s),
            s.complete.to_string(),
            s.failed.to_string(),
            case.load.connections.to_string(),
            format!("{:.1}", s.rps),
            fmt_opt_ms(s.p50_us),
            fmt_opt_ms(s.p99_us),
            fmt_opt_ms(s.p999_us),
            fmt_opt_ms(s.max_us),
            verdict(case).to_string(),
        ]);
    }
    t
}

/// One row per case: failed requests by class (only classes that occur
/// anywhere in the run), the actions, failures per action and reload times.
pub fn failures(report: &RunReport) -> Table {
    if ws_rows::all_ws(report) {
        return ws_rows::failures(report);
    }
    let classes = classes_present(report);
    let any_not_started = report.cases.iter().any(|c| c.load.not_started > 0);
    let split = methods::retry_split(report);
    let retries = methods::any_retry(report);
    let after = methods::any_after_retry(report);
    let stale = methods::any_stale_check(report);
    let mut t = Table::new(&[("case", Align::Left), ("failed", Align::Right)]);
    if split {
        t.push_column("retryable", Align::Right);
        t.push_column("not retryable", Align::Right);
    }
    if retries {
        t.push_column("retries", Align::Right);
    }
    if after {
        t.push_column("failed after retry", Align::Right);
    }
    if stale {
        t.push_column("stale connections", Align::Right);
    }
    for class in &classes {
        t.push_column(class.label(), Align::Right);
    }
    if any_not_started {
        t.push_column("not started", Align::Right);
    }
    for (title, align) in [
        ("actions", Align::Right),
        ("failed/action", Align::Right),
        ("reload p50 ms", Align::Right),
        ("reload max ms", Align::Right),
    ] {
        t.push_column(title, align);
    }
    for case in &report.cases {
        let s = CaseSummary::of(case);
        if ws_rows::is_ws(case) {
            // No requests: its numbers are in the WebSocket table.
            let mut row = ws_rows::dashes(s.name.clone(), t.header.len() - 1);
            let n = row.len();
            row[n - 4] = s.actions.to_string();
            row[n - 2] = fmt_opt_ns_ms(s.reload_p50_ns);
            row[n - 1] = fmt_opt_ns_ms(s.reload_max_ns);
            t.push(row);
            continue;
        }
        let mut row = vec![s.name.clone(), s.failed.to_string()];
        let load = &case.load;
        if split {
            row.push(load.failed_retryable.to_string());
            row.push(load.failed_not_retryable.to_string());
        }
        if retries {
            row.push(load.retries.to_string());
        }
        if after {
            row.push(
                load.after_retry
                    .as_ref()
                    .map_or_else(|| "–".to_owned(), |a| a.failed.to_string()),
            );
        }
        if stale {
            row.push(if load.config.retry == RetryPolicy::Safe {
                load.stale_discarded.to_string()
            } else {
                "–".to_owned()
            });
        }
        row.extend(classes.iter().map(|&c| case.failed_of(c).to_string()));
        if any_not_started {
            row.push(s.not_started.to_string());
        }
        row.extend([
            s.actions.to_string(),
            s.failed_per_action
                .map_or_else(|| "–".to_string(), |f| format!("{f:.1}")),
            fmt_opt_ns_ms(s.reload_p50_ns),
            fmt_opt_ns_ms(s.reload_max_ns),
        ]);
        t.push(row);
    }
    t
}

/// ✅ when all expectations held, ❌ when one did not or the case errored, – without expectations.
pub fn verdict(case: &CaseReport) -> &'static str {
    if !case.passed() {
        "❌"
    } else if case.expectations.is_empty() {
        "–"
    } else {
        "✅"
    }
}

/// Every expectation of every case with its measured value and verdict.
pub fn expectations(report: &RunReport) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("expectation", Align::Left),
        ("actual", Align::Right),
        ("verdict", Align::Center),
    ]);
    for case in &report.cases {
        for e in &case.expectations {
            t.push(vec![
                case.label(),
                e.expr.clone(),
                fmt_actual(e),
                if e.passed { "✅" } else { "❌" }.to_string(),
            ]);
        }
    }
    t
}

fn fmt_actual(e: &ExpectationResult) -> String {
    match e.actual {
        None => "–".to_string(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}
