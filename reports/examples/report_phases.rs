//! Times each phase of rendering a run directory, for `scripts/bench-report`:
//! reading and parsing `results.json`, the diagnosis of every case, writing
//! `results.json` again, and every output `reloadbench report` renders
//! (each rendered in memory, nothing is written).
//!
//! Usage: `report_phases DIR` (a run directory or a `results.json`).
//! Prints one `phase seconds` line per phase.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::json::JsonExporter;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: report_phases DIR");
        return ExitCode::from(2);
    };
    let t = Instant::now();
    let report = match reloadbench_reports::read_results(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("report_phases: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("read+parse {:.3}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let findings: usize = report
        .cases
        .iter()
        .map(|c| reloadbench_reports::diagnose(c).len())
        .sum();
    println!(
        "diagnosis {:.3} ({findings} findings)",
        t.elapsed().as_secs_f64()
    );
    let mut outputs: Vec<(String, Box<dyn Exporter>)> =
        vec![("results.json".into(), Box::new(JsonExporter))];
    outputs.extend(reloadbench_reports::outputs());
    for (name, exporter) in outputs {
        let t = Instant::now();
        match exporter.render(&report) {
            Ok(bytes) => println!(
                "{name} {:.3} ({} bytes)",
                t.elapsed().as_secs_f64(),
                bytes.len()
            ),
            Err(e) => println!("{name} failed: {e}"),
        }
    }
    ExitCode::SUCCESS
}
