//! Comparison of two runs, case by case (matched by name), for a pull-request
//! comment or a CI gate: failed requests in total and per class, p99 latency,
//! requests/s and reload time, with deltas and a verdict per row.
//!
//! The gate fails closed: a case of BASE that NEW did not run is a
//! regression, two runs without a case in common cannot be compared
//! ([`CompareError::NoCommonCase`]), and tolerances must be finite and ≥ 0
//! ([`CompareError::Tolerance`]). A case that must fail (a control such as
//! `kill -9` with `failed > 0`) regresses when it stops failing (see `rule.rs`).

mod rule;

use std::fmt::Write as _;

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{CaseReport, RunReport};

use crate::export::table::{Align, Table};
use crate::summary::CaseSummary;

use rule::{FailureRules, Rule, Verdict, judge};

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
pub fn check_tolerance(value: f64) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("must be a finite number ≥ 0, got {value}"))
    }
}

/// Why two runs could not be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    /// A tolerance is NaN, infinite or negative.
    #[error("tolerance {name} must be a finite number ≥ 0, got {value}")]
    Tolerance {
        /// Which tolerance (`p99`, `rps`, `reload`).
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
}

/// Compares NEW against BASE, matching cases by name.
pub fn compare(
    base: &RunReport,
    new: &RunReport,
    tol: &Tolerances,
) -> Result<Comparison, CompareError> {
    tol.check()?;
    let only_base = names_missing(base, new);
    let only_new = names_missing(new, base);
    // Every case of NEW is missing from BASE: none in common.
    if only_new.len() == new.cases.len() {
        let names = |r: &RunReport| r.cases.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        return Err(CompareError::NoCommonCase {
            base: names(base),
            new: names(new),
        });
    }
    let mut table = Table::new(&[
        ("case", Align::Left),
        ("metric", Align::Left),
        ("base", Align::Right),
        ("new", Align::Right),
        ("delta", Align::Right),
        ("verdict", Align::Left),
    ]);
    let mut regressions = 0usize;
    let mut has_control = false;
    for new_case in &new.cases {
        let Some(base_case) = base.cases.iter().find(|c| c.name == new_case.name) else {
            continue;
        };
        for (metric, b, n, rule, fmt) in rows(base_case, new_case, tol) {
            let verdict = match (b, n) {
                (Some(b), Some(n)) => judge(b, n, rule),
                _ => Verdict::NotComparable,
            };
            if verdict == Verdict::Regressed {
                regressions += 1;
            }
            has_control |= verdict == Verdict::Control;
            table.push(vec![
                new_case.name.clone(),
                metric,
                b.map_or_else(|| "–".into(), |v| fmt.show(v)),
                n.map_or_else(|| "–".into(), |v| fmt.show(v)),
                delta(b, n, fmt),
                verdict.cell().to_string(),
            ]);
        }
        if new_case.error.is_some() && base_case.error.is_none() {
            regressions += 1;
            table.push(vec![
                new_case.name.clone(),
                "case error".into(),
                "none".into(),
                new_case.error.clone().unwrap_or_default(),
                String::new(),
                Verdict::Regressed.cell().to_string(),
            ]);
        }
    }
    for name in &only_base {
        regressions += 1;
        table.push(vec![
            name.clone(),
            "case".into(),
            "ran".into(),
            "missing".into(),
            String::new(),
            Verdict::Regressed.cell().to_string(),
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
    let tolerances = format!(
        "tolerances: failed +{}, per class +{}, p99 +{}%, requests/s −{}%, reload time +{}%",
        tol.failed_abs, tol.failed_abs, tol.p99_pct, tol.rps_pct, tol.reload_pct
    );
    if regressions > 0 {
        let _ = writeln!(
            md,
            "**❌ regressed** in {regressions} row(s); {tolerances}.\n"
        );
    } else {
        let _ = writeln!(md, "**✅ no regression**; {tolerances}.\n");
    }
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
        regressed: regressions > 0,
    })
}

/// Note under a comparison with control cases.
const CONTROL_LEGEND: &str = "A case whose expectations require failures (e.g. `failed > 0`) \
is a control: it regresses when it stops failing, not when it fails more; its per-class counts \
are shown but not judged (– (must fail)).";

/// How a metric's values are shown.
#[derive(Debug, Clone, Copy)]
enum Fmt {
    Count,
    Ms,
    Rate,
}

impl Fmt {
    fn show(self, v: f64) -> String {
        match self {
            Fmt::Count => format!("{v:.0}"),
            Fmt::Ms => format!("{v:.2} ms"),
            Fmt::Rate => format!("{v:.1}"),
        }
    }
}

type Row = (String, Option<f64>, Option<f64>, Rule, Fmt);

fn rows(base: &CaseReport, new: &CaseReport, tol: &Tolerances) -> Vec<Row> {
    let (sb, sn) = (CaseSummary::of(base), CaseSummary::of(new));
    let abs = Rule::MoreAbs(tol.failed_abs as f64);
    let rules = FailureRules::of(base, new);
    let mut rows: Vec<Row> = vec![(
        "failed".into(),
        Some(sb.failed as f64),
        Some(sn.failed as f64),
        rules.rule("failed", abs),
        Fmt::Count,
    )];
    for class in FailureClass::ALL {
        let (b, n) = (base.failed_of(class), new.failed_of(class));
        if b > 0 || n > 0 {
            rows.push((
                format!("failed: {}", class.label()),
                Some(b as f64),
                Some(n as f64),
                rules.rule(class.key(), abs),
                Fmt::Count,
            ));
        }
    }
    let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
    rows.push((
        "p99".into(),
        ms(sb.p99_us),
        ms(sn.p99_us),
        Rule::MorePct(tol.p99_pct),
        Fmt::Ms,
    ));
    rows.push((
        "requests/s".into(),
        Some(sb.rps),
        Some(sn.rps),
        Rule::LessPct(tol.rps_pct),
        Fmt::Rate,
    ));
    if sb.reload_max_ns.is_some() || sn.reload_max_ns.is_some() {
        let ns_ms = |ns: Option<u64>| ns.map(|n| n as f64 / 1e6);
        rows.push((
            "reload time max".into(),
            ns_ms(sb.reload_max_ns),
            ns_ms(sn.reload_max_ns),
            Rule::MorePct(tol.reload_pct),
            Fmt::Ms,
        ));
    }
    rows
}

fn delta(b: Option<f64>, n: Option<f64>, fmt: Fmt) -> String {
    let (Some(b), Some(n)) = (b, n) else {
        return "–".into();
    };
    let d = n - b;
    let abs = match fmt {
        Fmt::Count => format!("{d:+.0}"),
        Fmt::Ms => format!("{d:+.2} ms"),
        Fmt::Rate => format!("{d:+.1}"),
    };
    if b.abs() > f64::EPSILON {
        format!("{abs} ({:+.1}%)", d / b * 100.0)
    } else {
        abs
    }
}

fn names_missing(from: &RunReport, other: &RunReport) -> Vec<String> {
    from.cases
        .iter()
        .filter(|c| !other.cases.iter().any(|o| o.name == c.name))
        .map(|c| c.name.clone())
        .collect()
}
