//! `run --out DIR` of a directory that is already there: a run directory is
//! refused unless `--force` (which replaces it); `--force` never touches a
//! directory that is not a run (exit 2, the files left alone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{reloadbench, scenario_dir};

const SCENARIO: &str = "[load]\nconcurrency = 1\nrequests = 10\n[[case]]\nname = \"a\"\n";

#[test]
fn an_earlier_run_is_refused_without_force_naming_the_flag() {
    let dir = scenario_dir("s.toml", SCENARIO);
    let out = dir.path().join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("results.json"), "{}").unwrap();
    std::fs::write(out.join(".reloadbench-run"), "").unwrap();
    let run = reloadbench(&dir, &["run", "s.toml", "-q"], Duration::from_secs(30));
    run.assert_code(2);
    assert!(run.stderr.contains("already holds a run"), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("results.json")).unwrap(),
        "{}"
    );
}

#[test]
fn force_refuses_a_directory_that_is_not_a_run_and_leaves_it_alone() {
    let dir = scenario_dir("s.toml", SCENARIO);
    let out = dir.path().join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();
    let run = reloadbench(
        &dir,
        &["run", "s.toml", "-q", "--force"],
        Duration::from_secs(30),
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("is not a reloadbench run directory"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "nothing added");
}
