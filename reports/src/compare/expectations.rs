//! The scenario's own expectations across the two runs: one that held in
//! every trial of BASE and failed in a trial of NEW is a regression, e.g.
//! `reload_failed = 0` when every reload of NEW rolled back (which loses no
//! request, so the failure rows alone would not see it). Failure-count
//! expectations are left to the failure rows.

use reloadbench_model::run::CaseReport;

use super::Row;
use super::rule::{Verdict, is_failure_count_rule};

/// A row per expectation that held in BASE and failed in NEW (regressed,
/// or inconclusive when the machine was busy), or that NEW no longer checks
/// (inconclusive: removing an expectation is no way around the gate).
pub(super) fn rows(name: &str, b: &[&CaseReport], n: &[&CaseReport], busy: bool) -> Vec<Row> {
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
        let checked = n
            .iter()
            .all(|c| c.expectations.iter().any(|x| x.expr == e.expr));
        if !checked {
            let mut r = Row::new(name, &format!("expectation {}", e.expr));
            r.base = format!("held in {hb} of {}", b.len());
            r.new = "not checked".into();
            r.delta = String::new();
            r.verdict = Verdict::Inconclusive;
            r.why = "NEW's scenario no longer has this expectation".into();
            out.push(r);
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
        (r.verdict, r.why) = if busy {
            (
                Verdict::Inconclusive,
                format!("failed in NEW (actual {actual}), but the machine was busy"),
            )
        } else {
            (
                Verdict::Regressed,
                format!("the scenario's own expectation failed in NEW (actual {actual})"),
            )
        };
        out.push(r);
    }
    out
}
