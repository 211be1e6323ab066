//! `reloadbench compare` exit codes: 1 when NEW lacks a case of BASE or a
//! control case stopped failing, 2 when nothing can be compared or a
//! tolerance is not a finite number ≥ 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use reloadbench_model::run::RunReport;
use support::{Run, reloadbench};

/// The reports fixture, its naive case's `failed = 0` dropped (it fails
/// it, and any failure of NEW in such a case regresses).
fn fixture() -> RunReport {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures/results.json");
    let mut r: RunReport = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    r.cases[2].expectations.clear();
    r
}

/// Writes BASE and NEW into a temp dir and runs `compare base.json new.json extra...`.
fn compare(base: &RunReport, new: &RunReport, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    for (name, r) in [("base.json", base), ("new.json", new)] {
        std::fs::write(dir.path().join(name), serde_json::to_vec(r).unwrap()).unwrap();
    }
    let mut args = vec!["compare", "base.json", "new.json"];
    args.extend_from_slice(extra);
    reloadbench(&dir, &args, Duration::from_secs(30))
}

#[test]
fn compare_exits_2_when_new_has_no_case() {
    let base = fixture();
    let mut new = base.clone();
    new.cases.clear();
    let run = compare(&base, &new, &[]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("no case appears in both runs"),
        "{}",
        run.stderr
    );
}

#[test]
fn compare_exits_1_naming_the_cases_new_did_not_run() {
    let base = fixture();
    let mut new = base.clone();
    new.cases.truncate(2);
    let run = compare(&base, &new, &[]);
    run.assert_code(1);
    assert!(
        run.stdout.contains(
            "Cases of BASE missing from NEW (a regression): reload without socket, reload with socket."
        ),
        "{}",
        run.stdout
    );
    compare(&base, &base, &[]).assert_code(0);
}

#[test]
fn compare_exits_2_naming_a_tolerance_that_is_not_a_finite_number() {
    let base = fixture();
    let mut slower = base.clone();
    // Every case but the control slower: the ratios to the control regress
    // (a slower control alone is the machine's as much as the code's).
    for c in slower.cases.iter_mut().filter(|c| c.name != "normal") {
        c.load.elapsed_ns *= 2;
    }
    compare(&base, &slower, &[]).assert_code(1);
    // One spawned case per flag; cli.rs's unit test tries every bad value.
    for (flag, bad) in [
        ("--tolerance-p99", "NaN"),
        ("--tolerance-rps", "inf"),
        ("--tolerance-reload", "-5"),
    ] {
        let run = compare(&base, &slower, &[flag, bad]);
        run.assert_code(2);
        assert!(run.stderr.contains(flag), "{flag} {bad}: {}", run.stderr);
        assert!(
            run.stderr.contains("must be a finite number ≥ 0"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn compare_fails_a_control_case_only_when_it_stops_failing() {
    let mut base = fixture();
    base.cases[1].expectations[0].expr = "failed > 0".into();
    let mut more = base.clone();
    let mut none = base.clone();
    let (m, n) = (&mut more.cases[1].load, &mut none.cases[1].load);
    m.failed *= 2;
    n.failed = 0;
    for c in &mut m.classes {
        c.count *= 2;
    }
    n.classes.clear();
    compare(&base, &more, &[]).assert_code(0);
    let run = compare(&base, &none, &[]);
    run.assert_code(1);
    assert!(
        run.stdout.contains("| restart | failed | 117 | 0 |"),
        "{}",
        run.stdout
    );
}

#[test]
fn compare_exits_4_when_a_change_is_within_the_noise_and_1_when_it_is_not() {
    let base = fixture();
    let mut slower = base.clone();
    // fd-pass 20 % slower than the control: beyond the 10 % tolerance.
    slower.cases[3].load.elapsed_ns = slower.cases[3].load.elapsed_ns * 5 / 4;
    compare(&base, &slower, &[]).assert_code(1);
    // With a noise factor that widens the tolerance past 20 %, it is
    // inconclusive: exit 4, said in the output.
    let run = compare(&base, &slower, &["--noise-factor", "10"]);
    run.assert_code(4);
    assert!(run.stdout.contains("**❔ inconclusive**"), "{}", run.stdout);
    // A failure in the case that expects none outranks it: exit 1.
    let mut lost = slower.clone();
    lost.cases[3].load.failed = 1;
    compare(&base, &lost, &["--noise-factor", "10"]).assert_code(1);
}

#[test]
fn report_prints_the_report_md_it_wrote_and_reads_schema_1_files() {
    // The fixture is a schema 1 file: buckets as an array of objects.
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures/results.json");
    std::fs::copy(&fixture, dir.path().join("results.json")).unwrap();
    let run = reloadbench(&dir, &["report", "."], Duration::from_secs(60));
    run.assert_code(1);
    let written = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(written.starts_with("# reloadbench: seed"), "{written}");
    assert_eq!(run.stdout, written);
}
