//! Shared helpers of the integration tests: the fixture run report.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::path::PathBuf;

use reloadbench_reports::RunReport;

/// Path of the fixture `results.json`.
pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json")
}

/// The fixture run: seed-like, four cases (normal, restart, naive, fd-pass).
pub fn fixture() -> RunReport {
    reloadbench_reports::read_results(&fixture_path()).expect("fixture parses")
}

/// The fixture with its naive case's `failed = 0` expectation dropped: the
/// fixture's naive case fails it (3 resets), and `compare` regresses any
/// case that expects no failure and has some in NEW.
pub fn passing_fixture() -> RunReport {
    let mut r = fixture();
    r.cases[2].expectations.clear();
    r
}
