//! `results.json` stays compact at scale (bucket, failure and CPU columns,
//! one line per record) and older files read the same as before.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::json::JsonExporter;
use reloadbench_reports::synthetic::{SPIKE_FAILURES, Shape, run, spike_bucket};
use reloadbench_reports::{RunReport, parse_results, render_markdown};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results-v3.json")
}

/// `report` as it reads back: in the current schema, bucket means rounded
/// to 0.1 µs, the cores of the machine's load to 0.0001.
fn rounded(report: &RunReport) -> RunReport {
    let mut r = report.clone();
    r.schema_version = reloadbench_model::SCHEMA_VERSION;
    for c in &mut r.cases {
        c.load.schema_version = reloadbench_model::SCHEMA_VERSION;
        for b in &mut c.load.buckets {
            b.latency.mean_us = (b.latency.mean_us * 10.0).round() / 10.0;
        }
        for s in c.machine.iter_mut().flat_map(|m| &mut m.seconds) {
            for v in [&mut s.busy_cores, &mut s.own_cores, &mut s.steal_cores] {
                *v = (*v * 1e4).round() / 1e4;
            }
        }
    }
    r
}

fn write_and_read(report: &RunReport) -> (String, RunReport) {
    let text = String::from_utf8(JsonExporter.render(report).unwrap()).unwrap();
    let back = parse_results(Path::new("mem.json"), &text).unwrap();
    (text, back)
}

#[test]
fn a_schema_3_file_reads_and_is_written_back_as_columns_with_the_same_numbers() {
    let old = std::fs::read_to_string(example()).unwrap();
    assert!(old.contains("\"schema_version\": 3"));
    let run = reloadbench_reports::read_results(&example()).unwrap();
    let (text, back) = write_and_read(&run);
    assert!(text.contains("\"width_ns\": 100000000"), "{text}");
    assert!(back == rounded(&run), "the numbers changed");
    assert_eq!(render_markdown(&back), render_markdown(&run));
    assert!(
        text.len() * 2 < old.len(),
        "{} vs {}",
        text.len(),
        old.len()
    );
}

#[test]
fn an_hour_of_buckets_and_10000_actions_cost_a_line_per_record() {
    let run = run(Shape {
        cases: 1,
        buckets: 36_000,
        actions: 10_000,
        failing_every: 50,
    });
    let (text, back) = write_and_read(&run);
    assert!(back == rounded(&run), "the numbers changed");
    let case = &back.cases[0];
    let spike = &case.load.buckets[spike_bucket(36_000)];
    assert_eq!(spike.failed_total(), SPIKE_FAILURES);
    // The buckets of an hour: 1.26 MB when measured.
    let mut without = run.clone();
    without.cases[0].load.buckets.clear();
    let (rest, _) = write_and_read(&without);
    let buckets = text.len() - rest.len();
    assert!(buckets < 1_500_000, "{buckets} bytes of buckets");
    // 4,845 failures: 0.28 MB when measured, 0.48 MB as objects.
    without.cases[0].load.failures.clear();
    let (rest_of_rest, _) = write_and_read(&without);
    let failures = rest.len() - rest_of_rest.len();
    assert!(
        failures < 65 * case.load.failures.len(),
        "{failures} bytes for {} failures",
        case.load.failures.len()
    );
    // Each action, queue series, ... is one line: the records plus a few
    // hundred lines of outline (bucket, failure and CPU columns included).
    let records = case.actions.len()
        + case
            .evidence
            .as_ref()
            .map_or(0, |e| e.queues.len() + e.connections.len());
    let lines = text.lines().count();
    assert!(
        (records..records + 300).contains(&lines),
        "{lines} lines for {records} records"
    );
    // 11.8 MB when measured; 35.8 MB with an object per bucket and second.
    assert!(text.len() < 13_000_000, "{} bytes", text.len());
}
