//! The scenario's own expectations across the two runs: one that held in
//! every trial of BASE and failed in a trial of NEW is a regression, e.g.
//! `reload_failed = 0` when every reload of NEW rolled back (which loses no
//! request, so the failure rows alone would not see it). Failure-count
//! expectations are left to the failure rows.

use reloadbench_model::run::CaseReport;

use super::Row;
use super::rule::{Verdict, is_failure_count_rule};

/// A row per expectation that held in BASE and failed in NEW.
pub(super) fn rows(name: &str, b: &[&CaseReport], n: &[&CaseReport]) -> Vec<Row> {
    let mut out = Vec::new();
    let Some(first) = b.first() else { return out };
    for e in &first.expectations {
        if is_failure_count_rule(&e.expr) {
            continue;
        }
        let held_in = |t: &[&CaseReport]| {
            t.iter()
                .filter(|c| c.expectations.iter().any(|x| x.expr == e.expr && x.passed))
                .count()
        };
        let (hb, hn) = (held_in(b), held_in(n));
        if hb < b.len() || hn == n.len() {
            continue;
        }
        let actual = n
            .iter()
            .flat_map(|c| &c.expectations)
            .find(|x| x.expr == e.expr && !x.passed)
            .and_then(|x| x.actual)
            .map_or("not measured".to_owned(), |v| format!("{v}"));
        let mut r = Row::new(name, &format!("expectation {}", e.expr));
        r.base = format!("held in {hb} of {}", b.len());
        r.new = format!("held in {hn} of {}", n.len());
        r.delta = String::new();
        r.verdict = Verdict::Regressed;
        r.why = format!("the scenario's own expectation failed in NEW (actual {actual})");
        out.push(r);
    }
    out
}
