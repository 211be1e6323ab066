//! `compare` on synthetic runs: noise alone is not a regression, a real drop
//! is, a noisy control or a busy machine makes a borderline change
//! inconclusive, and repeated cases are compared over their trials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{CaseReport, ClassTotal, RunReport};
use reloadbench_reports::{CompareOptions, GateVerdict, compare_with, parse_results};

const CONTROL: usize = 0; // "normal": no actions
const NAIVE: usize = 2; // "reload without socket"
const FD_PASS: usize = 3; // "reload with socket", expects failed = 0

/// The fixture with its naive case's `failed = 0` expectation dropped (the
/// fixture's naive case fails it, which `compare` would flag in any pair).
fn base() -> RunReport {
    let mut r = support::fixture();
    r.cases[NAIVE].expectations.clear();
    r
}

/// Scales a case's throughput by `rps` and its latency by `lat`.
fn jitter(c: &mut CaseReport, rps: f64, lat: f64) {
    c.load.elapsed_ns = (c.load.elapsed_ns as f64 / rps) as u64;
    for q in &mut c.load.latency.percentiles {
        q.us = (q.us as f64 * lat) as u64;
    }
}

/// Makes the control's per-bucket throughput and p99 swing by ±`amp`.
fn shake(c: &mut CaseReport, amp: f64) {
    for (i, b) in c.load.buckets.iter_mut().enumerate() {
        let f = if i % 2 == 0 { 1.0 - amp } else { 1.0 + amp };
        b.ok = (b.ok as f64 * f) as u64;
        b.latency.p99_us = (b.latency.p99_us as f64 * (2.0 - f)) as u64;
    }
}

fn opts() -> CompareOptions {
    CompareOptions::default()
}

fn row<'a>(md: &'a str, case: &str, metric: &str) -> &'a str {
    let prefix = format!("| {case} | {metric} |");
    md.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no row {prefix} in\n{md}"))
}

#[test]
fn noise_only_is_not_a_regression() {
    let base = base();
    // Every case moved within a few percent, in either direction; the
    // restart case's failures moved by chance (117 → 128, p ≈ 0.25).
    for (k, (rps, lat)) in [(0.95, 1.06), (1.04, 0.97), (0.97, 1.09), (1.02, 1.0)]
        .into_iter()
        .enumerate()
    {
        let mut new = base.clone();
        for (i, c) in new.cases.iter_mut().enumerate() {
            let s = if (i + k) % 2 == 0 { 1.0 } else { -1.0 };
            jitter(c, rps + s * 0.01, lat);
        }
        let restart = &mut new.cases[1].load;
        restart.failed += 11;
        restart.classes[0].count += 11;
        let c = compare_with(&base, &new, &opts()).unwrap();
        assert_ne!(
            c.verdict,
            GateVerdict::Regressed,
            "jitter {k}:\n{}",
            c.markdown
        );
        assert!(
            row(&c.markdown, "restart", "failed").contains("| ok | 117/"),
            "{}",
            c.markdown
        );
    }
}

/// NEW's fd-pass case loses `n` requests in its reloads, as a naive reload would.
fn drop_requests(new: &mut RunReport, n: u64) {
    let fd = &mut new.cases[FD_PASS];
    fd.load.failed += n;
    fd.load.ok -= n;
    fd.load.classes.push(reloadbench_model::load::ClassCount {
        class: FailureClass::Reset,
        count: n,
        on_reused: 0,
        first_ns: 1_000_000_000,
        last_ns: 2_000_000_000,
    });
    let per = n / fd.actions.len() as u64;
    for a in &mut fd.actions {
        a.failures = vec![ClassTotal {
            class: FailureClass::Reset,
            count: per,
        }];
    }
}

#[test]
fn a_real_drop_is_a_regression_with_its_reason() {
    let base = base();
    let mut new = base.clone();
    drop_requests(&mut new, 300);
    let c = compare_with(&base, &new, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
    let r = row(&c.markdown, "reload with socket", "failed");
    assert!(r.contains("❌ regressed"), "{r}");
    assert!(
        r.contains("expects failed = 0: NEW failed 300 in 1 of 1 trial(s)"),
        "{r}"
    );
    // Without the expectation the test alone sees it: 0 → 300 in ~26k
    // requests each, p = 2^-300 ≈ 4.9e-91.
    let (mut b2, mut n2) = (base.clone(), new.clone());
    b2.cases[FD_PASS].expectations.clear();
    n2.cases[FD_PASS].expectations.clear();
    let c = compare_with(&b2, &n2, &opts()).unwrap();
    let r = row(&c.markdown, "reload with socket", "failed");
    assert!(
        r.contains("❌ regressed") && r.contains("p = 4.9e-91"),
        "{r}"
    );
    assert!(
        row(
            &c.markdown,
            "reload with socket",
            "failed: action 0 reload (fd-pass)"
        )
        .contains("❌ regressed"),
        "{}",
        c.markdown
    );
}

#[test]
fn a_few_failures_are_inconclusive_not_a_regression() {
    let (mut base, mut new) = (base(), base());
    base.cases[FD_PASS].expectations.clear();
    new.cases[FD_PASS].expectations.clear();
    drop_requests(&mut new, 3);
    let c = compare_with(&base, &new, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Inconclusive, "{}", c.markdown);
    let r = row(&c.markdown, "reload with socket", "failed");
    // 0 → 3 with about equal exposure: all three in NEW has p ≈ 1/8.
    assert!(r.contains("too few for the test to tell"), "{r}");
}

#[test]
fn a_noisy_control_makes_a_borderline_drop_inconclusive() {
    let mut base = base();
    shake(&mut base.cases[CONTROL], 0.3);
    let mut new = base.clone();
    // fd-pass 20 % slower: beyond 10 %, within 2 × the control's ±30 %.
    jitter(&mut new.cases[FD_PASS], 0.8, 1.0);
    let c = compare_with(&base, &new, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Inconclusive, "{}", c.markdown);
    let r = row(&c.markdown, "reload with socket", "requests/s");
    assert!(
        r.contains("❔ inconclusive") && r.contains("within the noise"),
        "{r}"
    );
    assert!(
        r.contains("vs control: ×1.013 → ×0.810 (-20.0 %); control moved +0.0 %"),
        "{r}"
    );
    // The same drop with a quiet control is a regression.
    let (quiet, mut slow) = (self::base(), self::base());
    jitter(&mut slow.cases[FD_PASS], 0.8, 1.0);
    let c = compare_with(&quiet, &slow, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
}

#[test]
fn the_whole_machine_slowing_down_moves_the_control_not_the_ratios() {
    let base = base();
    let mut new = base.clone();
    // Neighbour load: everything 25 % slower, p99 +60 %.
    for c in &mut new.cases {
        jitter(c, 0.75, 1.6);
    }
    let c = compare_with(&base, &new, &opts()).unwrap();
    let r = row(&c.markdown, "reload with socket", "requests/s");
    assert!(
        r.contains("| ok |") && r.contains("control moved -25.0 %"),
        "{r}"
    );
    // The control itself has only its raw numbers: beyond the tolerance it
    // is inconclusive (the machine's change as much as the code's), never
    // regressed, so neighbour load alone never fails the gate.
    let r = row(&c.markdown, "normal", "requests/s");
    assert!(
        r.contains("inconclusive |") && r.contains("cannot be told from the machine's"),
        "{r}"
    );
    assert_ne!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
}

#[test]
fn a_busy_machine_makes_a_borderline_regression_inconclusive() {
    let base = base();
    let mut new = base.clone();
    jitter(&mut new.cases[FD_PASS], 0.85, 1.0);
    let quiet = compare_with(&base, &new, &opts()).unwrap();
    assert_eq!(quiet.verdict, GateVerdict::Regressed, "{}", quiet.markdown);
    let busy = CompareOptions {
        busy: |_| true,
        ..opts()
    };
    let c = compare_with(&base, &new, &busy).unwrap();
    assert_eq!(c.verdict, GateVerdict::Inconclusive, "{}", c.markdown);
    assert!(
        row(&c.markdown, "reload with socket", "requests/s").contains("machine busy"),
        "{}",
        c.markdown
    );
    // A failure in a case that expects none regresses, busy or not.
    drop_requests(&mut new, 300);
    assert_eq!(
        compare_with(&base, &new, &busy).unwrap().verdict,
        GateVerdict::Regressed
    );
}

/// `run` with every case repeated `n` times, trials interleaved, trial `t`
/// throughput scaled by `1 + spread × (t − 2)`.
fn repeated(run: &RunReport, n: u32, spread: f64) -> RunReport {
    let mut out = run.clone();
    out.cases.clear();
    for t in 1..=n {
        for c in &run.cases {
            let mut c = c.clone();
            c.trial = Some(t);
            jitter(&mut c, 1.0 + spread * (f64::from(t) - 2.0), 1.0);
            out.cases.push(c);
        }
    }
    out
}

#[test]
fn trials_are_compared_by_their_median_with_their_spread() {
    let old = repeated(&base(), 3, 0.02);
    let new = repeated(&base(), 3, 0.02);
    let c = compare_with(&old, &new, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Ok, "{}", c.markdown);
    // Failures are summed over trials: 3 × 117 in 3 × 7741 requests.
    assert!(
        row(&c.markdown, "restart", "failed").contains("| 351 | 351 |"),
        "{}",
        c.markdown
    );
    // Noise that hits every case of a trial alike cancels in the ratios
    // to the control: trials at ×0.5, ×1, ×1.5 throughout are ok.
    let c = compare_with(&old, &repeated(&base(), 3, 0.5), &opts()).unwrap();
    assert!(
        row(&c.markdown, "reload with socket", "requests/s").contains("| ok |"),
        "{}",
        c.markdown
    );
    // Spread across the trials of one case widens its tolerance: NEW's
    // fd-pass trials at ×0.6, ×0.8, ×1.0 of the control (±25 %) make a 20 %
    // drop inconclusive.
    let mut wide = repeated(&base(), 3, 0.0);
    for c in &mut wide.cases {
        if c.name == "reload with socket" {
            let t = f64::from(c.trial.unwrap());
            jitter(c, 0.4 + 0.2 * t, 1.0);
        }
    }
    let c = compare_with(&old, &wide, &opts()).unwrap();
    assert!(
        row(&c.markdown, "reload with socket", "requests/s").contains("❔ inconclusive"),
        "{}",
        c.markdown
    );
}

#[test]
fn a_control_regresses_when_any_trial_stops_failing() {
    let mut b = base();
    b.cases[1].expectations[0].expr = "failed > 0".into();
    let base = repeated(&b, 2, 0.0);
    let mut new = base.clone();
    let stopped = new
        .cases
        .iter_mut()
        .find(|c| c.name == "restart" && c.trial == Some(2))
        .unwrap();
    stopped.load.failed = 0;
    stopped.load.classes.clear();
    let c = compare_with(&base, &new, &opts()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
    assert!(
        row(&c.markdown, "restart", "failed").contains("failed least failed 117 in BASE, 0 in NEW"),
        "{}",
        c.markdown
    );
}

#[test]
fn a_named_control_must_be_in_both_runs() {
    let run = base();
    let named = |n: &str| CompareOptions {
        control: Some(n.into()),
        ..opts()
    };
    assert!(compare_with(&run, &run, &named("reload with socket")).is_ok());
    let e = compare_with(&run, &run, &named("nope")).unwrap_err();
    assert_eq!(e.to_string(), "control case \"nope\" is not in both runs");
    for bad in [0.0, 1.0, f64::NAN] {
        let o = CompareOptions {
            confidence: bad,
            ..opts()
        };
        assert!(compare_with(&run, &run, &o).is_err(), "{bad}");
    }
}

#[test]
fn results_json_keeps_the_trial_index_and_omits_it_for_single_runs() {
    let run = repeated(&base(), 2, 0.0);
    let json = serde_json::to_string(&run).unwrap();
    assert!(json.contains("\"trial\":2"), "trial index written");
    assert_eq!(
        parse_results(std::path::Path::new("x"), &json).unwrap(),
        run,
        "round trip"
    );
    let single = serde_json::to_string(&base()).unwrap();
    assert!(!single.contains("\"trial\""), "no trial key without repeat");
    let md = reloadbench_reports::render_markdown(&run);
    assert!(md.contains("## Trials"), "{md}");
    assert!(md.contains("| restart | 2 | 2/2 | 117 (117–117) |"), "{md}");
    assert!(md.contains("| restart · trial 2 |"), "{md}");
}

#[test]
fn a_reload_time_without_a_measurable_spread_is_inconclusive_not_regressed() {
    // The fixture's cases have 2 reloads each: too few for a spread.
    let base = base();
    let mut new = base.clone();
    for a in &mut new.cases[FD_PASS].actions {
        a.ready_ns = a.ready_ns.map(|r| a.trigger_ns + (r - a.trigger_ns) * 2);
    }
    let c = compare_with(&base, &new, &opts()).unwrap();
    let r = row(&c.markdown, "reload with socket", "reload time p50");
    assert!(
        r.contains("❔ inconclusive") && r.contains("too few values"),
        "{r}"
    );
}

#[test]
fn a_ratio_to_a_control_that_ran_on_a_busy_machine_is_inconclusive() {
    // Only the control changed (a neighbour slowed BASE's control): the
    // fd-pass case's ratio to it moves by −13 %, beyond the 10 % tolerance.
    let base = base();
    let mut new = base.clone();
    let normal = new.cases.iter_mut().find(|c| c.name == "normal").unwrap();
    jitter(normal, 1.15, 1.0);
    let quiet = compare_with(&base, &new, &opts()).unwrap();
    let r = row(&quiet.markdown, "reload with socket", "requests/s");
    assert!(r.contains("regressed"), "{r}");
    let busy_control = CompareOptions {
        busy: |c| c.name == "normal",
        ..opts()
    };
    let c = compare_with(&base, &new, &busy_control).unwrap();
    let r = row(&c.markdown, "reload with socket", "requests/s");
    assert!(
        r.contains("inconclusive") && r.contains("machine busy"),
        "{r}"
    );
    assert_eq!(c.verdict, GateVerdict::Inconclusive, "{}", c.markdown);
}

#[test]
fn a_control_that_must_fail_is_judged_on_its_failures_only() {
    // "restart" made to expect failed > 0: it proves the gate sees drops;
    // its speed says nothing about the code, so it gets no p99 / requests/s row.
    let mut base = base();
    base.cases[1].expectations[0].expr = "failed > 0".into();
    let mut new = base.clone();
    jitter(&mut new.cases[1], 0.5, 3.0);
    let c = compare_with(&base, &new, &opts()).unwrap();
    assert!(
        c.markdown.contains("| restart | failed |"),
        "{}",
        c.markdown
    );
    assert!(!c.markdown.contains("| restart | p99 |"), "{}", c.markdown);
    assert!(
        !c.markdown.contains("| restart | requests/s |"),
        "{}",
        c.markdown
    );
    assert_ne!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
}
