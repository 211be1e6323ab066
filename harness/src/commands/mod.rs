//! The subcommands behind the CLI, each returning the process exit code.

use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::{
    Cli, Command, CompareArgs, InitArgs, ReportArgs, RunArgs, ValidateArgs, WatchdogArgs,
};
use crate::orchestrator::os::cancel::Cancel;
use crate::orchestrator::os::watchdog;
use crate::orchestrator::run::{RunOptions, RunOutcome, RunStatus, run_scenario};
use crate::scenario;

/// Every expectation held.
pub(crate) const EXIT_PASS: u8 = 0;
/// An expectation failed, or `compare` found a regression.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Invalid scenario or usage.
pub(crate) const EXIT_USAGE: u8 = 2;
/// The harness could not run.
pub(crate) const EXIT_HARNESS: u8 = 3;
/// `compare` could not tell: no regression, but noise, a busy machine or too
/// few failures left a row open.
pub(crate) const EXIT_INCONCLUSIVE: u8 = 4;

/// Runs the parsed command line.
pub fn main(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Validate(args) => validate(&args),
        Command::Init(args) => init(&args),
        Command::Report(args) => report(&args),
        Command::Compare(args) => compare(&args),
        Command::Origin(args) => match reloadbench_origin::run(args) {
            Ok(()) => EXIT_PASS,
            Err(e) => {
                eprintln!("reloadbench origin: {e:#}");
                EXIT_HARNESS
            }
        },
        Command::Watchdog(args) => serve_watchdog(&args),
    };
    ExitCode::from(code)
}

fn serve_watchdog(args: &WatchdogArgs) -> u8 {
    watchdog::serve::serve(&watchdog::serve::ServeArgs {
        harness: args.harness,
        marker: (watchdog::MARKER_VAR.to_owned(), args.marker.clone()),
        cgroup: args.cgroup,
    })
}

fn run(args: RunArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "reloadbench: cannot start the runtime: {}",
                crate::cause::chain(&e)
            );
            return EXIT_HARNESS;
        }
    };
    let opts = RunOptions {
        scenario: args.scenario,
        out: args.out,
        quiet: args.quiet,
        force: args.force,
        cases: args.cases,
        repeat: args.repeat,
        no_netns: args.no_netns,
        allow_remote: args.allow_remote,
    };
    let code = rt.block_on(async {
        let cancel = match Cancel::on_signals() {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "reloadbench: cannot install signal handlers: {}",
                    crate::cause::chain(&e)
                );
                return EXIT_HARNESS;
            }
        };
        match run_scenario(&opts, &cancel).await {
            Ok(out) => {
                let said = finish_output(&out, opts.quiet);
                print!("{}", said.stdout);
                eprint!("{}", said.stderr);
                match out.status {
                    RunStatus::Passed => EXIT_PASS,
                    RunStatus::Failed => EXIT_FAILED,
                    RunStatus::Interrupted(s) => interrupted_code(s),
                }
            }
            Err(e) => {
                eprintln!("reloadbench: {}", crate::cause::chain(&e));
                if e.is_usage() {
                    EXIT_USAGE
                } else if e.is_external_down() {
                    EXIT_FAILED
                } else {
                    EXIT_HARNESS
                }
            }
        }
    });
    // Children were stopped by the case; do not wait on stray tasks.
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

/// What `run` prints once the run is done.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FinishOutput {
    /// For stdout: report.md (nothing with `-q`).
    pub stdout: String,
    /// For stderr: where the results are and how the run ended; with `-q`
    /// nothing when every expectation held, else the one-line result.
    pub stderr: String,
}

/// The output of a finished `run`: report.md and the run directory, or with
/// `quiet` nothing at all on success (the exit code says it) and the result
/// line on stderr otherwise.
pub(crate) fn finish_output(out: &RunOutcome, quiet: bool) -> FinishOutput {
    let passed = matches!(out.status, RunStatus::Passed);
    let mut said = FinishOutput::default();
    if quiet {
        if !passed {
            said.stderr = format!(
                "{} See {}.\n",
                reloadbench_reports::export::markdown::headline(&out.report).replace("**", ""),
                out.dir.join("report.md").display()
            );
        }
        return said;
    }
    said.stdout = reloadbench_reports::render_markdown(&out.report);
    said.stderr = format!("results: {}\n", out.dir.display());
    if let RunStatus::Interrupted(s) = out.status {
        said.stderr
            .push_str(&format!("interrupted by {s}; finished cases are kept\n"));
    }
    said
}

/// Exit code of an interruption by `s` (128 + signal number).
pub(crate) fn interrupted_code(s: Signal) -> u8 {
    128 + s as u8
}

fn validate(args: &ValidateArgs) -> u8 {
    let mut code = EXIT_PASS;
    for path in &args.scenarios {
        match scenario::load(path) {
            Ok(s) => println!(
                "{}: ok ({})",
                path.display(),
                reloadbench_model::words::count(s.cases.len() as u64, "case")
            ),
            Err(e) => {
                eprintln!("{}", crate::cause::chain(&e));
                code = EXIT_USAGE;
            }
        }
    }
    code
}

fn init(args: &InitArgs) -> u8 {
    let Some(name) = args.peer.as_deref().filter(|_| !args.list) else {
        print!("{}", crate::init::list());
        return EXIT_PASS;
    };
    let result = crate::init::peer(name)
        .and_then(|p| crate::init::write(p, &args.dir, args.force).map(|written| (p, written)));
    match result {
        Ok((p, written)) => {
            for w in &written {
                println!("wrote {}", w.display());
            }
            if let Some(i) = p.install {
                println!(
                    "install {} first: your distribution's package, or `{i}` in a reloadbench checkout",
                    p.name
                );
            }
            if let Some(s) = written.first() {
                println!("run it: reloadbench run {}", s.display());
            }
            EXIT_PASS
        }
        Err(e) => {
            eprintln!("reloadbench init: {}", crate::cause::chain(&e));
            if e.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_HARNESS
            }
        }
    }
}

fn report(args: &ReportArgs) -> u8 {
    let report = match reloadbench_reports::read_results(&args.run_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reloadbench report: {}", crate::cause::chain(&e));
            return EXIT_USAGE;
        }
    };
    let dir = if args.run_dir.is_dir() {
        args.run_dir.clone()
    } else {
        args.run_dir
            .parent()
            .map(ToOwned::to_owned)
            .unwrap_or_default()
    };
    if let Err(e) = reloadbench_reports::write_run_dir(&dir, &report) {
        eprintln!("reloadbench report: {}", crate::cause::chain(&e));
        return EXIT_HARNESS;
    }
    // The report.md just written, rather than rendering it a second time.
    match std::fs::read_to_string(dir.join("report.md")) {
        Ok(markdown) => print!("{markdown}"),
        Err(_) => print!("{}", reloadbench_reports::render_markdown(&report)),
    }
    if report.passed() {
        EXIT_PASS
    } else {
        EXIT_FAILED
    }
}

fn compare(args: &CompareArgs) -> u8 {
    let read = |p: &std::path::Path| reloadbench_reports::read_results(p);
    let (base, new) = match (read(&args.base), read(&args.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("reloadbench compare: {}", crate::cause::chain(&e));
            return EXIT_USAGE;
        }
    };
    let opts = reloadbench_reports::CompareOptions {
        tolerances: reloadbench_reports::Tolerances {
            failed_abs: args.tolerance_failed,
            p99_pct: args.tolerance_p99,
            rps_pct: args.tolerance_rps,
            reload_pct: args.tolerance_reload,
        },
        confidence: args.confidence,
        noise_factor: args.noise_factor,
        control: args.control.clone(),
        ..reloadbench_reports::CompareOptions::default()
    };
    let c = match reloadbench_reports::compare_with(&base, &new, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reloadbench compare: {}", crate::cause::chain(&e));
            return EXIT_USAGE;
        }
    };
    print!("{}", c.markdown);
    match c.verdict {
        reloadbench_reports::GateVerdict::Regressed => EXIT_FAILED,
        reloadbench_reports::GateVerdict::Inconclusive => EXIT_INCONCLUSIVE,
        reloadbench_reports::GateVerdict::Ok => EXIT_PASS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reloadbench_model::run::{RunReport, ScenarioInfo};

    fn outcome(status: RunStatus) -> RunOutcome {
        RunOutcome {
            dir: "runs/x".into(),
            report: RunReport {
                schema_version: reloadbench_model::SCHEMA_VERSION,
                tool_version: "0".into(),
                scenario: ScenarioInfo {
                    name: "s".into(),
                    description: String::new(),
                    file: "s.toml".into(),
                },
                started_at: "t".into(),
                environment: Default::default(),
                cases: Vec::new(),
                planned_cases: Vec::new(),
                interrupted: None,
            },
            status,
        }
    }

    #[test]
    fn quiet_prints_nothing_when_the_run_passed() {
        let said = finish_output(&outcome(RunStatus::Passed), true);
        assert_eq!(said, FinishOutput::default());
    }

    #[test]
    fn quiet_prints_the_result_line_on_stderr_when_the_run_did_not_pass() {
        let said = finish_output(&outcome(RunStatus::Failed), true);
        assert_eq!(said.stdout, "");
        assert!(said.stderr.contains("runs/x/report.md"), "{}", said.stderr);
        assert_eq!(said.stderr.lines().count(), 1, "{}", said.stderr);
        let mut cut = outcome(RunStatus::Interrupted(Signal::SIGINT));
        cut.report.interrupted = Some(reloadbench_model::run::Interruption {
            signal: "SIGINT".into(),
            case: None,
            trial: None,
        });
        let said = finish_output(&cut, true);
        assert!(said.stderr.contains("interrupted"), "{}", said.stderr);
    }

    #[test]
    fn without_quiet_the_report_and_the_directory_are_printed() {
        let said = finish_output(&outcome(RunStatus::Passed), false);
        assert!(
            said.stdout.starts_with("# reloadbench: s"),
            "{}",
            said.stdout
        );
        assert_eq!(said.stderr, "results: runs/x\n");
    }
}
