//! The command line of `reloadbench` (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit codes, shown in `--help` and the README.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  every expectation held (compare: no regression)
  1  an expectation failed, or the proxy or origin died during a case
     (compare: regressed, or NEW lacks a case of BASE)
  2  invalid scenario or usage (compare: no case in common, a bad tolerance,
     confidence or control)
  3  the harness could not run (a process failed to start, a peer is missing,
     a file of the run directory could not be written, ...)
  4  compare only: inconclusive (no row regressed, but a change was within
     the noise, the machine was busy, or too few failures to tell)
  130/143  interrupted by SIGINT/SIGTERM (finished cases are kept)";

/// How `compare` judges, shown in `compare --help`.
pub(crate) const COMPARE_HELP: &str = "\
How compare judges (cases matched by name, trials of a repeated case together):
  failures     exact one-sided test of two Poisson rates (k_new given k_old + k_new
               is binomial with p = n_new / (n_old + n_new)) at --confidence, per
               case, per failure class and per action (actions at confidence
               divided by their number); any failure of NEW in a case that
               expects failed = 0 regresses; a must-fail control regresses when
               a trial stops failing
  p99, req/s   ratios to the same run's no-reload control (--control, else the
               first case without actions), tolerance
               max(--tolerance-*, --noise-factor x spread), spread = the largest
               of the control's per-100 ms-bucket (P90-P10)/(2 x P50) and the
               trials' (max-min)/(2 x median)
  verdicts     ok, improved, regressed, inconclusive (worse than the base
               tolerance but within the noise; too few failures for the test;
               a borderline change on a busy machine)

Exit codes:
  0  no regression, nothing inconclusive
  1  regressed, or NEW lacks a case of BASE (outranks 4)
  2  no case in common, a bad tolerance, confidence or control
  4  inconclusive";

/// reloadbench: what a proxy's users feel when it is restarted or reloaded under load.
#[derive(Debug, Parser)]
#[command(name = "reloadbench", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: every case, the reports, the expectations as exit code.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Check scenario files without running anything.
    Validate(ValidateArgs),
    /// Re-render the reports of a run directory from its results.json.
    Report(ReportArgs),
    /// Compare two runs (for a pull request); exit 1 when NEW regressed or
    /// lacks a case of BASE, 4 when inconclusive, 2 when they have no case
    /// in common.
    #[command(after_help = COMPARE_HELP)]
    Compare(CompareArgs),
    /// Write a scenario for a peer (haproxy, nginx, external, refproxy) into
    /// the current directory, to start from; with no PEER, list them.
    Init(InitArgs),
    /// The built-in origin server (started by `run`; usable by hand).
    Origin(reloadbench_origin::OriginArgs),
    /// Internal: the watchdog `run` starts to kill its processes if it dies.
    #[command(name = "__watchdog", hide = true)]
    Watchdog(WatchdogArgs),
}

/// `reloadbench __watchdog` (started by `run`, not by hand).
#[derive(Debug, Args)]
pub struct WatchdogArgs {
    /// Pid of the harness (the parent).
    #[arg(long)]
    pub harness: u32,
    /// Value of the run's marker environment variable.
    #[arg(long)]
    pub marker: String,
    /// Whether to put the run in a cgroup v2 when one is writable.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    pub cgroup: bool,
}

/// `reloadbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file, e.g. scenarios/seed.toml.
    pub scenario: PathBuf,
    /// The run directory (default: `runs/<YYYY-MM-DD-HHMMSS>-<scenario>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the `--out` directory when it holds an earlier run (it must
    /// look like one: results.json or the run marker; anything else is
    /// refused).
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Print nothing when every expectation held (the exit code says it);
    /// otherwise only the one-line result on stderr. report.md is in the run
    /// directory.
    #[arg(short, long)]
    pub quiet: bool,
    /// Run only this case (repeatable).
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Run every case N times (trials interleaved, case order rotated by one
    /// per trial), over the scenario's `repeat`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: Option<u32>,
    /// Run the cases in the host's network namespace. By default, as root,
    /// each case gets its own (loopback only), so that no other traffic
    /// touches its ports and its kernel counters are its own; without root
    /// the counters are host-wide either way.
    #[arg(long)]
    pub no_netns: bool,
    /// Allow a `kind = "external"` target outside loopback (127.0.0.0/8,
    /// ::1). A benchmark is a load test: use it only on a server you own
    /// and may load. The target's address is recorded in the environment.
    #[arg(long)]
    pub allow_remote: bool,
}

/// `reloadbench init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The peer (see --list); none lists them.
    pub peer: Option<String>,
    /// List the scenarios init can write.
    #[arg(long, conflicts_with = "peer")]
    pub list: bool,
    /// Replace files that exist.
    #[arg(long)]
    pub force: bool,
    /// Write into this directory instead of the current one.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

/// `reloadbench validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
}

/// `reloadbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory (or its results.json).
    pub run_dir: PathBuf,
}

/// `reloadbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The base run (directory or results.json).
    pub base: PathBuf,
    /// The new run (directory or results.json).
    pub new: PathBuf,
    /// Extra failed requests allowed, absolute.
    #[arg(long, default_value_t = 0)]
    pub tolerance_failed: u64,
    /// Allowed p99 latency increase, percent.
    #[arg(long, default_value_t = 10.0, value_parser = tolerance, allow_negative_numbers = true)]
    pub tolerance_p99: f64,
    /// Allowed requests/s decrease, percent.
    #[arg(long, default_value_t = 10.0, value_parser = tolerance, allow_negative_numbers = true)]
    pub tolerance_rps: f64,
    /// Allowed reload time (median over reloads) increase, percent.
    #[arg(long, default_value_t = 20.0, value_parser = tolerance, allow_negative_numbers = true)]
    pub tolerance_reload: f64,
    /// Confidence of the failure-count test, between 0 and 1.
    #[arg(long, default_value_t = 0.99, value_parser = confidence, allow_negative_numbers = true)]
    pub confidence: f64,
    /// k in the noise-widened tolerance max(base, k × spread).
    #[arg(long, default_value_t = 2.0, value_parser = tolerance, allow_negative_numbers = true)]
    pub noise_factor: f64,
    /// The no-reload control case (default: the first case without actions
    /// that both runs have).
    #[arg(long, value_name = "CASE")]
    pub control: Option<String>,
}

/// Why a number on the command line was refused.
#[derive(Debug, thiserror::Error)]
enum NumberArgError {
    /// Not a number.
    #[error(transparent)]
    Parse(#[from] std::num::ParseFloatError),
    /// A confidence outside (0, 1).
    #[error("must be a number between 0 and 1 (e.g. 0.99), got {0}")]
    Confidence(f64),
    /// A tolerance that is negative, infinite or NaN.
    #[error(transparent)]
    Tolerance(#[from] reloadbench_reports::compare::BadTolerance),
}

/// A confidence strictly between 0 and 1.
fn confidence(s: &str) -> Result<f64, NumberArgError> {
    let v: f64 = s.trim().parse()?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(NumberArgError::Confidence(v))
    }
}

/// A percent tolerance: a finite number ≥ 0 (NaN would pass every comparison).
fn tolerance(s: &str) -> Result<f64, NumberArgError> {
    let v: f64 = s.trim().parse()?;
    Ok(reloadbench_reports::compare::check_tolerance(v)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_cases_and_out() {
        let cli = Cli::try_parse_from([
            "reloadbench",
            "run",
            "s.toml",
            "--case",
            "a",
            "--case",
            "b",
            "--out",
            "o",
            "-q",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.cases, vec!["a", "b"]);
        assert!(r.quiet);
        assert_eq!(r.out, Some(PathBuf::from("o")));
    }

    #[test]
    fn compare_rejects_tolerances_that_are_not_finite_and_non_negative() {
        for flag in [
            "--tolerance-p99",
            "--tolerance-rps",
            "--tolerance-reload",
            "--noise-factor",
            "--confidence",
        ] {
            for bad in ["NaN", "nan", "inf", "-1", "-0.5", "x"] {
                let e = Cli::try_parse_from(["reloadbench", "compare", "a", "b", flag, bad])
                    .unwrap_err();
                assert_eq!(e.exit_code(), 2, "{flag} {bad}");
                assert!(e.to_string().contains(flag), "{e}");
            }
            let good = if flag == "--confidence" { "0.95" } else { "0" };
            let ok = Cli::try_parse_from(["reloadbench", "compare", "a", "b", flag, good]);
            assert!(ok.is_ok(), "{flag} {good}");
        }
        for bad in ["0", "1", "99"] {
            let e = Cli::try_parse_from(["reloadbench", "compare", "a", "b", "--confidence", bad]);
            assert!(e.is_err(), "--confidence {bad}");
        }
    }
}
