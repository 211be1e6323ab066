//! `compare` on runs a gate must not wave through, or choke on: cases with
//! too few buckets, a side that finished no request, an expectation of the
//! scenario that broke, a NEW that rewrites what must fail, and the extra
//! failures `--tolerance-failed` allows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::run::ExpectationResult;
use reloadbench_reports::{CompareOptions, GateVerdict, RunReport, Tolerances, compare_with};

const FD_PASS: usize = 3; // "reload with socket", expects failed = 0

fn base() -> RunReport {
    support::passing_fixture()
}

fn opts() -> CompareOptions {
    CompareOptions::default()
}

fn fail(r: &mut RunReport, case: usize, n: u64) {
    let c = &mut r.cases[case];
    c.load.failed += n;
    c.load.ok -= n;
}

#[test]
fn a_case_of_one_bucket_is_compared_without_a_panic() {
    let mut b = base();
    for c in &mut b.cases {
        c.load.buckets.truncate(1);
    }
    let c = compare_with(&b, &b.clone(), &opts()).unwrap();
    assert_ne!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
}

#[test]
fn failures_where_none_are_expected_regress_even_when_base_finished_nothing() {
    let mut b = base();
    let load = &mut b.cases[FD_PASS].load;
    (load.ok, load.failed) = (0, 0);
    let mut n = base();
    fail(&mut n, FD_PASS, 300);
    let c = compare_with(&b, &n, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
}

#[test]
fn a_new_that_finished_no_request_regresses() {
    let b = base();
    let mut n = base();
    let load = &mut n.cases[FD_PASS].load;
    load.not_started += load.ok;
    (load.ok, load.failed) = (0, 0);
    let c = compare_with(&b, &n, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
    assert!(
        c.markdown.contains("NEW finished no request"),
        "{}",
        c.markdown
    );
}

#[test]
fn an_expectation_that_held_in_base_and_fails_in_new_regresses() {
    // Every reload of NEW rolled back: nothing lost, but reload_failed = 0 broke.
    let mut b = base();
    let held = ExpectationResult {
        expr: "reload_failed = 0".into(),
        actual: Some(0.0),
        passed: true,
    };
    b.cases[FD_PASS].expectations.push(held.clone());
    let mut n = b.clone();
    n.cases[FD_PASS].expectations.last_mut().unwrap().passed = false;
    n.cases[FD_PASS].expectations.last_mut().unwrap().actual = Some(2.0);
    let c = compare_with(&b, &n, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
    assert!(
        c.markdown
            .contains("| reload with socket | expectation reload_failed = 0 |"),
        "{}",
        c.markdown
    );
}

#[test]
fn new_cannot_make_a_case_a_control_that_must_fail() {
    // BASE's "normal" has no expectation; NEW adds failed > 0 and fails 3000.
    let b = base();
    let mut n = base();
    n.cases[0].expectations.push(ExpectationResult {
        expr: "failed > 0".into(),
        actual: Some(3000.0),
        passed: true,
    });
    fail(&mut n, 0, 3000);
    let c = compare_with(&b, &n, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
}

#[test]
fn extra_failures_within_the_allowed_tolerance_are_not_inconclusive() {
    // "normal": 0 → 3 failures; 5 allowed.
    let b = base();
    let mut n = base();
    fail(&mut n, 0, 3);
    let allowed = CompareOptions {
        tolerances: Tolerances {
            failed_abs: 5,
            ..Tolerances::default()
        },
        ..opts()
    };
    let c = compare_with(&b, &n, &allowed).unwrap();
    let row = c
        .markdown
        .lines()
        .find(|l| l.starts_with("| normal | failed |"))
        .unwrap();
    assert!(row.contains("within the 5 extra failures allowed"), "{row}");
}

#[test]
fn an_expectation_new_dropped_or_broke_on_a_busy_machine_is_inconclusive() {
    let mut b = base();
    b.cases[FD_PASS].expectations.push(ExpectationResult {
        expr: "reload_time_ms < 2000".into(),
        actual: Some(12.0),
        passed: true,
    });
    // NEW no longer checks it.
    let mut dropped = b.clone();
    dropped.cases[FD_PASS].expectations.pop();
    let c = compare_with(&b, &dropped, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Inconclusive, "{}", c.markdown);
    assert!(
        c.markdown.contains("no longer has this expectation"),
        "{}",
        c.markdown
    );
    // NEW broke it while the machine was busy.
    let mut broke = b.clone();
    let e = broke.cases[FD_PASS].expectations.last_mut().unwrap();
    (e.passed, e.actual) = (false, Some(2500.0));
    let busy = CompareOptions {
        busy: |_| true,
        ..opts()
    };
    let c = compare_with(&b, &broke, &busy).unwrap();
    assert_ne!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
    assert!(
        c.markdown.contains("but the machine was busy"),
        "{}",
        c.markdown
    );
}
