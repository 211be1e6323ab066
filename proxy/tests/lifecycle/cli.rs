//! The command line contract: `check`, exit codes, error messages.

use std::process::Command;

use crate::support::{BIN, Scratch};

#[test]
fn check_accepts_a_valid_config_and_rejects_an_invalid_one_with_exit_2() {
    let s = Scratch::new();
    let good = s.path("good.toml");
    std::fs::write(
        &good,
        "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:9\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let bad = s.path("bad.toml");
    std::fs::write(
        &bad,
        "listen = [\"127.0.0.1:x\"]\norigins = [\"127.0.0.1:9\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:1:"), "names file and line: {err}");
    assert!(err.contains("listen"), "names the field: {err}");

    // Serving with an invalid config is also exit 2.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn upgrade_without_a_running_process_fails_with_exit_1() {
    let s = Scratch::new();
    let good = s.path("good.toml");
    std::fs::write(
        &good,
        "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:9\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&good)
        .arg("--upgrade-from")
        .arg(s.path("nobody.sock"))
        .args(["--mode", "fd-pass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
