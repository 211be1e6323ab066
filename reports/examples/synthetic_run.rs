//! Writes a synthetic `results.json` (see `reloadbench_reports::synthetic`)
//! into a new run directory, for `scripts/bench-report`.
//!
//! Usage: `synthetic_run DIR CASES BUCKETS_PER_CASE ACTIONS_PER_CASE [FAILING_EVERY]`

use std::path::PathBuf;
use std::process::ExitCode;

use reloadbench_reports::synthetic::{Shape, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: Option<usize>| -> Option<usize> {
        match args.get(i) {
            Some(a) => a.parse().ok(),
            None => default,
        }
    };
    let (Some(dir), Some(cases), Some(buckets), Some(actions), Some(failing_every)) = (
        args.first().map(PathBuf::from),
        number(1, None),
        number(2, None),
        number(3, None),
        number(4, Some(50)),
    ) else {
        eprintln!(
            "usage: synthetic_run DIR CASES BUCKETS_PER_CASE ACTIONS_PER_CASE [FAILING_EVERY]"
        );
        return ExitCode::from(2);
    };
    let report = run(Shape {
        cases,
        buckets,
        actions,
        failing_every,
    });
    let path = dir.join(reloadbench_reports::RESULTS_FILE);
    if let Err(e) = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            reloadbench_reports::write_results(&path, &report).map_err(|e| e.to_string())
        })
    {
        eprintln!("synthetic_run: {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
