//! Failure counts compared with an exact test (see `poisson.rs`): the
//! case's total, each failure class, and each action when both runs have
//! the same actions. A case that expects `failed = 0` regresses on any
//! failure of NEW; a case that must fail (a control) regresses when a trial
//! stops failing.

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::CaseReport;

use super::poisson::{RateTest, rate_test};
use super::rule::{FailureRules, Rule, Verdict, judge};
use super::{CompareOptions, Row};

/// Failures and finished requests of every trial, summed.
fn totals(t: &[&CaseReport], count: impl Fn(&CaseReport) -> u64) -> (u64, u64) {
    t.iter().fold((0u64, 0u64), |(k, n), c| {
        (
            k.saturating_add(count(c)),
            n.saturating_add(c.load.ok.saturating_add(c.load.failed)),
        )
    })
}

/// The failure rows of one case, BASE trials `b` against NEW trials `n`.
pub(super) fn rows(
    name: &str,
    b: &[&CaseReport],
    n: &[&CaseReport],
    opts: &CompareOptions,
    busy: bool,
) -> Vec<Row> {
    let rules = FailureRules::of(b[0], n[0]);
    let alpha = 1.0 - opts.confidence;
    let abs = Rule::MoreAbs(opts.tolerances.failed_abs as f64);
    let mut out = Vec::new();
    let total = |c: &CaseReport| c.load.failed;
    let mut r = count_row(
        name,
        "failed",
        b,
        n,
        &total,
        rules.rule("failed", abs),
        alpha,
        opts,
        busy,
    );
    // Whatever the test could say (even nothing, when BASE finished no
    // request): a failure where none is expected regresses.
    if rules.expects_zero() {
        let (k_n, _) = totals(n, total);
        if k_n > 0 {
            let failing = n.iter().filter(|c| c.load.failed > 0).count();
            r.verdict = Verdict::Regressed;
            r.why = format!(
                "the case expects failed = 0: NEW failed {k_n} in {failing} of {} trial(s); {}",
                n.len(),
                r.why
            );
        }
    }
    out.push(r);
    for class in FailureClass::ALL {
        let count = move |c: &CaseReport| c.failed_of(class);
        let (kb, _) = totals(b, count);
        let (kn, _) = totals(n, count);
        if kb > 0 || kn > 0 {
            out.push(count_row(
                name,
                &format!("failed: {}", class.label()),
                b,
                n,
                &count,
                rules.rule(class.key(), abs),
                alpha,
                opts,
                busy,
            ));
        }
    }
    if !rules.must_fail() {
        out.extend(action_rows(name, b, n, alpha, opts, busy));
    }
    out
}

/// The actions of a case line up in both runs: same count and labels in
/// every trial.
fn matching_actions(b: &[&CaseReport], n: &[&CaseReport]) -> Option<Vec<String>> {
    let labels = |c: &CaseReport| {
        c.actions
            .iter()
            .map(|a| a.label.clone())
            .collect::<Vec<_>>()
    };
    let first = labels(b[0]);
    b.iter()
        .chain(n)
        .all(|c| labels(c) == first)
        .then_some(first)
}

/// One row per action with failures in either run, tested at
/// `alpha / actions` (Bonferroni: one false alarm in `1 / alpha` cases,
/// however many actions a case has).
fn action_rows(
    name: &str,
    b: &[&CaseReport],
    n: &[&CaseReport],
    alpha: f64,
    opts: &CompareOptions,
    busy: bool,
) -> Vec<Row> {
    let Some(labels) = matching_actions(b, n) else {
        return Vec::new();
    };
    let each = alpha / labels.len().max(1) as f64;
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let count = move |c: &CaseReport| c.actions.get(i).map_or(0, |a| a.failed_total());
        if totals(b, count).0 + totals(n, count).0 == 0 {
            continue;
        }
        let mut r = count_row(
            name,
            &format!("failed: action {i} {label}"),
            b,
            n,
            &count,
            Rule::MoreAbs(opts.tolerances.failed_abs as f64),
            each,
            opts,
            busy,
        );
        r.why
            .push_str(&format!(" (level {each:.2e}: {} actions)", labels.len()));
        out.push(r);
    }
    fold_beyond(name, out, crate::bounded::LIST_MAX)
}

/// How much a verdict matters to a reader of the gate (smaller first).
fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Regressed => 0,
        Verdict::Inconclusive => 1,
        Verdict::Improved => 2,
        Verdict::Same => 3,
        Verdict::Control => 4,
        Verdict::NotComparable => 5,
    }
}

/// Keeps at most `max` action rows, the most severe first (then in action
/// order), and folds the rest into one row that carries the most severe of
/// their verdicts and counts them by verdict, so a long case keeps the
/// comparison short and its gate unchanged: a regression among the folded
/// rows still regresses.
fn fold_beyond(name: &str, mut rows: Vec<Row>, max: usize) -> Vec<Row> {
    if rows.len() <= max {
        return rows;
    }
    // A stable sort keeps action order within a verdict.
    rows.sort_by_key(|r| severity(r.verdict));
    let rest = rows.split_off(max);
    let mut folded = Row::new(
        name,
        &format!(
            "failed: {} more {}",
            rest.len(),
            reloadbench_model::words::noun(rest.len() as u64, "action")
        ),
    );
    folded.verdict = rest
        .iter()
        .map(|r| r.verdict)
        .min_by_key(|v| severity(*v))
        .unwrap_or(Verdict::NotComparable);
    let mut counts: Vec<(Verdict, usize)> = Vec::new();
    for r in &rest {
        match counts.iter_mut().find(|(v, _)| *v == r.verdict) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.verdict, 1)),
        }
    }
    counts.sort_by_key(|(v, _)| severity(*v));
    folded.folded = counts.clone();
    let parts: Vec<String> = counts
        .iter()
        .map(|(v, n)| format!("{n} {}", v.cell()))
        .collect();
    folded.why = format!(
        "actions with failures beyond the {max} listed, each tested as above: {}",
        parts.join(", ")
    );
    rows.push(folded);
    rows
}

/// Formats a p-value.
fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

#[allow(clippy::too_many_arguments)]
fn count_row(
    name: &str,
    metric: &str,
    b: &[&CaseReport],
    n: &[&CaseReport],
    count: &dyn Fn(&CaseReport) -> u64,
    rule: Rule,
    alpha: f64,
    opts: &CompareOptions,
    busy: bool,
) -> Row {
    let (kb, nb) = totals(b, count);
    let (kn, nn) = totals(n, count);
    let mut r = Row::new(name, metric);
    r.base = kb.to_string();
    r.new = kn.to_string();
    r.delta = super::delta(kb as f64, kn as f64, |d| format!("{d:+.0}"));
    match rule {
        Rule::Unjudged => {
            r.verdict = Verdict::Control;
            r.why = "a class of a case that must fail".into();
            return r;
        }
        Rule::MustExceed { .. } => {
            // Every trial must fail: judge the trial that failed least.
            let least = |t: &[&CaseReport]| t.iter().map(|c| count(c)).min().unwrap_or(0);
            r.verdict = judge(least(b) as f64, least(n) as f64, rule);
            r.why = format!(
                "must fail: the trial that failed least failed {} in BASE, {} in NEW",
                least(b),
                least(n)
            );
            return r;
        }
        _ => {}
    }
    let Some(t) = rate_test(kb, nb, kn, nn) else {
        // A side without a finished request: NEW finishing none where BASE
        // did is a regression; BASE finishing none leaves it open.
        (r.verdict, r.why) = if nn == 0 && nb > 0 {
            (
                Verdict::Regressed,
                format!("NEW finished no request (BASE finished {nb})"),
            )
        } else {
            (
                Verdict::Inconclusive,
                "no finished request in BASE: nothing to compare with".into(),
            )
        };
        return r;
    };
    let (verdict, why) = test_verdict(&t, kn, alpha, opts.tolerances.failed_abs, busy);
    r.verdict = verdict;
    r.why = format!("{kb}/{nb} → {kn}/{nn} requests; {why}");
    r
}

/// The verdict of a rate test at level `alpha`.
fn test_verdict(
    t: &RateTest,
    k_new: u64,
    alpha: f64,
    allowed: u64,
    busy: bool,
) -> (Verdict, String) {
    if k_new == 0 && t.p_less >= 1.0 && t.p_more >= 1.0 {
        return (Verdict::Same, "no failure in either run".into());
    }
    if t.p_more < alpha && k_new as f64 > t.expected_new + allowed as f64 {
        let p = fmt_p(t.p_more);
        if busy && t.p_more >= alpha / 100.0 {
            return (
                Verdict::Inconclusive,
                format!("more failures, p = {p}, but the machine was busy"),
            );
        }
        return (
            Verdict::Regressed,
            format!("more failures, p = {p} < {}", fmt_p(alpha)),
        );
    }
    if t.p_less < alpha {
        return (
            Verdict::Improved,
            format!("fewer failures, p = {}", fmt_p(t.p_less)),
        );
    }
    if allowed > 0 && k_new as f64 <= t.expected_new + allowed as f64 {
        return (
            Verdict::Same,
            format!("within the {allowed} extra failures allowed (--tolerance-failed)"),
        );
    }
    if t.p_floor >= alpha && k_new as f64 > t.expected_new {
        return (
            Verdict::Inconclusive,
            format!(
                "more failures, but too few for the test to tell (even all in NEW: p = {})",
                fmt_p(t.p_floor)
            ),
        );
    }
    (
        Verdict::Same,
        format!("p = {} (not significant)", fmt_p(t.p_more)),
    )
}
