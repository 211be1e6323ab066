//! A run rendered from memory and the same run written to results.json and
//! read back render the same bytes and compare the same way; an old run
//! written again says it is in the current schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use reloadbench_model::SCHEMA_VERSION;
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::json::JsonExporter;
use reloadbench_reports::synthetic::{Shape, run};
use reloadbench_reports::{RunReport, Tolerances, compare, outputs, parse_results, read_results};

fn write_and_read(report: &RunReport) -> RunReport {
    let text = String::from_utf8(JsonExporter.render(report).unwrap()).unwrap();
    parse_results(Path::new("mem.json"), &text).unwrap()
}

/// Every output of the run directory but the PNGs (same data as the SVGs).
fn rendered(report: &RunReport) -> Vec<(String, Vec<u8>)> {
    outputs()
        .into_iter()
        .filter(|(name, _)| !name.ends_with(".png"))
        .map(|(name, e)| {
            let bytes = e.render(report).unwrap();
            (name, bytes)
        })
        .collect()
}

fn same_outputs(before: &RunReport, after: &RunReport) {
    for ((name, a), (_, b)) in rendered(before).into_iter().zip(rendered(after)) {
        assert!(a == b, "{name} differs between memory and read-back");
    }
    let tol = Tolerances::default();
    let aa = compare(before, before, &tol).unwrap();
    let ab = compare(before, after, &tol).unwrap();
    let bb = compare(after, after, &tol).unwrap();
    assert_eq!(format!("{aa:?}"), format!("{bb:?}"));
    assert_eq!(format!("{aa:?}"), format!("{ab:?}"));
}

/// Means and cores that are not on the written grid (a real run's are not).
fn unrounded(mut r: RunReport) -> RunReport {
    let mut k = 0.0_f64;
    for c in &mut r.cases {
        for b in &mut c.load.buckets {
            k += 0.123_456_789;
            b.latency.mean_us += k.fract() / 7.0;
        }
        for s in c.machine.iter_mut().flat_map(|m| &mut m.seconds) {
            k += 0.000_123_456_7;
            s.busy_cores += k.fract() / 3.0;
            s.own_cores += k.fract() / 11.0;
            s.steal_cores += k.fract() / 13.0;
            s.secs += k.fract() / 17.0;
        }
    }
    r
}

#[test]
fn a_synthetic_run_renders_and_compares_the_same_after_a_round_trip() {
    let before = unrounded(run(Shape {
        cases: 2,
        buckets: 300,
        actions: 12,
        failing_every: 2,
    }));
    let after = write_and_read(&before);
    same_outputs(&before, &after);
    // And a second round trip is a fixed point of the file.
    let again = write_and_read(&after);
    assert_eq!(after, again);
}

#[test]
fn the_schema_3_fixture_renders_the_same_after_a_round_trip() {
    for p in [
        "tests/fixtures/results.json",
        "tests/fixtures/results-v3.json",
    ] {
        let before = read_results(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap();
        let after = write_and_read(&before);
        same_outputs(&before, &after);
    }
}

/// A report of an older schema written again is in the current encoding
/// (columns), so it must say the current version, or a reader of the older
/// one would take it for its own and fail on the columns instead of saying
/// "newer". Reading upgrades the version; the writer stamps it too, for a
/// report built in memory with an older one.
#[test]
fn an_old_run_written_again_says_the_current_schema() {
    let mut old = read_results(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json"),
    )
    .unwrap();
    assert_eq!(
        old.schema_version, SCHEMA_VERSION,
        "read into the current schema"
    );
    old.schema_version = 1;
    for c in &mut old.cases {
        c.load.schema_version = 1;
    }
    let text = String::from_utf8(JsonExporter.render(&old).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["cases"][0]["load"]["buckets"].is_object(),
        "written as columns"
    );
    assert_eq!(v["schema_version"], SCHEMA_VERSION);
    for c in v["cases"].as_array().unwrap() {
        assert_eq!(c["load"]["schema_version"], SCHEMA_VERSION);
    }
}
