//! End-to-end over HTTP/2: the shipped `scenarios/h2.toml` at small counts
//! (4 connections × 5 streams for 1.5 s, a reload every 250 ms: a fixed
//! length, so that every case sees its reloads however fast the build), its
//! fd-pass case (refused streams counted, not retried) and its master-worker
//! case with `retry_refused`, through `reloadbench run` with real processes.
//! The proxy was told to speak HTTP/2, the report's stream counts are
//! loadgen's, every GOAWAY is in a bucket, no stream was lost or reset, and
//! the origin answered exactly the requests the client saw succeed.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reloadbench_model::load::LoadReport;
use support::{reloadbench, scenario_dir};

/// `scenarios/h2.toml` with its load made small; panics if the shipped
/// file no longer has the lines replaced.
fn small_h2_scenario() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/h2.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut small = text.clone();
    for (from, to) in [
        ("concurrency = 10 ", "concurrency = 4 "),
        ("streams = 10 ", "streams = 5 "),
        ("duration = \"10s\" ", "duration = \"1500ms\" "),
    ] {
        assert!(small.contains(from), "scenarios/h2.toml has no {from:?}");
        small = small.replacen(from, to, 1);
    }
    assert!(small.contains("every = \"1s\""));
    small.replace("every = \"1s\"", "every = \"250ms\"")
}

#[test]
fn heavy_h2_scenario_loses_no_stream_across_fd_pass_and_master_worker_reloads() {
    let dir = scenario_dir("h2.toml", &small_h2_scenario());
    let run = reloadbench(
        &dir,
        &[
            "run",
            "h2.toml",
            "-q",
            "--case",
            "fd-pass",
            "--case",
            "master-worker, retry refused",
        ],
        Duration::from_secs(240),
    );
    run.assert_code(0);
    let r = run.results();
    assert_eq!(r.cases.len(), 2);
    let md = std::fs::read_to_string(run.out.join("report.md")).unwrap();
    assert!(md.contains("Load of every case: HTTP/2, 4 connections × 5 concurrent streams"));
    for (c, (slug, retry)) in r.cases.iter().zip([
        ("01-fd-pass", false),
        ("02-master-worker-retry-refused", true),
    ]) {
        let case_dir = run.out.join("cases").join(slug);
        let proxy = std::fs::read_to_string(case_dir.join("proxy.toml")).unwrap();
        assert!(proxy.contains("http2 = true"), "{proxy}");
        // The report's counts are loadgen's own (its loadgen.json).
        let loadgen: LoadReport =
            serde_json::from_slice(&std::fs::read(case_dir.join("loadgen.json")).unwrap()).unwrap();
        let h2 = c.load.h2.as_ref().expect("an HTTP/2 report");
        assert_eq!(Some(h2), loadgen.h2.as_ref(), "{}", c.name);
        assert_eq!((h2.streams, h2.retry_refused), (5, retry), "{}", c.name);
        assert!(
            c.actions.len() >= 2,
            "{}: {} reloads",
            c.name,
            c.actions.len()
        );
        // Each reload drained its connections with GOAWAYs, all in the buckets.
        assert!(h2.goaway > 0 && h2.goaway_error == 0, "{}: {h2:?}", c.name);
        let in_buckets: u64 = c.load.buckets.iter().map(|b| b.goaways).sum();
        assert_eq!(in_buckets, h2.goaway, "{}", c.name);
        // Nothing lost in flight or reset; with retries nothing failed at all.
        assert_eq!(
            (h2.lost, h2.reset, h2.protocol_errors),
            (0, 0, 0),
            "{}",
            c.name
        );
        assert_eq!(c.load.failed, h2.refused.min(c.load.failed), "{}", c.name);
        if retry {
            assert_eq!(c.load.failed, 0, "{}", c.name);
            assert_eq!(c.load.retries, h2.refused, "{}", c.name);
        }
        // The origin answered each successful stream once, and nothing else.
        let ledger = c.ledger.as_ref().expect("a ledger");
        let origin = ledger.origin.as_ref().expect("the origin's counts");
        assert_eq!(origin.answered_ids, c.load.ok, "{}", c.name);
        assert_eq!(origin.duplicate_ids, 0, "{}", c.name);
        assert_eq!(ledger.lost_after_forwarding, Some(0), "{}", c.name);
        assert!(ledger.balanced, "{}: {}", c.name, ledger.summary());
        // report.md's HTTP/2 row shows the same numbers.
        let row = format!(
            "| {} | 5 | {} | {} | 0 | {} | 0 | – | 0 | 0 |",
            c.name, h2.goaway, h2.goaway_graceful, h2.refused
        );
        assert!(md.contains(&row), "no {row:?} in report.md");
    }
    run.assert_no_process_left();
}
