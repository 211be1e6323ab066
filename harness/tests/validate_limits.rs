//! `validate` and `run` enforce the same limits: a value the load generator
//! or the origin would refuse is a scenario error (exit 2, `file:line:col:
//! field: message`) for both, and `run` creates no run directory for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{reloadbench, scenario_dir};

fn assert_both_refuse(text: &str, want: &str) {
    let dir = scenario_dir("limits.toml", text);
    for args in [
        &["validate", "limits.toml"][..],
        &["run", "limits.toml"][..],
    ] {
        let run = reloadbench(&dir, args, Duration::from_secs(30));
        run.assert_code(2);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert!(
            !run.out.exists(),
            "{args:?}: a run directory was created for an invalid scenario"
        );
    }
}

#[test]
fn a_concurrency_loadgen_refuses_is_refused_by_validate_and_run_with_a_position() {
    assert_both_refuse(
        "[load]\nconcurrency = 1000000000\nrequests = 10\n[proxy]\nkind = \"reference\"\n\
         [[case]]\nname = \"a\"\n",
        "limits.toml:2:15: load.concurrency: must be at most 1000000",
    );
}

#[test]
fn a_bucket_path_or_body_the_run_cannot_use_is_refused_before_it_starts() {
    let base = "[proxy]\nkind = \"reference\"\n[[case]]\nname = \"a\"\n";
    assert_both_refuse(
        &format!("{base}load = {{ requests = 10, bucket = \"1000000years\" }}\n"),
        "limits.toml:5:34: case[0].load.bucket: must be at most 1h",
    );
    assert_both_refuse(
        &format!("{base}load = {{ requests = 10, path = \"/a b\" }}\n"),
        "limits.toml:5:32: case[0].load.path: path contains whitespace",
    );
    assert_both_refuse(
        &format!("[origin]\nbody_bytes = 1_000_000_000_000\n{base}load = {{ requests = 10 }}\n"),
        "limits.toml:2:14: origin.body_bytes: must be at most 1073741824",
    );
}
