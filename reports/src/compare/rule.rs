//! How a failure count of a case is judged when no statistics apply (a
//! control that must fail), the case's failure expectations, and the
//! verdicts of a row.
//!
//! Most failure counts are "higher is worse". A control case that must fail
//! (an expectation such as `failed > 0` in its `expect` table, stored in
//! `results.json` as the `expr` `failed > 0`) is the other way round: it
//! regresses when it stops failing, not when it fails more.

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::CaseReport;

/// How one metric moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Regressed,
    Improved,
    Same,
    NotComparable,
    /// A failure count of a case that must fail: more or fewer is expected.
    Control,
    /// The change is within the noise, the machine was busy, or there are
    /// too few failures for the test to tell.
    Inconclusive,
}

impl Verdict {
    pub(super) fn cell(self) -> &'static str {
        match self {
            Verdict::Regressed => "❌ regressed",
            Verdict::Improved => "✅ improved",
            Verdict::Same => "ok",
            Verdict::NotComparable => "–",
            Verdict::Control => "– (must fail)",
            Verdict::Inconclusive => "❔ inconclusive",
        }
    }
}

/// Which direction is worse for a metric, and by how much it may move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Rule {
    /// Higher is worse; allowed absolute increase.
    MoreAbs(f64),
    /// The case must fail: worse when the value no longer satisfies
    /// `value > min` (or `>=` when `inclusive`).
    MustExceed {
        /// The threshold of the expectation.
        min: f64,
        /// `>=` rather than `>`.
        inclusive: bool,
    },
    /// Not judged: a per-class count of a case that must fail as a whole.
    Unjudged,
}

/// The verdict of BASE `base` → NEW `new` under `rule`.
pub(super) fn judge(base: f64, new: f64, rule: Rule) -> Verdict {
    let (worse, better) = match rule {
        Rule::MoreAbs(tol) => (new > base + tol, new < base),
        Rule::MustExceed { min, inclusive } => {
            let holds = |v: f64| if inclusive { v >= min } else { v > min };
            (holds(base) && !holds(new), !holds(base) && holds(new))
        }
        Rule::Unjudged => return Verdict::Control,
    };
    if worse {
        Verdict::Regressed
    } else if better {
        Verdict::Improved
    } else {
        Verdict::Same
    }
}

/// The must-fail expectations of a case, read once: BASE's decide what must
/// fail; a `failed = 0` of either run holds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FailureRules {
    /// Each failure-count key with a lower bound, and its rule, in
    /// expectation order.
    musts: Vec<(String, Rule)>,
    /// The case expects no failure at all (`failed = 0`, or `<= 0`).
    zero: bool,
}

impl FailureRules {
    /// The must-fail expectations of the case BASE `base` / NEW `new`: what
    /// must fail is BASE's to say (NEW cannot turn a case into a control
    /// and escape the gate); a `failed = 0` of either run holds.
    pub(super) fn of(base: &CaseReport, new: &CaseReport) -> FailureRules {
        FailureRules {
            musts: base
                .expectations
                .iter()
                .filter_map(|e| must_exceed(&e.expr))
                .collect(),
            zero: base
                .expectations
                .iter()
                .chain(&new.expectations)
                .any(|e| expects_zero(&e.expr)),
        }
    }

    /// True when the case expects `failed = 0`: any failure of NEW regresses.
    pub(super) fn expects_zero(&self) -> bool {
        self.zero
    }

    /// True when the case must fail as a whole (a control such as `kill -9`).
    pub(super) fn must_fail(&self) -> bool {
        self.must("failed").is_some()
    }

    fn must(&self, key: &str) -> Option<Rule> {
        self.musts
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, rule)| *rule)
    }

    /// The rule of a failure count (`key` is `failed` or a [`FailureClass`]
    /// key): [`Rule::MustExceed`] when the case expects that count above a
    /// threshold, [`Rule::Unjudged`] for a class of a case that must fail
    /// as a whole, else `default`.
    pub(super) fn rule(&self, key: &str, default: Rule) -> Rule {
        if let Some(rule) = self.must(key) {
            return rule;
        }
        if key != "failed" && self.must("failed").is_some() {
            return Rule::Unjudged;
        }
        default
    }
}

/// True for an expectation the failure rows judge: no failure expected
/// (`failed = 0`) or failures required (`failed > 0`, `reset >= 1`). Upper
/// bounds such as `reset <= 5` are the expectation rows' to judge.
pub(super) fn is_failure_count_rule(expr: &str) -> bool {
    expects_zero(expr) || must_exceed(expr).is_some()
}

/// `failed = 0`, `failed == 0` or `failed <= 0`.
fn expects_zero(expr: &str) -> bool {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    matches!(parts.as_slice(), ["failed", "=" | "==" | "<=", v] if v.parse::<f64>() == Ok(0.0))
}

/// `failed > 0` → (`failed`, MustExceed{0, false}); `None` for any other
/// expectation, or a metric that is not a failure count.
fn must_exceed(expr: &str) -> Option<(String, Rule)> {
    let mut parts = expr.split_whitespace();
    let (key, op, value) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !(key == "failed" || FailureClass::from_key(key).is_some()) {
        return None;
    }
    let min: f64 = value.parse().ok()?;
    let inclusive = match op {
        ">" => false,
        ">=" => true,
        _ => return None,
    };
    Some((key.to_owned(), Rule::MustExceed { min, inclusive }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_applies_direction_and_tolerance() {
        assert_eq!(judge(0.0, 1.0, Rule::MoreAbs(0.0)), Verdict::Regressed);
        assert_eq!(judge(3.0, 3.0, Rule::MoreAbs(0.0)), Verdict::Same);
        assert_eq!(judge(3.0, 1.0, Rule::MoreAbs(0.0)), Verdict::Improved);
    }

    #[test]
    fn a_case_that_must_fail_regresses_only_when_it_stops_failing() {
        let must = Rule::MustExceed {
            min: 0.0,
            inclusive: false,
        };
        assert_eq!(judge(40.0, 400.0, must), Verdict::Same, "failing more");
        assert_eq!(judge(40.0, 1.0, must), Verdict::Same, "failing less");
        assert_eq!(judge(40.0, 0.0, must), Verdict::Regressed, "stopped");
        assert_eq!(judge(0.0, 3.0, must), Verdict::Improved);
        let at_least_5 = Rule::MustExceed {
            min: 5.0,
            inclusive: true,
        };
        assert_eq!(judge(5.0, 4.0, at_least_5), Verdict::Regressed);
        assert_eq!(judge(5.0, 5.0, at_least_5), Verdict::Same);
    }

    #[test]
    fn only_lower_bounds_on_failure_counts_make_a_control() {
        assert_eq!(
            must_exceed("failed > 0"),
            Some((
                "failed".into(),
                Rule::MustExceed {
                    min: 0.0,
                    inclusive: false
                }
            ))
        );
        assert!(must_exceed("connect_refused >= 2").is_some());
        assert_eq!(must_exceed("failed = 0"), None);
        assert_eq!(must_exceed("failed <= 200"), None);
        assert_eq!(must_exceed("rps > 0"), None, "not a failure count");
        assert_eq!(must_exceed("per_reload.failed > 0"), None);
    }

    #[test]
    fn failed_equal_zero_is_recognised_in_its_spellings() {
        assert!(expects_zero("failed = 0"));
        assert!(expects_zero("failed <= 0"));
        assert!(!expects_zero("failed <= 5"));
        assert!(!expects_zero("reset = 0"));
        assert!(!expects_zero("per_reload.failed = 0"));
    }
}
