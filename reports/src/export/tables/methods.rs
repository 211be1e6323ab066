//! Failures split by request method and by what a client would retry: the
//! "Failures by method" table (only for runs that send more than one method),
//! the retry columns of the failures table (only for runs where a failure can
//! be retryable: keep-alive, a mix, or a retry policy) and the POSTs lost per
//! action. A run of one method without keep-alive or retries shows none of
//! them, so its report reads as it always did.

use reloadbench_model::load::{LoadReport, RetryPolicy};
use reloadbench_model::run::{ActionReport, CaseReport, RunReport};

use crate::export::grid::{Align, Table};

/// Note under the "Failures by method" table.
pub const METHODS_LEGEND: &str = "ok and failed requests of each method; retryable = \
failures a careful client retries by itself (an idempotent method such as GET, on a reused \
keep-alive connection, closed before any response byte: what Go's client and browsers retry); \
not retryable = every other failure (a POST is retried by nobody); retries = retries made on a \
new connection (scenario `retry = \"safe\"` or `\"both\"`); failed after retry = what a careful \
client would feel: the requests still failed after their one retry (`retry = \"both\"`).";

/// Note under the failures table when it shows the retry columns.
pub const RETRY_LEGEND: &str = "retryable / not retryable = failures a careful client would / \
would not retry by itself (see Failures by method); retries = retries made on a new connection; \
failed after retry = the requests still failed after their one retry (`retry = \"both\"`): what \
a careful client would feel.";

/// Note under the failures table when it shows the stale connections column.
pub const STALE_LEGEND: &str = "stale connections = idle keep-alive connections that careful \
clients (`retry = \"safe\"`) found closed by the server before reusing them, and replaced \
instead of sending on them, as Go's client, urllib3 and browsers do (– for other policies).";

/// Note above the per-action tables when a case sends POSTs.
pub const POST_LEGEND: &str = "POST lost = failed POST requests attributed to the action: no \
client retries a POST by itself, so each one reached its user as an error (– when the run's \
failure list was capped and they cannot be counted exactly).";

/// True when any case sends POST requests.
pub fn any_post(report: &RunReport) -> bool {
    report.cases.iter().any(|c| sends_post(&c.load))
}

/// True when a case sends more than one method.
pub fn multi_method(case: &CaseReport) -> bool {
    case.load.methods.len() > 1
}

/// True when the failures table shows the retryable / not retryable split:
/// a case keeps connections alive, sends several methods or retries.
pub fn retry_split(report: &RunReport) -> bool {
    report.cases.iter().any(|c| {
        let cfg = &c.load.config;
        cfg.keep_alive || multi_method(c) || cfg.retry != RetryPolicy::None
    })
}

/// True when a case retried (its policy is not "none").
pub fn any_retry(report: &RunReport) -> bool {
    report
        .cases
        .iter()
        .any(|c| c.load.config.retry != RetryPolicy::None)
}

/// True when a case's clients look at idle connections before reusing them
/// (`retry = "safe"`), so that the stale connections they replaced are counted.
pub fn any_stale_check(report: &RunReport) -> bool {
    report
        .cases
        .iter()
        .any(|c| c.load.config.retry == RetryPolicy::Safe)
}

/// True when a case reported the outcomes after its retries (`retry = "both"`).
pub fn any_after_retry(report: &RunReport) -> bool {
    report.cases.iter().any(|c| c.load.after_retry.is_some())
}

/// One row per case and method, for runs where a case sends more than one
/// method; `None` otherwise.
pub fn methods(report: &RunReport) -> Option<Table> {
    if !report.cases.iter().any(multi_method) {
        return None;
    }
    let after = any_after_retry(report);
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("method", Align::Left),
        ("ok", Align::Right),
        ("failed", Align::Right),
        ("retryable", Align::Right),
        ("not retryable", Align::Right),
        ("retries", Align::Right),
    ]);
    if after {
        t.push_column("failed after retry", Align::Right);
    }
    for case in report.cases.iter().filter(|c| !c.load.methods.is_empty()) {
        for m in &case.load.methods {
            let mut row = vec![
                case.label(),
                m.method.clone(),
                m.ok.to_string(),
                m.failed.to_string(),
                m.failed_retryable.to_string(),
                m.failed_not_retryable.to_string(),
                m.retries.to_string(),
            ];
            if after {
                row.push(
                    m.after_retry
                        .as_ref()
                        .map_or_else(|| "–".to_owned(), |a| a.failed.to_string()),
                );
            }
            t.push(row);
        }
    }
    Some(t)
}

/// True when the load sends POST requests (the per-action "POST lost" column).
pub fn sends_post(load: &LoadReport) -> bool {
    load.method("POST").is_some()
        || (load.methods.is_empty() && load.config.mix.is_empty() && load.config.method == "POST")
        || load.config.mix.iter().any(|k| k.method == "POST")
}

/// POSTs lost to `a` (failed POST requests attributed to it), `–` when the
/// failure list was capped and they cannot be counted exactly.
pub fn post_lost(a: &ActionReport, load: &LoadReport) -> String {
    a.failed_of_method(load, "POST")
        .map_or_else(|| "–".to_owned(), |n| n.to_string())
}
