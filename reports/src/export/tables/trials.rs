//! The trials table: per repeated case, the median and range (min–max) of
//! failed, requests/s and p99 across its trials.

use reloadbench_model::run::RunReport;

use super::super::grid::{Align, Table};
use crate::summary::CaseSummary;
use crate::trials::{Spread, by_case};

/// Note under the trials table.
pub const TRIALS_LEGEND: &str = "Each trial is a full run of the case with its own numbers \
(the tables above have one row per trial). Trials are interleaved: trial 1 runs every case, \
trial 2 runs them with the case order rotated by one, and so on. Expectations are evaluated per \
trial: a case passes when every trial passes. Values are the median and, in brackets, the range \
(min–max) over the trials.";

/// One row per case that ran more than once; `None` when no case did.
pub fn trials(report: &RunReport) -> Option<Table> {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("trials", Align::Right),
        ("passed", Align::Right),
        ("failed", Align::Right),
        ("requests/s", Align::Right),
        ("p99 ms", Align::Right),
    ]);
    for (name, runs) in by_case(&report.cases) {
        if runs.len() < 2 && runs.iter().all(|c| c.trial.is_none()) {
            continue;
        }
        let sums: Vec<CaseSummary> = runs.iter().map(|c| CaseSummary::of(c)).collect();
        let show = |s: Option<Spread>, decimals: usize| {
            s.map_or_else(
                || "–".to_owned(),
                |s| {
                    format!(
                        "{:.d$} ({:.d$}–{:.d$})",
                        s.median,
                        s.min,
                        s.max,
                        d = decimals
                    )
                },
            )
        };
        t.push(vec![
            name.to_owned(),
            runs.len().to_string(),
            format!(
                "{}/{}",
                runs.iter().filter(|c| c.passed()).count(),
                runs.len()
            ),
            show(Spread::of(sums.iter().map(|s| s.failed as f64)), 0),
            show(Spread::of(sums.iter().map(|s| s.rps)), 1),
            show(
                Spread::of(
                    sums.iter()
                        .filter_map(|s| s.p99_us)
                        .map(|u| u as f64 / 1000.0),
                ),
                2,
            ),
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}
