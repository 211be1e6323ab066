//! End-to-end: `reloadbench run` on loopback with real processes (the
//! built-in origin, refproxy, the in-process load generator).
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace
//! --bins`, as `scripts/test` does first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{Run, reloadbench, reloadbench_env, scenario_dir};

const SEED_LIKE: &str = r#"
name = "seed-like"
description = "the seed cases at reduced n"

[origin]
body_bytes = 32987

[load]
concurrency = 50
requests = 20_000
keep_alive = false
timeout = "10s"

[proxy]
kind = "reference"

[[case]]
name = "normal"
expect = { failed = 0 }

[[case]]
name = "restart"
actions = [{ every = "300ms", do = "restart" }]
expect = { failed = "> 0" }

[[case]]
name = "reload with socket"
actions = [{ every = "300ms", do = "reload", mode = "fd-pass" }]
expect = { failed = 0, reload_failed = 0 }
"#;

#[test]
fn heavy_seed_like_run_loses_requests_only_on_restart() {
    let dir = scenario_dir("seed-like.toml", SEED_LIKE);
    let run = reloadbench(
        &dir,
        &["run", "seed-like.toml", "-q"],
        Duration::from_secs(240),
    );
    run.assert_code(0);
    let r = run.results();
    let cases: Vec<(&str, u64, usize)> = r
        .cases
        .iter()
        .map(|c| (c.name.as_str(), c.load.failed, c.actions.len()))
        .collect();
    assert_eq!(cases.len(), 3, "{cases:?}");
    assert_eq!(cases[0].1, 0, "normal lost requests: {cases:?}");
    assert!(cases[1].1 > 0, "restart lost nothing: {cases:?}");
    assert_eq!(cases[2].1, 0, "fd-pass lost requests: {cases:?}");
    assert!(
        cases[1].2 >= 3 && cases[2].2 >= 3,
        "too few actions: {cases:?}"
    );
    for c in &r.cases {
        assert_eq!(
            c.load.planned,
            c.load.ok + c.load.failed + c.load.not_started
        );
        assert!(
            c.cpu.proxy_s > 0.0 && c.cpu.origin_s > 0.0 && c.cpu.loadgen_s > 0.0,
            "{:?}",
            c.cpu
        );
        for a in &c.actions {
            assert!(a.ok, "{a:?}");
            assert!(a.ready_ns.is_some() && a.exited_ns.is_some(), "{a:?}");
        }
    }
    // Restart failures are attributed to restarts.
    let attributed: u64 = r.cases[1].actions.iter().map(|a| a.failed_total()).sum();
    assert!(attributed > 0, "no failure attributed to a restart");
    // The run directory.
    for f in ["scenario.toml", "environment.json", "report.md", "pids.log"] {
        assert!(run.out.join(f).is_file(), "missing {f}");
    }
    for (i, slug) in ["01-normal", "02-restart", "03-reload-with-socket"]
        .iter()
        .enumerate()
    {
        let case = run.out.join("cases").join(slug);
        for f in ["loadgen.json", "latency.hlog", "events.jsonl", "proxy.toml"] {
            assert!(case.join(f).is_file(), "case {i}: missing {f}");
        }
        assert!(std::fs::read_dir(case.join("logs")).unwrap().count() >= 2);
    }
    assert_eq!(run.stdout, "", "-q printed on stdout");
    assert_eq!(run.stderr, "", "-q printed on stderr");
    run.assert_no_process_left();
}

#[test]
fn heavy_gate_exits_1_when_an_expectation_fails() {
    let text = r#"
[load]
concurrency = 10
requests = 2_000
[proxy]
kind = "reference"
[[case]]
name = "no drops but expects some"
expect = { failed = "> 0" }
"#;
    let dir = scenario_dir("gate.toml", text);
    let run = reloadbench(&dir, &["run", "gate.toml", "-q"], Duration::from_secs(120));
    run.assert_code(1);
    let r = run.results();
    assert_eq!(r.cases.len(), 1);
    assert!(!r.cases[0].expectations[0].passed);
    assert_eq!(r.cases[0].expectations[0].actual, Some(0.0));
    run.assert_no_process_left();
}

#[test]
fn heavy_a_proxy_that_dies_fails_its_case_and_keeps_what_was_measured() {
    let text = r#"
[load]
concurrency = 10
duration = "1500ms"
[proxy]
kind = "reference"
[[case]]
name = "crash"
actions = [{ at = "300ms", do = "exec", command = "kill -KILL {pid}" }]
expect = { failed = "> 0" }
[[case]]
name = "after"
expect = { failed = 0 }
"#;
    let dir = scenario_dir("crash.toml", text);
    let run = reloadbench(&dir, &["run", "crash.toml", "-q"], Duration::from_secs(120));
    run.assert_code(1);
    let r = run.results();
    assert_eq!(r.cases.len(), 2, "{}", run.logs());
    let crash = &r.cases[0];
    let error = crash.error.as_deref().unwrap_or_default();
    assert!(error.contains("system under test died"), "{error}");
    assert!(error.contains("refproxy (pid"), "{error}");
    assert!(
        crash.load.ok > 0 && crash.load.failed > 0,
        "{:?}",
        crash.load
    );
    assert!(crash.expectations[0].passed, "the measurement is kept");
    assert!(r.cases[1].passed(), "the next case runs: {:?}", r.cases[1]);
    run.assert_no_process_left();
}

#[test]
fn a_command_proxy_that_exits_before_ready_fails_fast_with_its_message() {
    let text = r#"
[load]
concurrency = 1
requests = 10
[proxy]
kind = "command"
binary = "sh"
start = "sh -c 'echo fatal: unknown keyword >&2; exit 3'"
ready = { port = true, timeout = "60s" }
[[case]]
name = "a"
"#;
    let dir = scenario_dir("bad.toml", text);
    let t0 = std::time::Instant::now();
    let run = reloadbench(&dir, &["run", "bad.toml", "-q"], Duration::from_secs(50));
    run.assert_code(3);
    assert!(
        t0.elapsed() < support::scaled(Duration::from_secs(40)),
        "waited for the readiness deadline"
    );
    let err = &run.stderr;
    assert!(
        err.contains("exited with status 3 before it was ready"),
        "{err}"
    );
    assert!(err.contains("it said: fatal: unknown keyword"), "{err}");
    run.assert_no_process_left();
}

#[test]
fn gate_exits_2_on_an_expectation_over_an_unknown_metric() {
    let text = "[load]\nconcurrency = 1\nrequests = 10\n[proxy]\nkind = \"reference\"\n\n[[case]]\nname = \"a\"\nexpect = { faild = 0 }\n";
    let dir = scenario_dir("typo.toml", text);
    let run = reloadbench(&dir, &["run", "typo.toml"], Duration::from_secs(30));
    run.assert_code(2);
    assert!(run.stderr.contains("typo.toml:9:"), "{}", run.stderr);
    assert!(run.stderr.contains("faild"), "{}", run.stderr);
    assert!(
        !run.out.exists(),
        "a run directory was created for an invalid scenario"
    );
}

#[test]
fn malformed_scenario_exits_2_naming_line_and_field() {
    let text = "[load]\nconcurrency = \"many\"\nrequests = 10\n[proxy]\nkind = \"reference\"\n[[case]]\nname = \"a\"\n";
    let dir = scenario_dir("bad.toml", text);
    for args in [&["run", "bad.toml"][..], &["validate", "bad.toml"][..]] {
        let run = reloadbench(&dir, args, Duration::from_secs(30));
        run.assert_code(2);
        assert!(run.stderr.contains("bad.toml:2:"), "{}", run.stderr);
        assert!(run.stderr.contains("concurrency"), "{}", run.stderr);
    }
}

/// Runs a scenario whose second case never ends by itself (10M requests,
/// fd-pass reloads every 200 ms); after 3000 requests an exec action sends
/// `signal` to its parent, the running reloadbench, from another process,
/// in the middle of the load and the reloads.
fn interrupted_run(signal: &str, master: bool) -> (tempfile::TempDir, Run) {
    let mode = if master { "master-worker" } else { "fd-pass" };
    let text = format!(
        r#"
[load]
concurrency = 20
[proxy]
kind = "reference"

[[case]]
name = "first"
load = {{ requests = 2_000 }}
expect = {{ failed = 0 }}

[[case]]
name = "interrupted"
load = {{ requests = 10_000_000 }}
actions = [
  {{ every = "200ms", do = "reload", mode = "{mode}" }},
  {{ after_requests = 3_000, do = "exec", command = "kill -{signal} $PPID" }},
]
"#
    );
    let dir = scenario_dir("interrupt.toml", &text);
    let run = reloadbench(
        &dir,
        &["run", "interrupt.toml", "-q"],
        Duration::from_secs(120),
    );
    (dir, run)
}

fn check_interrupted(run: &Run, code: i32, signal: &str) {
    run.assert_code(code);
    let r = run.results();
    assert_eq!(r.cases[0].name, "first");
    assert!(r.cases[0].passed());
    if let Some(c) = r.cases.get(1) {
        assert!(
            c.error.as_deref().unwrap_or("").contains(signal),
            "{:?}",
            c.error
        );
    }
    let pids = run.started_pids();
    assert!(pids.len() >= 4, "pids.log: {pids:?}");
    run.assert_no_process_left();
}

#[test]
fn heavy_sigint_leaves_no_process_and_keeps_finished_cases() {
    let (_dir, run) = interrupted_run("INT", false);
    check_interrupted(&run, 130, "SIGINT");
}

#[test]
fn heavy_sigterm_during_master_worker_reloads_leaves_no_worker() {
    let (_dir, run) = interrupted_run("TERM", true);
    check_interrupted(&run, 143, "SIGTERM");
}

#[test]
fn harness_exits_3_naming_the_build_command_when_refproxy_is_missing() {
    let text = "[load]\nconcurrency = 1\nrequests = 10\n[proxy]\nkind = \"reference\"\n[[case]]\nname = \"a\"\n";
    let dir = scenario_dir("s.toml", text);
    let run = reloadbench_env(
        &dir,
        &["run", "s.toml"],
        &[("REFPROXY_BIN", "/nonexistent/refproxy")],
        Duration::from_secs(30),
    );
    run.assert_code(3);
    assert!(
        run.stderr.contains("cargo build --workspace --bins"),
        "{}",
        run.stderr
    );
}

#[test]
fn harness_exits_3_naming_the_installer_when_a_peer_is_missing() {
    let text = r#"
[load]
concurrency = 1
requests = 10
[proxy]
kind = "command"
binary = "reloadbench-no-such-peer"
install = "scripts/install-peers reloadbench-no-such-peer"
start = "reloadbench-no-such-peer -f {config}"
ready = { port = true }
[[case]]
name = "a"
"#;
    let dir = scenario_dir("peer.toml", text);
    let run = reloadbench(&dir, &["run", "peer.toml"], Duration::from_secs(30));
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("scripts/install-peers reloadbench-no-such-peer"),
        "{}",
        run.stderr
    );
}
