//! `compare` as a CI gate fails closed: missing cases, nothing in common,
//! tolerances that are not numbers, and control cases that stop failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::outcome::FailureClass;
use reloadbench_reports::{CompareError, RunReport, Tolerances, compare};

fn tol() -> Tolerances {
    Tolerances::default()
}

#[test]
fn a_new_run_without_cases_cannot_be_compared() {
    let base = support::fixture();
    let mut new = base.clone();
    new.cases.clear();
    let e = compare(&base, &new, &tol()).unwrap_err();
    assert!(matches!(e, CompareError::NoCommonCase { .. }), "{e}");
    assert!(e.to_string().contains("NEW: no cases"), "{e}");
    let mut renamed = base.clone();
    for c in &mut renamed.cases {
        c.name.push_str(" (renamed)");
    }
    assert!(matches!(
        compare(&base, &renamed, &tol()),
        Err(CompareError::NoCommonCase { .. })
    ));
}

#[test]
fn a_case_of_base_missing_from_new_is_a_regression_named_in_the_output() {
    let base = support::fixture();
    let mut new = base.clone();
    new.cases.retain(|c| c.name == "reload with socket");
    let c = compare(&base, &new, &tol()).unwrap();
    assert!(c.regressed, "{}", c.markdown);
    assert!(
        c.markdown.contains("**❌ regressed** in 3 row(s)"),
        "{}",
        c.markdown
    );
    for name in ["normal", "restart", "reload without socket"] {
        assert!(
            c.markdown.contains(&format!(
                "| {name} | case | ran | missing |  | ❌ regressed |"
            )),
            "{name}: {}",
            c.markdown
        );
    }
    assert!(
        c.markdown.contains(
            "Cases of BASE missing from NEW (a regression): normal, restart, reload without socket."
        ),
        "{}",
        c.markdown
    );
}

#[test]
fn tolerances_that_are_not_finite_and_non_negative_are_refused() {
    let run = support::fixture();
    for (name, set) in [
        (
            "p99",
            (|t: &mut Tolerances, v| t.p99_pct = v) as fn(&mut Tolerances, f64),
        ),
        ("rps", |t, v| t.rps_pct = v),
        ("reload", |t, v| t.reload_pct = v),
    ] {
        for v in [f64::NAN, f64::INFINITY, -1.0] {
            let mut t = tol();
            set(&mut t, v);
            match compare(&run, &run, &t) {
                Err(CompareError::Tolerance { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name} = {v}: {other:?}"),
            }
        }
    }
}

/// The fixture with its restart case turned into a control that must fail,
/// and NEW's restart case with its failures scaled by `k`.
fn control(k: u64) -> (RunReport, RunReport) {
    let mut base = support::fixture();
    // The fixture's naive case fails its `failed = 0`, which regresses in
    // any pair now; these tests are about the control.
    base.cases[2].expectations.clear();
    base.cases[1].expectations[0].expr = "failed > 0".into();
    let mut new = base.clone();
    let restart = &mut new.cases[1];
    restart.load.failed *= k;
    for c in &mut restart.load.classes {
        c.count *= k;
    }
    (base, new)
}

#[test]
fn a_control_case_regresses_when_it_stops_failing_not_when_it_fails_more() {
    let (base, more) = control(3);
    let c = compare(&base, &more, &tol()).unwrap();
    assert!(
        !c.regressed,
        "failing more is what a control does:\n{}",
        c.markdown
    );
    assert!(
        c.markdown
            .contains("| restart | failed | 117 | 351 | +234 (+200.0%) | ok |"),
        "{}",
        c.markdown
    );
    assert!(
        c.markdown.contains(
            "| restart | failed: connect refused | 18 | 54 | +36 (+200.0%) | – (must fail) |"
        ),
        "{}",
        c.markdown
    );
    assert!(
        c.markdown.contains("is a control"),
        "legend: {}",
        c.markdown
    );
    let fixture = support::fixture();
    let plain = compare(&fixture, &fixture, &tol()).unwrap();
    assert!(
        !plain.markdown.contains("is a control"),
        "no legend without a control row: {}",
        plain.markdown
    );
    let (base, none) = control(0);
    let c = compare(&base, &none, &tol()).unwrap();
    assert!(c.regressed, "{}", c.markdown);
    assert!(
        c.markdown
            .contains("| restart | failed | 117 | 0 | -117 (-100.0%) | ❌ regressed |"),
        "{}",
        c.markdown
    );
}

#[test]
fn a_class_the_control_must_produce_is_judged_by_its_own_expectation() {
    let (mut base, mut new) = control(1);
    base.cases[1].expectations[0].expr = "connect_refused >= 1".into();
    let load = &mut new.cases[1].load;
    for c in &mut load.classes {
        if c.class == FailureClass::ConnectRefused {
            load.failed -= c.count;
            c.count = 0;
        }
    }
    let c = compare(&base, &new, &tol()).unwrap();
    assert!(c.regressed, "{}", c.markdown);
    assert!(
        c.markdown.contains(
            "| restart | failed: connect refused | 18 | 0 | -18 (-100.0%) | ❌ regressed |"
        ),
        "{}",
        c.markdown
    );
}
