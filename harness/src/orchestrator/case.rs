//! One case, start to end: origin, system under test, load, timeline,
//! stop, CPU, attribution, expectations, and the case's raw files.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::sys::signal::Signal;
use reloadbench_loadgen::LoadOutcome;
use reloadbench_model::run::{CaseReport, CpuUsage};

use crate::expect;
use crate::scenario::{Case, OriginSpec, ProxySpec, Scenario};

use super::attribution::attribute;
use super::before_act::Watched;
use super::events::{EventLog, EventsError};
use super::ledger;
use super::measure::casewatch::CaseWatch;
use super::measure::cpu::{CpuMark, proc_cpu_s};
use super::measure::evidence::{self, sampler::Sampler};
use super::os::cancel::Cancel;
use super::os::process::{PidLog, ProcessContext, ProcessGuard, ProcessSpec};
use super::progress;
use super::sut::command::{CommandRunner, start_command_origin};
use super::sut::external::ExternalRunner;
use super::sut::readiness::wait_ready_event;
use super::sut::reference::ReferenceRunner;
use super::sut::runner::CaseEnv;
use super::sut::runner::{Runner, RunnerError};
use super::timeline::{Ended, action_reports, drive};

/// How long the origin may take to print its ready line.
const ORIGIN_READY: Duration = Duration::from_secs(20);
/// How long the origin may take to exit after SIGTERM.
const ORIGIN_STOP: Duration = Duration::from_secs(10);
/// The built-in origin's counts, written when it stops (see [`ledger`]).
const ORIGIN_LEDGER: &str = "origin-ledger.json";

/// What [`CaseError::Start`] names when a server reloadbench did not start
/// is not ready for a case: the user's server, not the harness (exit 1).
pub(crate) const EXTERNAL_NOT_READY: &str = "the external server is not ready";

/// Why a case could not run (the run stops; finished cases are kept).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaseError {
    /// The case directory could not be prepared or written.
    #[error("case {case}: cannot write {path}: {source}")]
    Io {
        /// Case name.
        case: String,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The events file could not be created.
    #[error("case {case}: cannot write {}: {source}", path.display())]
    Events {
        /// Case name.
        case: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: EventsError,
    },
    /// The latency log could not be written.
    #[error("case {case}: cannot write {}: {source}", path.display())]
    Hlog {
        /// Case name.
        case: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: reloadbench_loadgen::output::OutputError,
    },
    /// A process of the case could not be started or did not become ready.
    #[error("case {case}: {what}: {source}")]
    Start {
        /// Case name.
        case: String,
        /// What was being started.
        what: &'static str,
        /// Why it failed.
        source: Box<StartError>,
    },
}

/// Why a part of a case (origin, system under test, load, its thread)
/// could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// Ctrl-C or SIGTERM arrived while it started.
    #[error("interrupted by {0}")]
    Interrupted(Signal),
    /// Cancelled while the load's last requests ran.
    #[error("interrupted")]
    Cancelled,
    /// The system under test (or a command origin) did not start.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The load could not be configured, started or finished.
    #[error(transparent)]
    Load(#[from] reloadbench_loadgen::LoadError),
    /// The origin could not be spawned.
    #[error(transparent)]
    Process(#[from] crate::orchestrator::os::process::ProcessError),
    /// The origin did not become ready.
    #[error("{source}; stderr in {}", stderr.display())]
    NotReady {
        /// Why.
        source: crate::orchestrator::sut::readiness::ReadinessError,
        /// The origin's stderr log.
        stderr: PathBuf,
    },
    /// A program the case needs is not installed.
    #[error("{0} was not found")]
    NotFound(&'static str),
    /// The case's network namespace could not be set up.
    #[error(transparent)]
    Netns(#[from] crate::orchestrator::os::netns::NetnsError),
    /// The case's thread or runtime could not be started.
    #[error(transparent)]
    Io(std::io::Error),
    /// The case's thread ended without a result.
    #[error("the case's thread ended without a result (panicked)")]
    Panicked,
}

/// Programs a case runs.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// The reloadbench executable (for `reloadbench origin`).
    pub reloadbench: PathBuf,
    /// `refproxy`, when the scenario uses the reference proxy.
    pub refproxy: Option<PathBuf>,
    /// The run's certificates, when a case's load speaks TLS.
    pub tls: Option<super::pki::TlsFiles>,
}

/// Everything a case needs from the run.
#[derive(Debug, Clone)]
pub(crate) struct CaseInput<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The case.
    pub case: &'a Case,
    /// Label for progress, e.g. `[2/4] restart`.
    pub label: String,
    /// The case directory (created here).
    pub dir: PathBuf,
    /// The run's pid list.
    pub pids: PidLog,
    /// Programs to run.
    pub programs: &'a Programs,
    /// Show progress on the terminal.
    pub progress: bool,
    /// Cancellation (SIGINT / SIGTERM).
    pub cancel: &'a Cancel,
}

/// What a case produced.
#[derive(Debug)]
pub(crate) struct CaseOutput {
    /// The report (with `error` set if the case was interrupted).
    pub report: CaseReport,
    /// The signal that interrupted the case, if one did.
    pub cancelled: Option<Signal>,
}

/// Runs one case.
pub(crate) async fn run_case(input: CaseInput<'_>) -> Result<CaseOutput, CaseError> {
    let case_name = input.case.name.clone();
    let io = |path: &Path| {
        let case = case_name.clone();
        let path = path.to_owned();
        move |source| CaseError::Io { case, path, source }
    };
    let log_dir = input.dir.join("logs");
    std::fs::create_dir_all(&log_dir).map_err(io(&log_dir))?;
    let dir = std::fs::canonicalize(&input.dir).map_err(io(&input.dir))?;
    let events_path = dir.join("events.jsonl");
    let (sink, mut log) =
        EventLog::create(Some(&events_path)).map_err(|source| CaseError::Events {
            case: case_name.clone(),
            path: events_path.clone(),
            source,
        })?;
    let ctx = ProcessContext {
        sink,
        log_dir: dir.join("logs"),
        pids: input.pids.clone(),
    };
    let start_err = |what: &'static str| {
        let case = case_name.clone();
        move |source: StartError| CaseError::Start {
            case,
            what,
            source: Box::new(source),
        }
    };

    let cpu = CpuMark::now();
    let origin = start_origin(&input, &dir, &ctx, &mut log)
        .await
        .map_err(start_err("origin"))?;
    let (mut origin, origin_addr) = match origin {
        Some((p, a)) => (Some(p), a),
        // No origin: `{origin}` names nothing that listens.
        None => (None, std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
    };
    let origin_pid = origin.as_ref().map(ProcessGuard::pid);
    let env = CaseEnv {
        dir: dir.clone(),
        origin: origin_addr,
        ctx: ctx.clone(),
        scenario_dir: std::fs::canonicalize(&input.scenario.dir)
            .unwrap_or_else(|_| input.scenario.dir.clone()),
        tls: input.case.load.tls.as_ref().and(input.programs.tls.clone()),
        http2: input.case.load.http2.is_some(),
    };
    let out = match &input.case.proxy {
        ProxySpec::Reference(cfg) => {
            let bin = input
                .programs
                .refproxy
                .clone()
                .ok_or_else(|| CaseError::Start {
                    case: case_name.clone(),
                    what: "refproxy",
                    source: Box::new(StartError::NotFound("refproxy")),
                })?;
            let runner = ReferenceRunner::new(bin, cfg.clone(), input.case.master, env);
            drive_case(&input, runner, &mut log, origin_pid).await
        }
        ProxySpec::Command(cfg) => {
            let runner = CommandRunner::new((**cfg).clone(), env);
            drive_case(&input, runner, &mut log, origin_pid).await
        }
        ProxySpec::External(cfg) => {
            let runner = ExternalRunner::new((**cfg).clone(), env);
            drive_case(&input, runner, &mut log, origin_pid).await
        }
    };
    // The origin goes last: the proxy may still be draining towards it.
    let origin_lost = origin.as_mut().and_then(|origin| {
        origin.try_reap().map(|st| {
            format!(
                "the origin (pid {}) exited during the case ({st}); stderr in {}",
                origin.pid(),
                origin.stderr_path().display()
            )
        })
    });
    // The proxy's processes are all reaped by now: the children's CPU so far
    // is theirs; what reaping the origin adds is the origin's.
    let origin_sample = origin_pid.and_then(proc_cpu_s);
    let children_before = cpu.children_delta();
    let mut origin_status = None;
    if let Some(origin) = origin.as_mut() {
        let _ = origin.stop(Signal::SIGTERM, ORIGIN_STOP).await;
        origin.join_readers(Duration::from_secs(2)).await;
        origin_status = origin.status();
    }
    let origin_cpu = match (origin_lost.is_some(), origin_status) {
        (false, Some(_)) => cpu.children_delta() - children_before,
        _ => origin_sample.unwrap_or(0.0),
    };
    let (mut report, outcome, cancelled) = out?;
    log.pump();
    let origin_counts = match (&input.scenario.origin, &origin_lost) {
        (OriginSpec::None, _) => Err(ledger::OriginUnavailable::NoOrigin),
        (OriginSpec::Command(_), _) => Err(ledger::OriginUnavailable::CommandOrigin),
        (_, Some(_)) => Err(ledger::OriginUnavailable::Died),
        _ => ledger::read_origin(&dir.join(ORIGIN_LEDGER)),
    };
    let proxy_counts = matches!(input.case.proxy, ProxySpec::Reference(_))
        .then(|| ledger::proxy_side(log.seen(), origin_pid.unwrap_or(0)));
    let sides = ledger::Sides {
        ids: true,
        origin: origin_counts,
        proxy: proxy_counts,
    };
    report.old_generations_max = super::generations::old_generations_max(log.seen());
    // The proxy's own events when it reports them; the process tree
    // (sampled with the evidence) for any other server.
    if let Some(s) = super::generations::events_series(log.seen(), report.load.started_mono_ns) {
        report.generations = Some(s);
    } else if let Some(s) = &report.generations {
        report.old_generations_max = Some(s.old_generations_max);
    }
    // The ledger balances requests the origin counts: a WebSocket load
    // makes none, and the origin does not count its streamed responses.
    if input.case.load.kind == crate::scenario::LoadKind::Requests {
        report.ledger = Some(ledger::reconcile(&report.load, sides, &mut report.actions));
    }
    if report.error.is_none() {
        // An origin that died was reaped early: its share is in `proxy_s`.
        report.error = origin_lost;
    }
    report.cpu = CpuUsage {
        loadgen_s: cpu.self_delta(),
        proxy_s: children_before,
        origin_s: origin_cpu.max(0.0),
    };
    report.diagnosis = reloadbench_reports::diagnose(&report);
    report.expectations = expect::evaluate(&input.case.expect, &report);
    write_case_files(&dir, &outcome, &case_name)?;
    Ok(CaseOutput { report, cancelled })
}

type Driven = (CaseReport, LoadOutcome, Option<Signal>);

/// Starts the system under test, runs the load and the timeline, stops.
async fn drive_case<R: Runner>(
    input: &CaseInput<'_>,
    mut runner: R,
    log: &mut EventLog,
    origin_pid: Option<u32>,
) -> Result<Driven, CaseError> {
    let fail = |what: &'static str, source: StartError| CaseError::Start {
        case: input.case.name.clone(),
        what,
        source: Box::new(source),
    };
    // A start that hangs until its readiness deadline must not hold up a
    // cancellation (what it spawned is killed by the runner's stop).
    let started = tokio::select! {
        biased;
        s = input.cancel.cancelled() => Err(StartError::Interrupted(s)),
        r = runner.start(log) => r.map_err(StartError::from),
    };
    let addr = match started {
        Ok(a) => a,
        Err(e) => {
            let _ = runner.stop(log).await;
            let what = match (&input.case.proxy, &e) {
                (ProxySpec::External(_), StartError::Runner(RunnerError::Readiness(_))) => {
                    EXTERNAL_NOT_READY
                }
                _ => "system under test",
            };
            return Err(fail(what, e));
        }
    };
    let watch = CaseWatch::start();
    let ca = input
        .case
        .load
        .tls
        .as_ref()
        .and(input.programs.tls.as_ref());
    let config = match &input.case.proxy {
        ProxySpec::External(x) => input.case.load.external_loadgen_config(x, addr),
        _ => input
            .case
            .load
            .loadgen_config(addr, ca.map(|t| t.ca.as_path())),
    };
    let load = match config.and_then(reloadbench_loadgen::start) {
        Ok(l) => l,
        Err(e) => {
            let _ = runner.stop(log).await;
            return Err(fail("load", e.into()));
        }
    };
    let sampler = if matches!(input.case.proxy, ProxySpec::External(_)) {
        evidence::start_external_sampler(addr, &input.case.actions, load.started_mono_ns())
    } else {
        evidence::start_sampler(
            addr,
            &input.case.actions,
            load.started_mono_ns(),
            input.pids.clone(),
            origin_pid.into_iter().collect(),
        )
    };
    let mut observed = Watched {
        inner: &mut runner,
        counters: &watch,
        sampler: sampler.as_ref(),
    };
    let fired_count = AtomicU32::new(0);
    let timeline = drive(
        &input.case.actions,
        &load,
        &mut observed,
        log,
        input.cancel,
        &fired_count,
    );
    let (fired, ended) = if input.progress {
        tokio::select! {
            r = timeline => r,
            never = progress::show(&input.label, &load, input.case.load.requests, &fired_count) => {
                match never {}
            }
        }
    } else {
        timeline.await
    };
    if ended == Ended::Cancelled {
        load.stop();
    }
    let started = load.started_mono_ns();
    let finished = tokio::select! {
        r = load.finish_with_histograms() => Some(r),
        _ = input.cancel.cancelled(), if ended != Ended::Cancelled => None,
    };
    let watched = watch.stop(started);
    if input.progress {
        progress::clear();
    }
    // Stopped with the load, before the runner's own stop (what that does is
    // not an action's doing).
    let recording = sampler.map(Sampler::finish);
    let lost = runner.lost();
    let stopped = runner.stop(log).await;
    let outcome = match finished {
        Some(Ok(o)) => o,
        Some(Err(e)) => return Err(fail("load", e.into())),
        None => {
            // Cancelled while the last requests ran: the load was dropped
            // (which stops it); nothing of this case can be kept.
            return Err(fail("load", StartError::Cancelled));
        }
    };
    if let Err(e) = stopped {
        eprintln!(
            "warning: case {}: stopping the proxy: {}",
            input.case.name,
            crate::cause::chain(&e)
        );
    }
    log.pump();
    let mut actions = action_reports(&fired, log, &runner, started);
    attribute(&outcome.report, &mut actions);
    let (kernel, machine) = watched.report(started, &mut actions);
    // What the kernel saw decides whether an external reload was done, unless the
    // server reloads in its own processes.
    let judged = matches!(&input.case.proxy, ProxySpec::External(x) if !x.reloads_in_place);
    let generations = recording
        .as_ref()
        .and_then(|r| evidence::generations::series(r, started));
    let evidence = recording.map(|r| {
        if judged {
            evidence::external::unchanged_reloads(&r, &mut actions);
        }
        evidence::apply(&r, &mut actions, started)
    });
    let cancelled = (ended == Ended::Cancelled)
        .then(|| input.cancel.signal())
        .flatten();
    let report = CaseReport {
        name: input.case.name.clone(),
        description: input.case.description.clone(),
        load: outcome.report.clone(),
        actions,
        expectations: Vec::new(),
        cpu: CpuUsage::default(),
        ledger: None,
        diagnosis: Vec::new(),
        evidence,
        error: cancelled
            .map(|s| format!("interrupted by {s}"))
            .or(lost.map(|l| format!("the system under test died: {l}"))),
        trial: None,
        kernel,
        machine,
        old_generations_max: None,
        generations,
    };
    Ok((report, outcome, cancelled))
}

/// Starts the scenario's origin, if it has one, and waits until it is ready.
async fn start_origin(
    input: &CaseInput<'_>,
    dir: &Path,
    ctx: &ProcessContext,
    log: &mut EventLog,
) -> Result<Option<(ProcessGuard, std::net::SocketAddr)>, StartError> {
    let scenario = input.scenario;
    match &scenario.origin {
        OriginSpec::None => Ok(None),
        OriginSpec::BuiltIn { body_bytes, delay } => {
            let mut spec = ProcessSpec::new("origin", &input.programs.reloadbench)
                .arg("origin")
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--body-bytes")
                .arg(body_bytes.to_string())
                .arg("--ledger")
                .arg(dir.join(ORIGIN_LEDGER).to_string_lossy().into_owned());
            if !delay.is_zero() {
                spec = spec
                    .arg("--delay")
                    .arg(humantime::format_duration(*delay).to_string());
            }
            spec.cwd = Some(dir.to_owned());
            let from = log.cursor();
            let mut p = ProcessGuard::spawn(&spec, ctx)?;
            match wait_ready_event(log, from, "origin", p.pid(), ORIGIN_READY).await {
                Ok(r) => Ok(Some((p, r.addr))),
                Err(e) => {
                    let _ = p.stop(Signal::SIGKILL, ORIGIN_STOP).await;
                    Err(StartError::NotReady {
                        source: e,
                        stderr: p.stderr_path().to_owned(),
                    })
                }
            }
        }
        OriginSpec::Command(o) => Ok(Some(
            start_command_origin(o, scenario, dir, ctx, log).await?,
        )),
    }
}

/// Writes `loadgen.json` and `latency.hlog`.
fn write_case_files(dir: &Path, outcome: &LoadOutcome, case: &str) -> Result<(), CaseError> {
    let io = |path: &Path| {
        let (case, path) = (case.to_owned(), path.to_owned());
        move |source| CaseError::Io { case, path, source }
    };
    let json_path = dir.join("loadgen.json");
    let layout = reloadbench_model::json_layout::Layout::LOAD;
    let json = reloadbench_model::json_layout::to_vec(&outcome.report, layout)
        .map_err(|e| io(&json_path)(std::io::Error::other(e)))?;
    std::fs::write(&json_path, json).map_err(io(&json_path))?;
    let hlog_path = dir.join("latency.hlog");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&hlog_path).map_err(io(&hlog_path))?);
    reloadbench_loadgen::output::write_hdr_log(outcome, &mut f).map_err(|source| {
        CaseError::Hlog {
            case: case.to_owned(),
            path: hlog_path.clone(),
            source,
        }
    })?;
    std::io::Write::flush(&mut f).map_err(io(&hlog_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    /// Every cause in `e`'s chain, outermost first.
    fn causes(e: &(dyn Error + 'static)) -> Vec<String> {
        std::iter::successors(Some(e), |e| (*e).source())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_start_failure_keeps_its_causes_and_prints_them_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e = CaseError::Start {
            case: "restart".into(),
            what: "system under test",
            source: Box::new(StartError::Runner(RunnerError::Port(io))),
        };
        // The io error is still there, typed, at the end of the chain.
        let root = std::iter::successors(Some(&e as &(dyn Error + 'static)), |e| (*e).source())
            .last()
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        assert_eq!(root, Some(std::io::ErrorKind::AddrInUse));
        assert_eq!(
            causes(&e).last().map(String::as_str),
            Some("address in use")
        );
        // Printed with every cause, each once: the same text as the message.
        let printed = crate::cause::chain(&e);
        assert_eq!(
            printed,
            "case restart: system under test: cannot reserve a port: address in use"
        );
        assert_eq!(printed, e.to_string());
    }

    #[test]
    fn an_origin_that_is_not_ready_names_its_stderr_and_keeps_the_cause() {
        let e = StartError::NotReady {
            source: crate::orchestrator::sut::readiness::ReadinessError::Timeout {
                what: "origin ready".into(),
                timeout: Duration::from_secs(5),
            },
            stderr: PathBuf::from("/run/logs/origin-1.stderr.log"),
        };
        assert!(e.source().is_some());
        assert_eq!(
            crate::cause::chain(&e),
            "origin ready not seen within 5s; stderr in /run/logs/origin-1.stderr.log"
        );
    }
}
