//! A GET/POST mix with think time through refproxy against the built-in
//! origin: the report's per-method counts against what the origin says it
//! received per method (its own `origin-ledger.json`), and `failed.POST`
//! expectations judged against the POST failures loadgen recorded.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reloadbench_harness::read_origin;
use reloadbench_model::load::LoadReport;
use support::{reloadbench, scenario_dir};

const BODY_BYTES: usize = 4096;

const MIX: &str = r#"
name = "mix"

[origin]
body_bytes = 1024

[load]
concurrency = 10
duration = "2s"
keep_alive = true
timeout = "5s"
think_time = "20ms"

[[load.request]]
weight = 3
method = "GET"

[[load.request]]
weight = 1
method = "POST"
path = "/upload"
body_file = "bodies/4k.bin"
content_type = "application/octet-stream"

[proxy]
kind = "reference"

[[case]]
name = "fd-pass"
actions = [{ every = "400ms", start = "200ms", do = "reload", mode = "fd-pass" }]
expect = { "failed.POST" = 0 }

[[case]]
name = "kill"
actions = [{ at = "700ms", do = "kill", restart = true }]
expect = { "failed.POST" = 0, "failed.GET" = "> -1" }
"#;

#[test]
fn heavy_a_get_post_mix_is_counted_per_method_as_the_origin_received_it() {
    let dir = scenario_dir("mix.toml", MIX);
    std::fs::create_dir(dir.path().join("bodies")).unwrap();
    std::fs::write(dir.path().join("bodies/4k.bin"), vec![b'b'; BODY_BYTES]).unwrap();
    let run = reloadbench(&dir, &["run", "mix.toml", "-q"], Duration::from_secs(120));
    let r = run.results();
    assert_eq!(r.cases.len(), 2, "{}", run.stderr);
    let mut any_failed_expectation = false;
    for (i, case) in r.cases.iter().enumerate() {
        let name = &case.name;
        let case_dir = run.case_dir(i);
        let load = &case.load;
        assert!(load.config.keep_alive);
        assert_eq!(load.config.think_time_ms, Some(20), "{name}");
        let methods: Vec<&str> = load.methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(methods, ["GET", "POST"], "{name}");
        let get = load.method("GET").unwrap();
        let post = load.method("POST").unwrap();
        assert_eq!(get.ok + post.ok, load.ok, "{name}");
        assert_eq!(get.failed + post.failed, load.failed, "{name}");
        assert!(post.ok > 0, "{name}: POSTs went through");
        // The origin's own count, per method (written by the origin process).
        let origin = read_origin(&case_dir.join("origin-ledger.json")).unwrap();
        let answered = |m: &str| origin.answered_by_method.get(m).copied().unwrap_or(0);
        assert_eq!(
            answered("GET") + answered("POST"),
            origin.answered,
            "{name}"
        );
        for m in [get, post] {
            // Every ok request was answered by the origin; a failed one may
            // or may not have reached it.
            let a = answered(&m.method);
            assert!(
                m.ok <= a && a <= m.ok + m.failed,
                "{name} {}: ok {} failed {} vs origin answered {a}",
                m.method,
                m.ok,
                m.failed
            );
            if m.failed == 0 {
                assert_eq!(m.ok, a, "{name} {}", m.method);
            }
        }
        // Each POST the origin answered carried the whole 4 KiB body.
        assert_eq!(
            origin.body_bytes_received,
            answered("POST") * BODY_BYTES as u64,
            "{name}"
        );
        // The harness's copy of the origin side says the same.
        let side = case.ledger.as_ref().unwrap().origin.as_ref().unwrap();
        assert_eq!(side.answered_by_method, origin.answered_by_method, "{name}");
        // `failed.POST = 0` is judged on the POST failures loadgen recorded
        // (its own file; each failure's kind indexes the mix).
        let raw: LoadReport =
            serde_json::from_slice(&std::fs::read(case_dir.join("loadgen.json")).unwrap()).unwrap();
        assert_eq!(raw.failures_dropped, 0);
        let posts_failed = raw
            .failures
            .iter()
            .filter(|f| raw.failure_method(f) == "POST")
            .count() as u64;
        assert_eq!(posts_failed, post.failed, "{name}");
        let e = case
            .expectations
            .iter()
            .find(|e| e.expr == "failed.POST = 0")
            .unwrap();
        assert_eq!(e.actual, Some(posts_failed as f64), "{name}");
        assert_eq!(e.passed, posts_failed == 0, "{name}");
        any_failed_expectation |= !case.passed();
        // The retry split adds up.
        assert_eq!(
            load.failed_retryable + load.failed_not_retryable,
            load.failed,
            "{name}"
        );
        if name == "kill" {
            assert!(load.failed > 0, "kill -9 loses requests");
        }
    }
    // fd-pass loses nothing; the run's exit code follows the expectations.
    assert_eq!(r.cases[0].load.failed, 0, "fd-pass");
    run.assert_code(if any_failed_expectation { 1 } else { 0 });
    let md = std::fs::read_to_string(run.out.join("report.md")).unwrap();
    assert!(md.contains("### Failures by method"), "{md}");
}
