//! Throughput, latency and reload time compared with the noise in view:
//! requests/s and p99 as ratios to the same run's no-reload control case,
//! with a tolerance widened by the spread observed in the runs.
//!
//! The tolerance of a row is `max(base, k × spread)`, where `base` is the
//! `--tolerance-*` percentage, `k` the noise factor (`--noise-factor`) and
//! `spread` the largest of
//! - the spread over the inner 100 ms buckets (first and last left out) of
//!   the case and of the control, in BASE and in NEW: `(P90 − P10) / (2 ×
//!   P50)` of the per-bucket requests/s or p99 (for reload time: of the
//!   case's own reload times);
//! - the spread across trials of the compared value, in BASE and in NEW:
//!   `(max − min) / (2 × median)`.
//!
//! Without a control in both runs, the case's own buckets alone give it.
//! When no spread can be measured (fewer than 4 values, a single trial), a
//! change beyond `base` is inconclusive.
//!
//! A case that must lose requests (a kill -9 control) gets none of these
//! rows: it proves the gate sees drops, its speed says nothing.
//!
//! The control's own requests/s and p99 have nothing to be normalized by:
//! a change of them beyond the tolerance is inconclusive, never regressed
//! (a slower machine and slower code look the same there).
//!
//! A change worse than `base` but within the tolerance is **inconclusive**
//! (the noise is larger than the tolerance); worse than the tolerance is
//! **regressed**, or inconclusive when the machine was busy (during the case
//! or, for a ratio, during the control) and the change is within twice the
//! tolerance.

use reloadbench_model::run::CaseReport;

use super::rule::{FailureRules, Verdict};
use super::{CompareOptions, Row};
use crate::summary::{CaseSummary, bucket_rps};
use crate::trials::Spread;

/// The no-reload control case both runs have.
#[derive(Debug, Clone)]
pub(super) struct Control<'a> {
    /// Its name.
    pub(super) name: &'a str,
    /// Its trials in BASE.
    pub(super) base: Vec<&'a CaseReport>,
    /// Its trials in NEW.
    pub(super) new: Vec<&'a CaseReport>,
}

type Groups<'a> = [(&'a str, Vec<&'a CaseReport>)];

/// The control: the case named `named`, else the first case of BASE that
/// has no action in any trial of either run and is not a must-fail case;
/// `Err(name)` when the named case is not in both runs.
pub(super) fn choose<'a>(
    base: &Groups<'a>,
    new: &Groups<'a>,
    named: Option<&str>,
) -> Result<Option<Control<'a>>, String> {
    let pair = |name: &str| {
        let b = base.iter().find(|(n, _)| *n == name)?;
        let n = new.iter().find(|(n, _)| *n == name)?;
        Some(Control {
            name: b.0,
            base: b.1.clone(),
            new: n.1.clone(),
        })
    };
    if let Some(name) = named {
        return pair(name).map(Some).ok_or_else(|| name.to_owned());
    }
    Ok(base.iter().find_map(|(name, _)| {
        let c = pair(name)?;
        let quiet = c.base.iter().chain(&c.new).all(|t| t.actions.is_empty());
        let control = FailureRules::of(c.base[0], c.new[0]).must_fail();
        (quiet && !control).then_some(c)
    }))
}

/// A metric compared against the noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Metric {
    P99,
    Rps,
    ReloadP50,
}

impl Metric {
    fn label(self) -> &'static str {
        match self {
            Metric::P99 => "p99",
            Metric::Rps => "requests/s",
            Metric::ReloadP50 => "reload time p50",
        }
    }

    fn higher_is_worse(self) -> bool {
        !matches!(self, Metric::Rps)
    }

    /// The value of one trial (ms for times).
    fn value(self, case: &CaseReport) -> Option<f64> {
        let s = CaseSummary::of(case);
        match self {
            Metric::P99 => s.p99_us.map(|u| u as f64 / 1000.0),
            Metric::Rps => (s.rps > 0.0).then_some(s.rps),
            Metric::ReloadP50 => s.reload_p50_ns.map(|n| n as f64 / 1e6),
        }
    }

    fn show(self, v: f64) -> String {
        match self {
            Metric::Rps => format!("{v:.1}"),
            Metric::P99 | Metric::ReloadP50 => format!("{v:.2} ms"),
        }
    }

    /// The spread within one trial: of the per-bucket values (inner
    /// buckets) for p99 and requests/s, of the reload times for reloads.
    pub(super) fn inner_spread(self, case: &CaseReport) -> Option<f64> {
        let load = &case.load;
        // The first and last buckets are partial; fewer than 3 leave none.
        if load.buckets.len() < 3 && self != Metric::ReloadP50 {
            return None;
        }
        let inner = 1..load.buckets.len().saturating_sub(1).max(1);
        let values: Vec<f64> = match self {
            Metric::Rps => inner.map(|i| bucket_rps(load, i)).collect(),
            Metric::P99 => load.buckets[inner]
                .iter()
                .filter(|b| b.ok > 0)
                .map(|b| b.latency.p99_us as f64)
                .collect(),
            Metric::ReloadP50 => case
                .actions
                .iter()
                .filter_map(|a| a.reload_time_ns())
                .map(|n| n as f64)
                .collect(),
        };
        decile_spread(values)
    }
}

/// `(P90 − P10) / (2 × P50)` by nearest rank; `None` below 4 values or a
/// median of 0.
fn decile_spread(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.len() < 4 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    let median = at(50.0);
    (median > 0.0).then(|| (at(90.0) - at(10.0)) / (2.0 * median))
}

/// The rows of p99, requests/s and (when the case reloads) reload time of
/// one case, BASE trials `b` against NEW trials `n`.
pub(super) fn rows(
    name: &str,
    b: &[&CaseReport],
    n: &[&CaseReport],
    control: Option<&Control<'_>>,
    opts: &CompareOptions,
    busy: bool,
) -> Vec<Row> {
    let tol = &opts.tolerances;
    let mut out = vec![
        row(name, b, n, Metric::P99, tol.p99_pct, control, opts, busy),
        row(name, b, n, Metric::Rps, tol.rps_pct, control, opts, busy),
    ];
    let reloads = |t: &[&CaseReport]| t.iter().any(|c| Metric::ReloadP50.value(c).is_some());
    if reloads(b) || reloads(n) {
        out.push(row(
            name,
            b,
            n,
            Metric::ReloadP50,
            tol.reload_pct,
            None,
            opts,
            busy,
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn row(
    name: &str,
    b: &[&CaseReport],
    n: &[&CaseReport],
    metric: Metric,
    base_pct: f64,
    control: Option<&Control<'_>>,
    opts: &CompareOptions,
    busy: bool,
) -> Row {
    // Reload time is the case's own; the others are normalized by the
    // control when there is one (and this is not the control itself).
    let normalize = control.filter(|c| c.name != name && metric != Metric::ReloadP50);
    let raw = |t: &[&CaseReport]| Spread::of(t.iter().filter_map(|c| metric.value(c)));
    let (raw_b, raw_n) = (raw(b), raw(n));
    let mut r = Row::new(name, metric.label());
    if let (Some(rb), Some(rn)) = (raw_b, raw_n) {
        r.base = metric.show(rb.median);
        r.new = metric.show(rn.median);
        r.delta = super::delta(rb.median, rn.median, |d| match metric {
            Metric::Rps => format!("{d:+.1}"),
            _ => format!("{d:+.2} ms"),
        });
    }
    let judged = |t: &[&CaseReport], ctl: Option<&Vec<&CaseReport>>| {
        Spread::of(t.iter().filter_map(|c| {
            let v = metric.value(c)?;
            match ctl {
                Some(ctl) => {
                    let same = ctl.iter().find(|x| x.trial == c.trial).or(ctl.first())?;
                    Some(v / metric.value(same)?)
                }
                None => Some(v),
            }
        }))
    };
    let (vb, vn) = (
        judged(b, normalize.map(|c| &c.base)),
        judged(n, normalize.map(|c| &c.new)),
    );
    let (Some(vb), Some(vn)) = (vb, vn) else {
        r.verdict = Verdict::NotComparable;
        r.why = "no value in one of the runs".into();
        return r;
    };
    if vb.median <= 0.0 {
        r.verdict = Verdict::NotComparable;
        r.why = "BASE is 0".into();
        return r;
    }
    let change = vn.median / vb.median - 1.0;
    let worse_pct = if metric.higher_is_worse() {
        change * 100.0
    } else {
        -change * 100.0
    };
    // The observed spread: the case's own buckets (reload dips included)
    // and, for a ratio, the control's too. Measured by gate-check: with the
    // control's alone, two runs of the same code on a quiet machine had a
    // reloading case's requests/s ratio move 11.8 % against a 10 %
    // tolerance (a false "regressed").
    let spread_source: Vec<&CaseReport> = match (metric, control) {
        (Metric::ReloadP50, _) | (_, None) => b.iter().chain(n).copied().collect(),
        (_, Some(c)) => b
            .iter()
            .chain(n)
            .chain(&c.base)
            .chain(&c.new)
            .copied()
            .collect(),
    };
    let inners: Vec<f64> = spread_source
        .iter()
        .filter_map(|c| metric.inner_spread(c))
        .collect();
    let inner = inners.iter().copied().fold(0.0, f64::max);
    let repeated = b.len() > 1 || n.len() > 1;
    let trials = [vb, vn]
        .iter()
        .filter(|_| repeated)
        .map(Spread::relative)
        .fold(0.0, f64::max);
    // No bucket or reload-time spread and a single trial: the noise is
    // unknown, so a change beyond the base tolerance cannot be called.
    let spread_known = !inners.is_empty() || repeated;
    let spread_pct = inner.max(trials) * 100.0;
    let noise_pct = opts.noise_factor * spread_pct;
    let tol_pct = base_pct.max(noise_pct);
    let mut why = match normalize {
        Some(c) => {
            let moved = |t: &[&CaseReport]| Spread::of(t.iter().filter_map(|x| metric.value(x)));
            let ctl_moved = match (moved(&c.base), moved(&c.new)) {
                (Some(x), Some(y)) if x.median > 0.0 => {
                    format!(
                        "; control moved {:+.1} %",
                        (y.median / x.median - 1.0) * 100.0
                    )
                }
                _ => String::new(),
            };
            format!(
                "vs control: ×{:.3} → ×{:.3} ({:+.1} %){ctl_moved}",
                vb.median,
                vn.median,
                change * 100.0
            )
        }
        None if metric != Metric::ReloadP50 && control.is_none() => {
            format!("no control: raw {:+.1} %", change * 100.0)
        }
        None => format!("{:+.1} %", change * 100.0),
    };
    why.push_str(&format!(
        "; tolerance {tol_pct:.1} % = max({base_pct} %, {} × {spread_pct:.1} % spread)",
        opts.noise_factor
    ));
    // A ratio to a control that ran on a busy machine moves with the
    // control: as doubtful as the case's own busy machine.
    let control_busy =
        normalize.is_some_and(|c| c.base.iter().chain(&c.new).any(|t| (opts.busy)(t)));
    let (mut verdict, mut note) = judge_noisy(worse_pct, base_pct, tol_pct, busy || control_busy);
    if verdict == Verdict::Regressed && !spread_known {
        verdict = Verdict::Inconclusive;
        note = "; too few values to know the noise (fewer than 4 reloads, one trial)";
    }
    let is_control = control.is_some_and(|c| c.name == name) && metric != Metric::ReloadP50;
    if verdict == Verdict::Regressed && is_control {
        // Nothing to normalize the control by: a slower control is a slower
        // machine as much as slower code.
        verdict = Verdict::Inconclusive;
        note = "; the control's own change cannot be told from the machine's";
    }
    r.verdict = verdict;
    r.why = format!("{why}{note}");
    r
}

/// The verdict of a change `worse_pct` (positive is worse) against the base
/// tolerance and the noise-widened tolerance, with the note that explains it.
pub(super) fn judge_noisy(
    worse_pct: f64,
    base_pct: f64,
    tol_pct: f64,
    busy: bool,
) -> (Verdict, &'static str) {
    if worse_pct > tol_pct {
        if busy && worse_pct <= 2.0 * tol_pct {
            (Verdict::Inconclusive, "; machine busy")
        } else {
            (Verdict::Regressed, "")
        }
    } else if worse_pct > base_pct {
        (Verdict::Inconclusive, "; worse, but within the noise")
    } else if -worse_pct > tol_pct {
        (Verdict::Improved, "")
    } else {
        (Verdict::Same, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decile_spread_is_half_the_inter_decile_range_over_the_median() {
        let v: Vec<f64> = (1..=10).map(|i| 90.0 + 2.0 * i as f64).collect();
        // P10 = 92, P50 = 100, P90 = 108 → 16 / 200.
        assert!((decile_spread(v).unwrap() - 0.08).abs() < 1e-12);
        assert_eq!(decile_spread(vec![1.0, 2.0, 3.0]), None);
    }

    #[test]
    fn noisy_judgement_separates_noise_from_regression() {
        assert_eq!(judge_noisy(5.0, 10.0, 30.0, false).0, Verdict::Same);
        assert_eq!(
            judge_noisy(20.0, 10.0, 30.0, false).0,
            Verdict::Inconclusive
        );
        assert_eq!(judge_noisy(40.0, 10.0, 30.0, false).0, Verdict::Regressed);
        assert_eq!(judge_noisy(40.0, 10.0, 30.0, true).0, Verdict::Inconclusive);
        assert_eq!(judge_noisy(70.0, 10.0, 30.0, true).0, Verdict::Regressed);
        assert_eq!(judge_noisy(-40.0, 10.0, 30.0, false).0, Verdict::Improved);
        assert_eq!(judge_noisy(-20.0, 10.0, 30.0, false).0, Verdict::Same);
    }
}
