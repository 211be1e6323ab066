//! End-to-end over TLS: the shipped `scenarios/tls.toml` at small counts
//! (c=20, 3,000 requests, a reload every second), its fd-pass case and its
//! control without shared ticket keys, through `reloadbench run` with real
//! processes. The report's handshake counts are loadgen's, every connection
//! made one handshake, and resumption survives an fd-pass reload only when
//! the ticket keys are handed over.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reloadbench_model::load::LoadReport;
use support::{reloadbench, scenario_dir};

/// `scenarios/tls.toml` with its load made small; panics if the shipped
/// file no longer has the lines replaced.
fn small_tls_scenario() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/tls.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut small = text.clone();
    for (from, to) in [
        ("concurrency = 100\n", "concurrency = 20\n"),
        ("requests = 60_000\n", "requests = 3_000\n"),
    ] {
        assert!(small.contains(from), "scenarios/tls.toml has no {from:?}");
        small = small.replacen(from, to, 1);
    }
    small
}

#[test]
fn heavy_tls_scenario_keeps_resumption_across_fd_pass_reloads_only_with_shared_keys() {
    let dir = scenario_dir("tls.toml", &small_tls_scenario());
    let run = reloadbench(
        &dir,
        &[
            "run",
            "tls.toml",
            "-q",
            "--case",
            "fd-pass",
            "--case",
            "fd-pass, keys not shared",
        ],
        Duration::from_secs(240),
    );
    run.assert_code(0);
    let r = run.results();
    assert_eq!(r.cases.len(), 2);
    for (c, slug) in r
        .cases
        .iter()
        .zip(["01-fd-pass", "02-fd-pass-keys-not-shared"])
    {
        let case_dir = run.out.join("cases").join(slug);
        // The report's counts are loadgen's own (its loadgen.json).
        let loadgen: LoadReport =
            serde_json::from_slice(&std::fs::read(case_dir.join("loadgen.json")).unwrap()).unwrap();
        let tls = c.load.tls.as_ref().expect("a TLS report");
        assert_eq!(Some(tls), loadgen.tls.as_ref(), "{}", c.name);
        // One handshake per connection, none failed; the buckets hold them all.
        assert_eq!(tls.handshakes, c.load.connections, "{}", c.name);
        assert_eq!(tls.handshakes, tls.full + tls.resumed + tls.failed);
        assert_eq!(tls.failed, 0, "{}", c.name);
        let full: u64 = c.load.buckets.iter().map(|b| b.handshakes.full).sum();
        let resumed: u64 = c.load.buckets.iter().map(|b| b.handshakes.resumed).sum();
        assert_eq!((full, resumed), (tls.full, tls.resumed), "{}", c.name);
        assert_eq!(c.load.failed, 0, "{}", c.name);
        assert!(
            c.actions.len() >= 2,
            "{}: {} reloads",
            c.name,
            c.actions.len()
        );
        // report.md's TLS row shows the same numbers.
        let md = std::fs::read_to_string(run.out.join("report.md")).unwrap();
        let row = format!(
            "| {} | TLSv1.3 | {} | {} | {} | 0 |",
            c.name, tls.handshakes, tls.full, tls.resumed
        );
        assert!(md.contains(&row), "no {row:?} in report.md");
        // The proxy served the run's certificate, verified against the run's CA.
        let proxy = std::fs::read_to_string(case_dir.join("proxy.toml")).unwrap();
        assert!(proxy.contains("[tls]"), "{proxy}");
    }
    assert!(run.out.join("tls/ca.pem").is_file());
    let (shared, control) = (&r.cases[0], &r.cases[1]);
    let lowest =
        |c: &reloadbench_model::run::CaseReport| c.lowest_tls_resumed_ratio_after_reload().unwrap();
    assert!(lowest(shared) >= 0.95, "shared keys: {}", lowest(shared));
    assert!(
        lowest(control) < lowest(shared),
        "control {} vs shared {}",
        lowest(control),
        lowest(shared)
    );
    // Without the keys, each reload makes returning clients pay full handshakes.
    let (fs, fc) = (
        shared.load.tls.as_ref().unwrap().full,
        control.load.tls.as_ref().unwrap().full,
    );
    assert!(
        fc >= fs + control.actions.len() as u64,
        "full handshakes: control {fc}, shared {fs}"
    );
    run.assert_no_process_left();
}
