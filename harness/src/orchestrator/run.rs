//! A whole run: validate, capture the environment, run the cases one by one
//! (results written after each), render the reports.

use std::path::PathBuf;
use std::time::SystemTime;

use nix::sys::signal::Signal;
use reloadbench_model::SCHEMA_VERSION;
use reloadbench_model::run::{Interruption, RunReport, ScenarioInfo};
use reloadbench_model::words::count;

use crate::rundir::{RunDir, RunDirError};
use crate::scenario::{self, ProxySpec, Scenario, ScenarioErrors};

use super::case::{CaseError, CaseInput, Programs, run_case};
use super::os::binaries::{self, BinaryError};
use super::os::cancel::Cancel;
use super::os::process::PidLog;
use super::os::watchdog::{self, WatchdogError};

/// What `reloadbench run` was asked to do.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunOptions {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The run directory (default `runs/<stamp>-<id>`).
    pub out: Option<PathBuf>,
    /// No progress on the terminal.
    pub quiet: bool,
    /// Replace `out` when it holds an earlier run.
    pub force: bool,
    /// Run only these cases (by name); all when empty.
    pub cases: Vec<String>,
    /// Trials of every case (`--repeat`), over the scenario's `repeat`.
    pub repeat: Option<u32>,
    /// Run every case in the host's network namespace even as root
    /// (see [`super::os::netns`]).
    pub no_netns: bool,
    /// Allow an external target outside loopback (`--allow-remote`).
    pub allow_remote: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunStatus {
    /// Every case ran and every expectation held.
    Passed,
    /// Some expectation failed.
    Failed,
    /// Interrupted by a signal; the finished cases were kept.
    Interrupted(Signal),
}

/// A finished (or interrupted) run.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The report as written to `results.json`.
    pub report: RunReport,
    /// How it ended.
    pub status: RunStatus,
}

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The scenario is invalid.
    #[error("{0}")]
    Invalid(ScenarioErrors),
    /// `--case` named a case the scenario does not have.
    #[error("no case named {name:?} in {file} (cases: {known})")]
    UnknownCase {
        /// The name given.
        name: String,
        /// The scenario file.
        file: String,
        /// The case names.
        known: String,
    },
    /// A peer program (haproxy, nginx, ...) is not installed.
    #[error("{binary} is not installed; install it with: {install}")]
    MissingPeer {
        /// The program.
        binary: String,
        /// The install command.
        install: String,
    },
    /// An external target is not on loopback and `--allow-remote` was not given.
    #[error(
        "the target {url} resolves to {addrs}, which is not loopback: a benchmark is a load \
         test, and this one would send {load} to that server. Run it only against a server you \
         own and may load, with --allow-remote"
    )]
    Remote {
        /// The target URL.
        url: String,
        /// What it resolved to.
        addrs: String,
        /// What the load would send, in words.
        load: String,
    },
    /// An external target resolves to an unspecified address (0.0.0.0,
    /// [::]): a listening address, not one a client can send to.
    #[error(
        "the target {url} resolves to {addrs}, an unspecified address: it is what a server \
         listens on, not an address to send to; write the address the server is reached at \
         (e.g. 127.0.0.1 or [::1])"
    )]
    Unspecified {
        /// The target URL.
        url: String,
        /// What it resolved to.
        addrs: String,
    },
    /// An external target does not resolve.
    #[error("cannot resolve the target {url}: {source}")]
    Resolve {
        /// The target URL.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// A reloadbench program is missing.
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// The watchdog could not be started.
    #[error(transparent)]
    Watchdog(#[from] WatchdogError),
    /// The run directory could not be written.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// `results.json` is complete but a report file (report.md, report.html,
    /// a chart, ...) could not be written.
    #[error("cannot write the reports: {source} (results.json is complete in {dir})")]
    Reports {
        /// Which file and why.
        source: RunDirError,
        /// The run directory.
        dir: PathBuf,
    },
    /// The run's TLS certificates could not be made.
    #[error(transparent)]
    Pki(#[from] super::pki::PkiError),
    /// A case could not run; the cases before it are in the run directory.
    #[error("{source} (finished cases are kept in {dir})")]
    Case {
        /// Why.
        source: CaseError,
        /// The run directory.
        dir: PathBuf,
    },
}

impl RunError {
    /// True when a server reloadbench did not start was not ready for a
    /// case (exit 1, like a server that died during one: the user's server,
    /// not the harness, could not run).
    pub(crate) fn is_external_down(&self) -> bool {
        matches!(
            self,
            RunError::Case {
                source: CaseError::Start { what, .. },
                ..
            } if *what == super::case::EXTERNAL_NOT_READY
        )
    }

    /// True for errors in what the user gave (exit 2), false for the harness
    /// not being able to run (exit 3).
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            RunError::Invalid(_)
                | RunError::UnknownCase { .. }
                | RunError::Remote { .. }
                | RunError::Unspecified { .. }
        ) || matches!(
            self,
            RunError::RunDir(
                RunDirError::Exists(_) | RunDirError::NotARun(_) | RunDirError::Foreign { .. }
            )
        )
    }
}

/// Validates the scenario and selects the cases (nothing starts).
pub(crate) fn prepare(opts: &RunOptions) -> Result<Scenario, RunError> {
    let mut sc = scenario::load(&opts.scenario).map_err(RunError::Invalid)?;
    if !opts.cases.is_empty() {
        for name in &opts.cases {
            if !sc.cases.iter().any(|c| &c.name == name) {
                return Err(RunError::UnknownCase {
                    name: name.clone(),
                    file: opts.scenario.display().to_string(),
                    known: sc
                        .cases
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        sc.cases.retain(|c| opts.cases.contains(&c.name));
    }
    if let Some(n) = opts.repeat {
        for c in &mut sc.cases {
            c.repeat = n;
        }
    }
    external_targets(&mut sc, opts.allow_remote)?;
    if let Some(m) = sc.missing_peer() {
        let install = m
            .install
            .clone()
            .unwrap_or_else(|| format!("scripts/install-peers {}", m.binary));
        return Err(RunError::MissingPeer {
            binary: m.binary,
            install,
        });
    }
    Ok(sc)
}

/// The external targets of the scenario's cases, each with the addresses it
/// resolves to (`remote` when outside loopback); an error when one resolves
/// outside loopback without `allow_remote`, to an unspecified address
/// (0.0.0.0, [::]), or does not resolve. Each host is resolved once per run:
/// the addresses are stored in the case's target, and the runner and the
/// load connect to them (a later call resolves nothing).
pub(crate) fn external_targets(
    sc: &mut Scenario,
    allow_remote: bool,
) -> Result<Vec<String>, RunError> {
    let mut out = Vec::new();
    let mut resolved: Vec<((String, u16), Vec<std::net::SocketAddr>)> = Vec::new();
    for case in &mut sc.cases {
        let ProxySpec::External(x) = &mut case.proxy else {
            continue;
        };
        let url = x.target.url.clone();
        if x.target.addrs.is_empty() {
            let key = (x.target.host.clone(), x.target.port);
            let addrs = match resolved.iter().find(|(k, _)| *k == key) {
                Some((_, a)) => a.clone(),
                None => {
                    let a = super::sut::external::resolve(&x.target).map_err(|source| {
                        RunError::Resolve {
                            url: url.clone(),
                            source,
                        }
                    })?;
                    resolved.push((key, a.clone()));
                    a
                }
            };
            x.target.addrs = addrs;
        }
        let addrs = &x.target.addrs;
        let shown = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if addrs.iter().any(|a| a.ip().is_unspecified()) {
            return Err(RunError::Unspecified { url, addrs: shown });
        }
        let local = super::sut::external::all_loopback(addrs);
        if !local && !allow_remote {
            let l = &case.load;
            let mut load = format!("{} concurrent clients", l.concurrency);
            if let Some(n) = l.requests {
                load.push_str(&format!(", {n} requests"));
            }
            if let Some(d) = l.duration {
                load.push_str(&format!(" for {}", humantime::format_duration(d)));
            }
            return Err(RunError::Remote {
                url,
                addrs: shown,
                load,
            });
        }
        let line = format!("{url} ({shown}){}", if local { "" } else { ", remote" });
        if !out.contains(&line) {
            out.push(line);
        }
    }
    Ok(out)
}

/// Runs a scenario; `cancel` interrupts it (finished cases are kept).
pub(crate) async fn run_scenario(
    opts: &RunOptions,
    cancel: &Cancel,
) -> Result<RunOutcome, RunError> {
    let mut sc = prepare(opts)?;
    // Resolved and checked by `prepare`: this only describes them.
    let external_lines = external_targets(&mut sc, opts.allow_remote)?;
    // Before any process: from here on, every process the run starts dies
    // with the harness, however it ends.
    watchdog::start()?;
    let proxies = sc.proxies();
    let mut programs = Programs {
        reloadbench: binaries::reloadbench_exe()?,
        refproxy: if proxies.iter().any(|p| matches!(p, ProxySpec::Reference(_))) {
            Some(binaries::refproxy()?)
        } else {
            None
        },
        tls: None,
    };
    if proxies.iter().any(|p| matches!(p, ProxySpec::Command(_))) {
        // Daemonizing servers must stay within reach of the harness.
        if let Err(e) = super::sut::command::adopt_orphans() {
            eprintln!(
                "warning: cannot become a child subreaper: {}",
                crate::cause::chain(&e)
            );
        }
    }
    let started = SystemTime::now();
    let dir = RunDir::create(opts.out.as_deref(), &sc.id, started, opts.force)?;
    dir.write_scenario(&sc.source)?;
    if sc.cases.iter().any(|c| c.load.tls.is_some()) {
        programs.tls = Some(super::pki::generate(&dir.path().join("tls"))?);
    }
    let pids = PidLog::create(&dir.pids_path()).map_err(|source| RunDirError::Io {
        path: dir.pids_path(),
        source,
    })?;
    cancel.watch_pids(pids.clone());

    let mut environment = crate::env::capture().await;
    environment.external_targets = external_lines;
    let mut seen_kinds: Vec<String> = Vec::new();
    for proxy in &proxies {
        let sut_version = match proxy {
            ProxySpec::Reference(_) => match &programs.refproxy {
                Some(p) => crate::env::version_of(&p.display().to_string(), &["--version"]).await,
                None => None,
            }
            .map(|v| ("refproxy".to_owned(), v)),
            ProxySpec::External(x) => version_command(x.version.as_ref())
                .await
                .map(|v| ("external".to_owned(), v)),
            ProxySpec::Command(c) if seen_kinds.contains(&c.binary) => None,
            ProxySpec::Command(c) => {
                seen_kinds.push(c.binary.clone());
                version_command(c.version.as_ref())
                    .await
                    .map(|v| (c.binary.clone(), v))
            }
        };
        if let Some((name, v)) = sut_version {
            environment.versions.insert(name, v);
        }
    }
    dir.write_environment(&environment)?;

    let mut report = RunReport {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: ScenarioInfo {
            name: sc.name.clone(),
            description: sc.description.clone(),
            file: opts.scenario.display().to_string(),
        },
        started_at: humantime::format_rfc3339_seconds(started).to_string(),
        environment,
        cases: Vec::new(),
        planned_cases: sc.cases.iter().map(|c| c.name.clone()).collect(),
        interrupted: None,
    };
    dir.write_results(&report)?;

    let progress = super::progress::enabled(opts.quiet);
    let repeats: Vec<u32> = sc.cases.iter().map(|c| c.repeat).collect();
    let slots = super::trials::schedule(&repeats);
    let total = slots.len();
    let mut status = RunStatus::Passed;
    let mut failure = None;
    // The case (and trial) a signal cut short, if one did.
    let mut cut: Option<(String, Option<u32>)> = None;
    for (k, slot) in slots.iter().enumerate() {
        let (i, case) = (slot.case, &sc.cases[slot.case]);
        if let Some(sig) = cancel.signal() {
            status = RunStatus::Interrupted(sig);
            break;
        }
        // A case that runs once keeps the report and directory layout of
        // a run without `repeat`.
        let trial = (case.repeat > 1).then_some(slot.trial);
        let mut label = format!("[{}/{total}] {}", k + 1, case.name);
        let mut case_dir = dir.case_dir(i, &case.slug());
        if let Some(t) = trial {
            label.push_str(&format!(" (trial {t}/{})", case.repeat));
            if t > 1 {
                case_dir = case_dir.join(format!("trial-{t}"));
            }
        }
        if !opts.quiet {
            eprintln!("{label}");
        }
        let input = CaseInput {
            scenario: &sc,
            case,
            label,
            dir: case_dir,
            pids: pids.clone(),
            programs: &programs,
            progress,
            cancel,
        };
        // An external server lives in the host's namespace.
        let external = matches!(case.proxy, ProxySpec::External(_));
        let out = if super::os::netns::wanted(!opts.no_netns && !external) {
            super::os::netns::run_case(input).await
        } else {
            run_case(input).await
        };
        match out {
            Ok(mut out) => {
                out.report.trial = trial;
                if !opts.quiet {
                    eprintln!("{}", case_line(&out.report));
                }
                report.cases.push(out.report);
                dir.write_results(&report)?;
                if let Some(sig) = out.cancelled {
                    status = RunStatus::Interrupted(sig);
                    cut = Some((case.name.clone(), trial));
                    break;
                }
            }
            Err(e) => {
                if let Some(sig) = cancel.signal() {
                    status = RunStatus::Interrupted(sig);
                    cut = Some((case.name.clone(), trial));
                } else {
                    failure = Some(e);
                }
                break;
            }
        }
    }
    if let RunStatus::Interrupted(sig) = status {
        let (case, trial) = cut.map_or((None, None), |(c, t)| (Some(c), t));
        report.interrupted = Some(Interruption {
            signal: sig.as_str().to_owned(),
            case,
            trial,
        });
        dir.write_results(&report)?;
    }
    let rendered = dir.render(&report);
    if let Some(source) = failure {
        return Err(RunError::Case {
            source,
            dir: dir.path().to_owned(),
        });
    }
    if let Err(source) = rendered {
        return Err(RunError::Reports {
            source,
            dir: dir.path().to_owned(),
        });
    }
    if status == RunStatus::Passed && !report.passed() {
        status = RunStatus::Failed;
    }
    Ok(RunOutcome {
        dir: dir.path().to_owned(),
        report,
        status,
    })
}

/// One line per finished case on stderr.
/// What a server's `version` command prints (`None` without one, or when it cannot
/// be rendered or run).
async fn version_command(version: Option<&scenario::Template>) -> Option<String> {
    let argv = version?.render_argv(&scenario::Vars::new()).ok()?;
    let (program, rest) = argv.split_first()?;
    let args: Vec<&str> = rest.iter().map(String::as_str).collect();
    crate::env::version_of(program, &args).await
}

fn case_line(c: &reloadbench_model::run::CaseReport) -> String {
    let verdict = if c.passed() { "pass" } else { "FAIL" };
    let failed_expect: Vec<&str> = c
        .expectations
        .iter()
        .filter(|e| !e.passed)
        .map(|e| e.expr.as_str())
        .collect();
    let mut line = format!(
        "      {verdict}: {} ok, {} failed, {}, {:.1}s",
        c.load.ok,
        c.load.failed,
        count(c.actions.len() as u64, "action"),
        c.load.elapsed_ns as f64 / 1e9
    );
    if !failed_expect.is_empty() {
        line.push_str(&format!(
            " (expectation not met: {})",
            failed_expect.join(", ")
        ));
    }
    if let Some(e) = &c.error {
        line.push_str(&format!(" ({e})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_case_line_counts_actions_in_english() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../reports/tests/fixtures/results.json"
        );
        let run = reloadbench_reports::read_results(std::path::Path::new(fixture)).unwrap();
        let mut case = run.cases[1].clone();
        assert!(
            case_line(&case).contains(", 2 actions, "),
            "{}",
            case_line(&case)
        );
        case.actions.truncate(1);
        assert!(
            case_line(&case).contains(", 1 action, "),
            "{}",
            case_line(&case)
        );
    }

    fn opts(text: &str, cases: &[&str]) -> (tempfile::TempDir, RunOptions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        let o = RunOptions {
            scenario: path,
            cases: cases.iter().map(|c| (*c).to_owned()).collect(),
            ..RunOptions::default()
        };
        (dir, o)
    }

    const TWO: &str = "[load]\nconcurrency = 1\nrequests = 10\n[proxy]\nkind = \"reference\"\n\
                       [[case]]\nname = \"a\"\n[[case]]\nname = \"b\"\n";

    #[test]
    fn case_filter_keeps_the_named_cases_and_rejects_unknown_ones() {
        let (_d, o) = opts(TWO, &["b"]);
        let sc = prepare(&o).unwrap();
        assert_eq!(sc.cases.len(), 1);
        assert_eq!(sc.cases[0].name, "b");
        let (_d, o) = opts(TWO, &["c"]);
        let e = prepare(&o).unwrap_err();
        assert!(e.is_usage());
        assert!(e.to_string().contains("cases: a, b"), "{e}");
    }

    #[test]
    fn repeat_on_the_command_line_overrides_every_case() {
        let text = "repeat = 2\n[load]\nconcurrency = 1\nrequests = 10\n\
                    [[case]]\nname = \"a\"\n[[case]]\nname = \"b\"\nrepeat = 5\n";
        let (_d, o) = opts(text, &[]);
        let sc = prepare(&o).unwrap();
        assert_eq!(
            sc.cases.iter().map(|c| c.repeat).collect::<Vec<_>>(),
            [2, 5]
        );
        let o = RunOptions {
            repeat: Some(3),
            ..o
        };
        let sc = prepare(&o).unwrap();
        assert_eq!(
            sc.cases.iter().map(|c| c.repeat).collect::<Vec<_>>(),
            [3, 3]
        );
    }

    #[test]
    fn missing_peer_is_a_harness_error_naming_the_installer() {
        let text = "[load]\nconcurrency = 1\nrequests = 10\n[proxy]\nkind = \"command\"\n\
                    binary = \"reloadbench-no-such-peer\"\nstart = \"x {config}\"\n\
                    [[case]]\nname = \"a\"\n";
        let (_d, o) = opts(text, &[]);
        let e = prepare(&o).unwrap_err();
        assert!(!e.is_usage());
        assert!(
            e.to_string()
                .contains("scripts/install-peers reloadbench-no-such-peer"),
            "{e}"
        );
    }

    fn external(target: &str) -> (tempfile::TempDir, RunOptions) {
        opts(
            &format!(
                "[load]\nconcurrency = 3\nrequests = 10\n[proxy]\nkind = \"external\"\n\
                 target = \"{target}\"\n[[case]]\nname = \"a\"\n"
            ),
            &[],
        )
    }

    #[test]
    fn a_remote_external_target_is_refused_unless_allowed_and_then_recorded() {
        // TEST-NET-1: an address literal, nothing is resolved or contacted.
        let (_d, o) = external("http://192.0.2.1:8080/");
        let e = prepare(&o).unwrap_err();
        assert!(e.is_usage(), "{e}");
        let msg = e.to_string();
        for want in [
            "192.0.2.1:8080",
            "load test",
            "3 concurrent clients, 10 requests",
            "--allow-remote",
        ] {
            assert!(msg.contains(want), "{want}: {msg}");
        }
        let o = RunOptions {
            allow_remote: true,
            ..o
        };
        let mut sc = prepare(&o).unwrap();
        assert_eq!(
            external_targets(&mut sc, true).unwrap(),
            ["http://192.0.2.1:8080/ (192.0.2.1:8080), remote"]
        );
        let (_d, o) = external("http://[::1]:9/x");
        let mut sc = prepare(&o).unwrap();
        assert_eq!(
            external_targets(&mut sc, false).unwrap(),
            ["http://[::1]:9/x ([::1]:9)"]
        );
    }

    fn target_addrs(sc: &Scenario) -> Vec<std::net::SocketAddr> {
        match &sc.cases[0].proxy {
            ProxySpec::External(x) => x.target.addrs.clone(),
            _ => panic!("not external"),
        }
    }

    #[test]
    fn an_external_target_is_resolved_once_and_its_checked_address_kept() {
        let (_d, o) = external("http://localhost:9/");
        let mut sc = prepare(&o).unwrap();
        let checked = target_addrs(&sc);
        assert!(!checked.is_empty());
        assert!(super::super::sut::external::all_loopback(&checked));
        // A later call (the environment's) resolves nothing: what it
        // reports is what was checked, even if the name would now resolve
        // elsewhere (stood in for by changing the stored address).
        let moved: std::net::SocketAddr = "127.0.0.2:9".parse().unwrap();
        if let ProxySpec::External(x) = &mut sc.cases[0].proxy {
            x.target.addrs = vec![moved];
        }
        assert_eq!(
            external_targets(&mut sc, false).unwrap(),
            ["http://localhost:9/ (127.0.0.2:9)"]
        );
        assert_eq!(target_addrs(&sc), [moved]);
        // The load goes to the checked address; the name stays in the URL
        // (the Host header and TLS server name).
        let ProxySpec::External(x) = &sc.cases[0].proxy else {
            panic!("not external")
        };
        let c = sc.cases[0].load.external_loadgen_config(x, moved).unwrap();
        assert_eq!(c.connect_to, Some(moved));
        assert!(c.url.starts_with("http://localhost:9/"), "{}", c.url);
    }

    #[test]
    fn mapped_loopback_is_local_and_unspecified_addresses_are_refused_as_such() {
        let (_d, o) = external("http://[::ffff:127.0.0.1]:9/");
        let mut sc = prepare(&o).unwrap();
        assert_eq!(
            external_targets(&mut sc, false).unwrap(),
            ["http://[::ffff:127.0.0.1]:9/ ([::ffff:127.0.0.1]:9)"]
        );
        for t in ["http://0.0.0.0:9/", "http://[::]:9/"] {
            let (_d, o) = external(t);
            for allow_remote in [false, true] {
                let o = RunOptions {
                    allow_remote,
                    ..o.clone()
                };
                let e = prepare(&o).unwrap_err();
                assert!(matches!(e, RunError::Unspecified { .. }), "{t}: {e}");
                assert!(e.is_usage());
                let msg = e.to_string();
                assert!(msg.contains("unspecified address"), "{msg}");
                assert!(!msg.contains("not loopback"), "{msg}");
            }
        }
    }
}
