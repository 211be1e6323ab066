//! `scripts/test` (the README's test command) with a stand-in `cargo` on
//! PATH that records its arguments: it uses cargo-nextest when `cargo nextest`
//! answers, and falls back to `cargo test` (heavy_ tests in a second,
//! one-thread invocation) when it does not, saying which.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Runs scripts/test with a fake cargo; `nextest` says whether `cargo nextest
/// --version` succeeds. Returns (cargo invocations, stderr).
fn run_with_fake_cargo(nextest: bool) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let fake = dir.path().join("cargo");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nif [ \"$1\" = nextest ] && [ \"$2\" = --version ]; then exit {}; fi\nexit 0\n",
            log.display(),
            if nextest { 0 } else { 1 }
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(root.join("scripts/test"))
        .env("PATH", path)
        .env_remove("NEXTEST_PROFILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (calls, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn scripts_test_uses_nextest_when_it_is_installed() {
    let (calls, stderr) = run_with_fake_cargo(true);
    assert_eq!(
        calls,
        [
            "build --workspace --bins --locked",
            "test --workspace --doc --locked",
            "nextest --version",
            "nextest run --workspace --locked --profile default",
        ]
    );
    assert!(stderr.contains("with cargo-nextest"), "{stderr}");
}

#[test]
fn scripts_test_falls_back_to_cargo_test_with_heavy_tests_serial() {
    let (calls, stderr) = run_with_fake_cargo(false);
    assert_eq!(
        calls,
        [
            "build --workspace --bins --locked",
            "test --workspace --doc --locked",
            "nextest --version",
            "test --workspace --locked --lib --bins --tests -- --skip heavy_",
            "test --workspace --locked --lib --bins --tests -- heavy_ --test-threads=1",
        ]
    );
    assert!(
        stderr.contains("cargo-nextest is not installed"),
        "{stderr}"
    );
}
