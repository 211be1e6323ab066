//! Figures derived from a case's raw results, shared by every table, chart and
//! the comparison, so that all outputs agree on what "requests/s" or
//! "reload time" means.

use reloadbench_model::load::LoadReport;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{CaseReport, RunReport};

/// The headline numbers of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSummary {
    /// Case name.
    pub name: String,
    /// From the first request due until the last one finished, in seconds.
    pub time_taken_s: f64,
    /// Requests that finished, successfully or not (`ok + failed`).
    pub complete: u64,
    /// Requests that got a complete 2xx response.
    pub ok: u64,
    /// Requests that failed, each counted once.
    pub failed: u64,
    /// Planned requests that were never started.
    pub not_started: u64,
    /// Finished requests per second of time taken (ab's "Requests per second").
    pub rps: f64,
    /// Median latency of successful requests, µs.
    pub p50_us: Option<u64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<u64>,
    /// 99.9th percentile latency, µs.
    pub p999_us: Option<u64>,
    /// Maximum latency, µs (`None` when nothing succeeded).
    pub max_us: Option<u64>,
    /// Number of actions on the case's timeline.
    pub actions: usize,
    /// Failures attributed to actions, divided by the number of actions.
    pub failed_per_action: Option<f64>,
    /// Median trigger-to-ready time over the actions that reported ready, ns.
    pub reload_p50_ns: Option<u64>,
    /// Largest trigger-to-ready time, ns.
    pub reload_max_ns: Option<u64>,
}

impl CaseSummary {
    /// Computes the summary of one case.
    pub fn of(case: &CaseReport) -> CaseSummary {
        let load = &case.load;
        let time_taken_s = load.elapsed_ns as f64 / 1e9;
        let complete = load.ok + load.failed;
        let rps = if time_taken_s > 0.0 {
            complete as f64 / time_taken_s
        } else {
            0.0
        };
        let has_latency = load.latency.count > 0;
        let pct = |p: f64| {
            if has_latency {
                load.latency.at(p)
            } else {
                None
            }
        };
        let mut reload: Vec<u64> = case
            .actions
            .iter()
            .filter_map(|a| a.reload_time_ns())
            .collect();
        reload.sort_unstable();
        let attributed: u64 = case.actions.iter().map(|a| a.failed_total()).sum();
        CaseSummary {
            name: case.label(),
            time_taken_s,
            complete,
            ok: load.ok,
            failed: load.failed,
            not_started: load.not_started,
            rps,
            p50_us: pct(50.0),
            p99_us: pct(99.0),
            p999_us: pct(99.9),
            max_us: has_latency.then_some(load.latency.max_us),
            actions: case.actions.len(),
            failed_per_action: (!case.actions.is_empty())
                .then(|| attributed as f64 / case.actions.len() as f64),
            reload_p50_ns: nearest_rank(&reload, 50.0),
            reload_max_ns: reload.last().copied(),
        }
    }
}

/// Successful requests per second in bucket `i` of `load`.
///
/// The last bucket usually ends with the run, before its full width; it is
/// scaled by the time it actually covers so the run's end is not drawn as a dip.
pub fn bucket_rps(load: &LoadReport, i: usize) -> f64 {
    let Some(b) = load.buckets.get(i) else {
        return 0.0;
    };
    let width_ns = load.config.bucket_ns();
    let covered = if i + 1 == load.buckets.len() {
        load.elapsed_ns
            .saturating_sub(b.start_ns)
            .clamp(width_ns / 10, width_ns)
    } else {
        width_ns
    };
    b.ok as f64 * 1e9 / covered as f64
}

/// The value at percentile `p` (0..=100) of sorted `values`, by nearest rank.
pub fn nearest_rank(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted.get(i).copied()
}

/// The failure classes that occur in any case of the run, in report order.
pub fn classes_present(report: &RunReport) -> Vec<FailureClass> {
    FailureClass::ALL
        .into_iter()
        .filter(|&c| report.cases.iter().any(|case| case.failed_of(c) > 0))
        .collect()
}

/// Formats µs as milliseconds with two decimals.
pub fn fmt_ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Formats an optional µs value as milliseconds, or `–` when absent.
pub fn fmt_opt_ms(us: Option<u64>) -> String {
    us.map_or_else(|| "–".to_string(), fmt_ms)
}

/// Formats an optional ns duration as milliseconds, or `–` when absent.
pub fn fmt_opt_ns_ms(ns: Option<u64>) -> String {
    ns.map_or_else(|| "–".to_string(), |n| fmt_ms(n / 1000))
}

/// Formats ns since load start as seconds with three decimals.
pub fn fmt_s(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_the_expected_element() {
        let v = [10, 20, 30, 40];
        assert_eq!(nearest_rank(&v, 50.0), Some(20));
        assert_eq!(nearest_rank(&v, 100.0), Some(40));
        assert_eq!(nearest_rank(&v, 0.0), Some(10));
        assert_eq!(nearest_rank(&[], 50.0), None);
    }
}
