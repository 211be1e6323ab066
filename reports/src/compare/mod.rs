//! Comparison of two runs, case by case (matched by name; the trials of a
//! repeated case taken together), for a pull-request comment or a CI gate
//! that does not cry wolf on a noisy machine. Every row has a verdict
//! (`ok`, `improved`, `regressed`, `inconclusive`) and says why:
//!
//! - failures (in total, per class, per action): an exact one-sided test of
//!   two Poisson rates at a stated confidence (`failures.rs`, `poisson.rs`);
//!   any failure of NEW in a case that expects `failed = 0` regresses;
//! - requests/s and p99: ratios to the same run's no-reload control, with a
//!   tolerance widened by the observed spread; reload time p50 likewise
//!   against its own spread (`noise.rs`);
//! - **inconclusive** when the noise is larger than the tolerance, the
//!   machine was busy, or there are too few failures for the test to tell.
//!
//! The gate fails closed: a case of BASE that NEW did not run is a
//! regression, two runs without a case in common cannot be compared
//! ([`CompareError::NoCommonCase`]), and tolerances must be finite and ≥ 0
//! ([`CompareError::Tolerance`]). A case that must fail (a control such as
//! `kill -9` with `failed > 0`) regresses when a trial stops failing (see
//! `rule.rs`). Overall, regressed outranks inconclusive outranks ok.

mod expectations;
mod failures;
mod noise;
mod poisson;
mod rule;

use std::fmt::Write as _;

use reloadbench_model::run::{CaseReport, RunReport};

use crate::export::grid::{Align, Table};
use crate::trials::by_case;

use rule::Verdict;

/// How much worse NEW may be than BASE before it counts as a regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// Extra failed requests allowed (absolute), in total and per class.
    pub failed_abs: u64,
    /// Allowed p99 latency increase, percent.
    pub p99_pct: f64,
    /// Allowed requests/s decrease, percent.
    pub rps_pct: f64,
    /// Allowed reload time (max trigger → ready) increase, percent.
    pub reload_pct: f64,
}

impl Default for Tolerances {
    /// failed +0, p99 +10 %, requests/s −10 %, reload time +20 %.
    fn default() -> Self {
        Tolerances {
            failed_abs: 0,
            p99_pct: 10.0,
            rps_pct: 10.0,
            reload_pct: 20.0,
        }
    }
}

impl Tolerances {
    /// Checks that every tolerance is finite and ≥ 0.
    pub fn check(&self) -> Result<(), CompareError> {
        for (name, value) in [
            ("p99", self.p99_pct),
            ("rps", self.rps_pct),
            ("reload", self.reload_pct),
        ] {
            check_tolerance(value).map_err(|_| CompareError::Tolerance { name, value })?;
        }
        Ok(())
    }
}

/// A tolerance in percent must be a finite number ≥ 0 (NaN would turn every
/// comparison into "ok"); the one check of the library and the CLI flags.
pub fn check_tolerance(value: f64) -> Result<f64, BadTolerance> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(BadTolerance(value))
    }
}

/// A tolerance that is not a finite number ≥ 0.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("must be a finite number ≥ 0, got {0}")]
pub struct BadTolerance(pub f64);

/// How `compare` judges, beyond the tolerances.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// How much worse NEW may be before the noise is considered.
    pub tolerances: Tolerances,
    /// Confidence of the failure-count test, e.g. 0.99 (a false alarm in
    /// one case in 100 where nothing changed).
    pub confidence: f64,
    /// `k` of the noise-widened tolerance `max(base, k × spread)`.
    pub noise_factor: f64,
    /// The no-reload control case by name; the first case without actions
    /// (and not a must-fail case) in both runs when `None`.
    pub control: Option<String>,
    /// Whether the machine was busy during a trial: a borderline regression
    /// of a case with a busy trial (in either run) is inconclusive.
    pub busy: fn(&CaseReport) -> bool,
}

impl Default for CompareOptions {
    /// Default tolerances, 99 % confidence, noise factor 2, the first
    /// quiet case as control, no machine-noise record.
    fn default() -> Self {
        CompareOptions {
            tolerances: Tolerances::default(),
            confidence: 0.99,
            noise_factor: 2.0,
            control: None,
            busy: machine_busy,
        }
    }
}

/// Whether the run recorded its machine as busy during `case`: other
/// processes used CPU or steal above the thresholds of
/// [`reloadbench_model::kernel::MachineLoad`] (false when not recorded).
pub fn machine_busy(case: &CaseReport) -> bool {
    case.machine.as_ref().is_some_and(|m| m.busy.is_some())
}

/// The overall verdict of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GateVerdict {
    /// Nothing regressed and nothing was too noisy to tell.
    Ok,
    /// Some row could not be told from noise; none regressed.
    Inconclusive,
    /// Some row regressed, NEW lacks a case of BASE, or a case of NEW errored.
    Regressed,
}

/// Why two runs could not be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    /// The confidence is not a number strictly between 0 and 1.
    #[error("confidence must be a number between 0 and 1 (e.g. 0.99), got {0}")]
    Confidence(f64),
    /// The control case named is not in both runs.
    #[error("control case {0:?} is not in both runs")]
    NoControl(String),
    /// A tolerance is NaN, infinite or negative.
    #[error("tolerance {name} must be a finite number ≥ 0, got {value}")]
    Tolerance {
        /// Which tolerance (`p99`, `rps`, `reload`, `noise factor`).
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// No case name appears in both runs: there is nothing to compare.
    #[error(
        "no case appears in both runs (BASE: {}; NEW: {})",
        list(.base),
        list(.new)
    )]
    NoCommonCase {
        /// BASE's case names.
        base: Vec<String>,
        /// NEW's case names.
        new: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no cases".to_owned()
    } else {
        names.join(", ")
    }
}

/// The result of comparing two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The diff as markdown.
    pub markdown: String,
    /// True when NEW is worse than BASE beyond the tolerances in any row,
    /// or NEW lacks a case of BASE.
    pub regressed: bool,
    /// Regressed, inconclusive or ok.
    pub verdict: GateVerdict,
}

/// One row of the comparison table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    case: String,
    metric: String,
    base: String,
    new: String,
    delta: String,
    verdict: Verdict,
    why: String,
    /// For a row that stands for several folded rows: how many of them had
    /// each verdict (empty for an ordinary row, which counts as one).
    folded: Vec<(Verdict, usize)>,
}

impl Row {
    /// How many rows of verdict `v` this row stands for.
    fn counts_for(&self, v: Verdict) -> usize {
        if self.folded.is_empty() {
            usize::from(self.verdict == v)
        } else {
            self.folded
                .iter()
                .filter(|(f, _)| *f == v)
                .map(|(_, n)| n)
                .sum()
        }
    }

    fn new(case: &str, metric: &str) -> Row {
        Row {
            case: case.to_owned(),
            metric: metric.to_owned(),
            base: "–".into(),
            new: "–".into(),
            delta: "–".into(),
            verdict: Verdict::NotComparable,
            why: String::new(),
            folded: Vec::new(),
        }
    }
}

/// Compares NEW against BASE with the default options and `tol`.
pub fn compare(
    base: &RunReport,
    new: &RunReport,
    tol: &Tolerances,
) -> Result<Comparison, CompareError> {
    compare_with(
        base,
        new,
        &CompareOptions {
            tolerances: tol.clone(),
            ..CompareOptions::default()
        },
    )
}

/// Compares NEW against BASE, matching cases by name.
pub fn compare_with(
    base: &RunReport,
    new: &RunReport,
    opts: &CompareOptions,
) -> Result<Comparison, CompareError> {
    opts.tolerances.check()?;
    if !(opts.confidence > 0.0 && opts.confidence < 1.0) {
        return Err(CompareError::Confidence(opts.confidence));
    }
    check_tolerance(opts.noise_factor).map_err(|_| CompareError::Tolerance {
        name: "noise factor",
        value: opts.noise_factor,
    })?;
    let (gb, gn) = (by_case(&base.cases), by_case(&new.cases));
    let only_base = names_missing(&gb, &gn);
    let only_new = names_missing(&gn, &gb);
    // Every case of NEW is missing from BASE: none in common.
    if only_new.len() == gn.len() {
        let names = |r: &RunReport| r.cases.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        return Err(CompareError::NoCommonCase {
            base: names(base),
            new: names(new),
        });
    }
    let control =
        noise::choose(&gb, &gn, opts.control.as_deref()).map_err(CompareError::NoControl)?;
    let mut rows: Vec<Row> = Vec::new();
    for (name, n) in &gn {
        let Some((_, b)) = gb.iter().find(|(x, _)| x == name) else {
            continue;
        };
        let busy = b.iter().chain(n).any(|c| (opts.busy)(c));
        rows.extend(failures::rows(name, b, n, opts, busy));
        // A control that must lose requests is there to prove the gate sees
        // drops: its throughput and latency say nothing about the code.
        if !rule::FailureRules::of(b[0], n[0]).must_fail() {
            rows.extend(noise::rows(name, b, n, control.as_ref(), opts, busy));
        }
        rows.extend(expectations::rows(name, b, n, busy));
        let errored = |t: &[&CaseReport]| t.iter().find_map(|c| c.error.clone());
        if let (Some(e), None) = (errored(n), errored(b)) {
            let mut r = Row::new(name, "case error");
            r.base = "none".into();
            r.new = e;
            r.delta = String::new();
            r.verdict = Verdict::Regressed;
            r.why = "a trial of NEW did not run to its end".into();
            rows.push(r);
        }
    }
    for name in &only_base {
        let mut r = Row::new(name, "case");
        r.base = "ran".into();
        r.new = "missing".into();
        r.delta = String::new();
        r.verdict = Verdict::Regressed;
        r.why = "NEW did not run this case".into();
        rows.push(r);
    }
    let count = |v: Verdict| rows.iter().map(|r| r.counts_for(v)).sum::<usize>();
    let (regressions, inconclusive) = (count(Verdict::Regressed), count(Verdict::Inconclusive));
    let verdict = if regressions > 0 {
        GateVerdict::Regressed
    } else if inconclusive > 0 {
        GateVerdict::Inconclusive
    } else {
        GateVerdict::Ok
    };
    let mut table = Table::new(&[
        ("case", Align::Left),
        ("metric", Align::Left),
        ("base", Align::Right),
        ("new", Align::Right),
        ("delta", Align::Right),
        ("verdict", Align::Left),
        ("why", Align::Left),
    ]);
    let has_control = rows.iter().any(|r| r.verdict == Verdict::Control);
    for r in rows {
        table.push(vec![
            r.case,
            r.metric,
            r.base,
            r.new,
            r.delta,
            r.verdict.cell().to_string(),
            r.why,
        ]);
    }
    let mut md = String::new();
    let _ = writeln!(md, "# reloadbench compare: {}\n", new.scenario.name);
    let _ = writeln!(
        md,
        "BASE: {} started {} (reloadbench {}, commit {}); NEW: {} started {} (reloadbench {}, commit {}).\n",
        base.scenario.name,
        base.started_at,
        base.tool_version,
        base.environment.git_sha.as_deref().unwrap_or("unknown"),
        new.scenario.name,
        new.started_at,
        new.tool_version,
        new.environment.git_sha.as_deref().unwrap_or("unknown"),
    );
    let tol = &opts.tolerances;
    let method = format!(
        "failures: exact one-sided test of two Poisson rates at {} % confidence (extra allowed: {}); \
         p99, requests/s: {}, tolerance max(base, {} × spread) with base p99 +{} %, requests/s −{} %; \
         reload time p50: +{} % or {} × its spread",
        opts.confidence * 100.0,
        tol.failed_abs,
        control.as_ref().map_or_else(
            || "raw values (no no-reload control in both runs)".to_owned(),
            |c| format!("ratio to the control case `{}`", c.name)
        ),
        opts.noise_factor,
        tol.p99_pct,
        tol.rps_pct,
        tol.reload_pct,
        opts.noise_factor,
    );
    let _ = match verdict {
        GateVerdict::Regressed => writeln!(md, "**❌ regressed** in {regressions} row(s).\n"),
        GateVerdict::Inconclusive => writeln!(
            md,
            "**❔ inconclusive** in {inconclusive} row(s): no regression shown, but the noise, a \
             busy machine or too few failures leave it open.\n"
        ),
        GateVerdict::Ok => writeln!(md, "**✅ no regression**.\n"),
    };
    let _ = writeln!(md, "Method: {method}.\n");
    md.push_str(&table.to_markdown());
    if !only_base.is_empty() {
        let _ = writeln!(
            md,
            "\nCases of BASE missing from NEW (a regression): {}.",
            only_base.join(", ")
        );
    }
    if !only_new.is_empty() {
        let _ = writeln!(md, "\nCases only in NEW: {}.", only_new.join(", "));
    }
    if has_control {
        let _ = writeln!(md, "\n{CONTROL_LEGEND}");
    }
    Ok(Comparison {
        markdown: md,
        regressed: verdict == GateVerdict::Regressed,
        verdict,
    })
}

/// Note under a comparison with control cases.
const CONTROL_LEGEND: &str = "A case whose expectations require failures (e.g. `failed > 0`) \
is a control: it regresses when a trial stops failing, not when it fails more; its per-class \
counts are shown but not judged (– (must fail)).";

/// `+d (+x.x%)` of BASE `b` → NEW `n`, `d` formatted by `abs`.
fn delta(b: f64, n: f64, abs: impl Fn(f64) -> String) -> String {
    let d = n - b;
    if b.abs() > f64::EPSILON {
        format!("{} ({:+.1}%)", abs(d), d / b * 100.0)
    } else {
        abs(d)
    }
}

fn names_missing(
    from: &[(&str, Vec<&CaseReport>)],
    other: &[(&str, Vec<&CaseReport>)],
) -> Vec<String> {
    from.iter()
        .filter(|(n, _)| !other.iter().any(|(o, _)| o == n))
        .map(|(n, _)| (*n).to_owned())
        .collect()
}
