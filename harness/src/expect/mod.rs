//! Expectations of a case (the CI gate) and their evaluation against a
//! [`CaseReport`].
//!
//! An expectation is a metric, a comparison and a number, written in a
//! scenario as `failed = 0`, `failed = "<= 5"`, `p99_ms = "< 50"` or
//! `per_reload.failed = "<= 1"`. The metric names are [`Metric::key`]s;
//! an unknown name is an invalid scenario, never a silent pass.

mod goaway;
mod metric;
mod parse;
mod windows;
mod ws;

use reloadbench_model::run::{CaseReport, ExpectationResult};

pub use metric::Metric;
pub(crate) use parse::distance;
pub(crate) use parse::{ExpectParseError, parse_condition};
pub use ws::WsMetric;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `=` (or `==`).
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl Op {
    /// The operator as written in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// Whether `actual op expected` holds.
    pub(crate) fn holds(self, actual: f64, expected: f64) -> bool {
        match self {
            Op::Eq => actual == expected,
            Op::Ne => actual != expected,
            Op::Lt => actual < expected,
            Op::Le => actual <= expected,
            Op::Gt => actual > expected,
            Op::Ge => actual >= expected,
        }
    }
}

/// One threshold of a case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expectation {
    /// What is measured.
    pub metric: Metric,
    /// How it is compared.
    pub op: Op,
    /// The threshold.
    pub value: f64,
    /// The expectation as written, normalised: `failed = 0`, `reset <= 5`.
    pub expr: String,
}

impl Expectation {
    /// Builds an expectation and its `expr` text.
    pub(crate) fn new(metric: Metric, op: Op, value: f64) -> Expectation {
        let expr = format!("{} {} {}", metric.key(), op.as_str(), value);
        Expectation {
            metric,
            op,
            value,
            expr,
        }
    }

    /// Measures the metric on `case` and compares. A metric that cannot be
    /// computed (e.g. no reload happened) fails with `actual: None`.
    pub(crate) fn evaluate(&self, case: &CaseReport) -> ExpectationResult {
        let actual = self.metric.measure(case);
        ExpectationResult {
            expr: self.expr.clone(),
            actual,
            passed: actual.is_some_and(|a| self.op.holds(a, self.value)),
        }
    }
}

/// Evaluates every expectation against a finished case, in order.
pub(crate) fn evaluate(expectations: &[Expectation], case: &CaseReport) -> Vec<ExpectationResult> {
    expectations.iter().map(|e| e.evaluate(case)).collect()
}

#[cfg(test)]
mod tests;
