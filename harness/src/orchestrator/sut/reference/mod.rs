//! [`ReferenceRunner`]: drives `refproxy` through restarts and reloads in
//! each mode, following its command-line contract.
//!
//! - start: `refproxy --config F [--master]`, listening on port 0 first; the
//!   bound address from the `ready` event is written back into the config so
//!   later generations use the same port.
//! - restart: SIGTERM to the old process group, wait for its exit, start anew.
//! - naive / fd-pass: spawn `refproxy --config F --upgrade-from SOCK --mode M`
//!   and wait for its `ready`, then for the old process's `reload_done` (the
//!   control socket handed over, so the next upgrade finds the new owner);
//!   the old process drains and exits by itself (its output keeps being
//!   read; it is reaped when the case ends).
//! - master-worker: SIGUSR2 to the master, wait for `reload_done` or
//!   `reload_failed` on its stdout.

mod config;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::event::{Event, EventKind, ReloadMode};

use crate::scenario::{ActionSpec, PidTarget, ReferenceProxy, ReloadSpec, TicketKeysFile, Vars};

use super::readiness::wait_ready_event;
use super::runner::{ActOutcome, CaseEnv, Runner, RunnerError};
use crate::cause::chain;
use crate::orchestrator::events::EventLog;
use crate::orchestrator::os::host::{Sysctls, exec_action};
use crate::orchestrator::os::process::{ProcessGuard, ProcessSpec};

/// Slack added to every deadline derived from the proxy's own timeouts.
const SLACK: Duration = Duration::from_secs(5);

/// Drives the reference proxy.
#[derive(Debug)]
pub(crate) struct ReferenceRunner {
    bin: PathBuf,
    cfg: ReferenceProxy,
    master: bool,
    env: CaseEnv,
    config_path: PathBuf,
    control_socket: PathBuf,
    listen: Option<SocketAddr>,
    current: Option<ProcessGuard>,
    /// Pid that serves: the worker's in master-worker mode.
    serving_pid: Option<u32>,
    previous_pid: Option<u32>,
    generation: u64,
    retiring: Vec<ProcessGuard>,
    exits: HashMap<u32, u64>,
    sysctls: Sysctls,
}

impl ReferenceRunner {
    /// A runner for `refproxy` at `bin`; `master` starts it with `--master`.
    pub(crate) fn new(
        bin: PathBuf,
        cfg: ReferenceProxy,
        master: bool,
        env: CaseEnv,
    ) -> ReferenceRunner {
        let config_path = env.dir.join("proxy.toml");
        let mut control_socket = env.dir.join("refproxy.sock");
        // sun_path holds 108 bytes; long run directories get a socket in /tmp.
        if control_socket.as_os_str().len() > 100 {
            control_socket = std::env::temp_dir().join(format!(
                "reloadbench-{}-{}.sock",
                std::process::id(),
                monotonic_ns()
            ));
        }
        ReferenceRunner {
            bin,
            cfg,
            master,
            env,
            config_path,
            control_socket,
            listen: None,
            current: None,
            serving_pid: None,
            previous_pid: None,
            generation: 0,
            retiring: Vec::new(),
            exits: HashMap::new(),
            sysctls: Sysctls::default(),
        }
    }

    fn ready_timeout(&self) -> Duration {
        self.cfg.ready_timeout * 2 + SLACK
    }

    fn drain_timeout(&self) -> Duration {
        self.cfg.drain_deadline + SLACK
    }

    /// Writes `proxy.toml` listening on `listen`.
    fn write_config(&self, listen: &str) -> Result<(), RunnerError> {
        let keys_file = match &self.cfg.ticket_keys_file {
            _ if self.env.tls.is_none() => None,
            None => None,
            Some(TicketKeysFile::Path(p)) => Some(p.clone()),
            Some(TicketKeysFile::Generated) => {
                // One file for the whole case: every generation reads the same keys.
                let path = self.env.dir.join("ticket.key");
                if !path.exists() {
                    crate::orchestrator::pki::write_ticket_keys(&path).map_err(|source| {
                        RunnerError::Write {
                            path: path.clone(),
                            source,
                        }
                    })?;
                }
                Some(path)
            }
        };
        let tls = self.env.tls.as_ref().map(|t| config::ProxyTls {
            cert: &t.cert,
            key: &t.key,
            share_ticket_keys: self.cfg.share_ticket_keys,
            ticket_keys_file: keys_file.as_deref(),
        });
        config::write(
            &self.config_path,
            &self.cfg,
            listen,
            self.env.origin,
            &self.control_socket,
            tls,
            self.env.http2,
        )
    }

    fn spec(&self, extra: &[&str]) -> ProcessSpec {
        let mut s = ProcessSpec::new("refproxy", &self.bin)
            .arg("--config")
            .arg(&self.config_path);
        for a in extra {
            s = s.arg(*a);
        }
        s.cwd = Some(self.env.dir.clone());
        s
    }

    /// Spawns a fresh (non-upgrade) proxy and waits for its ready event.
    async fn spawn_fresh(&mut self, log: &mut EventLog) -> Result<u64, RunnerError> {
        let spec = if self.master {
            self.spec(&["--master"])
        } else {
            self.spec(&[])
        };
        let from = log.cursor();
        let mut p = ProcessGuard::spawn(&spec, &self.env.ctx)?;
        match wait_ready_event(log, from, "refproxy", p.pid(), self.ready_timeout()).await {
            Ok(r) => {
                self.listen.get_or_insert(r.addr);
                self.serving_pid = Some(r.pid);
                self.generation = r.generation;
                self.current = Some(p);
                Ok(r.mono_ns)
            }
            Err(e) => {
                let _ = p.stop(Signal::SIGKILL, SLACK).await;
                p.join_readers(Duration::from_secs(1)).await;
                Err(with_log(e.into(), &p))
            }
        }
    }

    async fn restart(&mut self, log: &mut EventLog, kill: bool) -> ActOutcome {
        let mut out = ActOutcome::triggered_now();
        if let Some(mut old) = self.current.take() {
            out.old_pids.extend(self.serving_pid);
            out.old_pids.push(old.pid());
            out.old_pids.dedup();
            self.previous_pid = Some(old.pid());
            let sig = if kill {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            };
            let res = old.stop(sig, self.drain_timeout()).await;
            out.exited_mono_ns = old.exit_mono_ns();
            self.retire(old);
            if let Err(e) = res {
                return out.fail_by(&e);
            }
        }
        if kill {
            return out;
        }
        match self.spawn_fresh(log).await {
            Ok(ready) => {
                out.ready_mono_ns = Some(ready);
                out.new_pid = self.serving_pid;
                out
            }
            Err(e) => out.fail(format!("the new process did not start: {}", chain(&e))),
        }
    }

    async fn upgrade(&mut self, mode: ReloadMode, log: &mut EventLog) -> ActOutcome {
        let spec = self.spec(&[
            "--upgrade-from",
            &self.control_socket.display().to_string(),
            "--mode",
            mode.as_str(),
        ]);
        let from = log.cursor();
        let out = ActOutcome::triggered_now();
        let mut p = match ProcessGuard::spawn(&spec, &self.env.ctx) {
            Ok(p) => p,
            Err(e) => return out.fail_by(&e),
        };
        match wait_ready_event(log, from, "refproxy", p.pid(), self.ready_timeout()).await {
            Ok(r) => {
                let mut out = out;
                out.ready_mono_ns = Some(r.mono_ns);
                out.new_pid = Some(r.pid);
                out.old_pids.extend(self.serving_pid);
                // The reload is over when the old process has handed its control socket
                // over too (`reload_done`): an upgrade started before that would talk to a
                // process on its way out. The old process may also give the new one up
                // (`reload_failed`: it died or hung before the takeover) and serve on.
                let handover = match self.current.as_ref().map(ProcessGuard::pid) {
                    Some(old) => handed_over(log, from, old, self.ready_timeout()).await,
                    None => Handover::Done,
                };
                if let Handover::GaveUp(reason) = handover {
                    self.retire(p);
                    return out.fail(format!("the old process kept serving: {reason}"));
                }
                if let Some(old) = self.current.replace(p) {
                    self.previous_pid = Some(old.pid());
                    self.retire(old);
                }
                self.serving_pid = Some(r.pid);
                self.generation = r.generation;
                if let Handover::TimedOut(old) = handover {
                    return out.fail(format!(
                        "the old process (pid {old}) did not report reload_done within {:?}",
                        self.ready_timeout()
                    ));
                }
                out
            }
            Err(e) => {
                // The old process keeps serving; the new one must be gone.
                let status = match p.wait_exit(SLACK).await {
                    Ok(st) => format!("; it exited with {st}"),
                    Err(_) => String::new(),
                };
                let _ = p.stop(Signal::SIGKILL, SLACK).await;
                let why = format!(
                    "the new process failed before ready: {e}{status}; stderr in {}",
                    p.stderr_path().display()
                );
                self.retire(p);
                out.fail(why)
            }
        }
    }

    async fn master_reload(&mut self, log: &mut EventLog) -> ActOutcome {
        let Some(master) = self.current.as_ref() else {
            return ActOutcome::triggered_now().fail("no proxy is running");
        };
        if !self.master {
            return ActOutcome::triggered_now()
                .fail("master-worker reloads need the proxy started with --master");
        }
        let master_pid = master.pid();
        let from = log.cursor();
        let mut out = ActOutcome::triggered_now();
        if let Err(e) = master.signal(Signal::SIGUSR2) {
            return out.fail_by(&e);
        }
        let idx = log
            .wait_for(from, self.ready_timeout(), |s| {
                s.stdout_end_or(master_pid, |k| {
                    matches!(
                        k,
                        EventKind::ReloadDone { .. } | EventKind::ReloadFailed { .. }
                    )
                })
            })
            .await;
        let Some(idx) = idx else {
            return out.fail("no reload_done or reload_failed from the master in time");
        };
        match log.seen()[idx].event() {
            Some(Event {
                mono_ns,
                kind:
                    EventKind::ReloadDone {
                        new_pid,
                        generation,
                        ..
                    },
                ..
            }) => {
                out.ready_mono_ns = Some(*mono_ns);
                out.old_pids.extend(self.serving_pid);
                out.new_pid = Some(*new_pid);
                self.previous_pid = self.serving_pid;
                self.serving_pid = Some(*new_pid);
                self.generation = *generation;
                out
            }
            Some(Event {
                kind: EventKind::ReloadFailed { reason, .. },
                ..
            }) => out.fail(format!("reload failed: {reason}")),
            _ => out.fail("the master exited during the reload"),
        }
    }

    fn retire(&mut self, mut p: ProcessGuard) {
        if let Some(t) = p.exit_mono_ns() {
            self.exits.insert(p.pid(), t);
        }
        p.try_reap();
        self.retiring.push(p);
        for r in &mut self.retiring {
            if r.try_reap().is_some()
                && let Some(t) = r.exit_mono_ns()
            {
                self.exits.entry(r.pid()).or_insert(t);
            }
        }
    }

    fn signal(&self, signal: Signal, target: PidTarget) -> Result<(), RunnerError> {
        let cur = self
            .current
            .as_ref()
            .ok_or(RunnerError::Missing("no proxy is running"))?;
        let pid = match target {
            PidTarget::Main => cur.pid(),
            PidTarget::Previous => self
                .previous_pid
                .ok_or(RunnerError::Missing("no previous process"))?,
            PidTarget::Group => {
                return Ok(cur.signal_group(signal)?);
            }
        };
        // Only pids this runner started (or their relayed workers) are signalled.
        let ours = pid == cur.pid() || self.retiring.iter().any(|r| r.pid() == pid);
        if !ours {
            return Err(RunnerError::NotOurs(pid));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).map_err(|source| {
            RunnerError::Signal {
                signal,
                pid,
                source,
            }
        })
    }

    fn vars(&self) -> Vars {
        let mut v = self.env.vars();
        if let Some(l) = self.listen {
            v.set("listen", l.to_string())
                .set("listen_port", l.port().to_string());
        }
        if let Some(c) = &self.current {
            v.set("pid", c.pid().to_string());
        }
        v.set("config", self.config_path.display().to_string())
            .set("stats_socket", self.control_socket.display().to_string())
            .set("generation", self.generation.max(1).to_string());
        v
    }
}

impl Runner for ReferenceRunner {
    async fn start(&mut self, log: &mut EventLog) -> Result<SocketAddr, RunnerError> {
        self.write_config("127.0.0.1:0")?;
        self.spawn_fresh(log).await?;
        let addr = self
            .listen
            .ok_or(RunnerError::Missing("refproxy reported no address"))?;
        // Later generations (restart, naive) bind the same port.
        self.write_config(&addr.to_string())?;
        Ok(addr)
    }

    async fn act(&mut self, action: &ActionSpec, log: &mut EventLog) -> ActOutcome {
        match action {
            ActionSpec::Restart => self.restart(log, false).await,
            ActionSpec::Kill { restart } => {
                let mut out = self.restart(log, true).await;
                if *restart && out.error.is_none() {
                    match self.spawn_fresh(log).await {
                        Ok(ready) => {
                            out.ready_mono_ns = Some(ready);
                            out.new_pid = self.serving_pid;
                        }
                        Err(e) => {
                            out = out.fail(format!("the new process did not start: {}", chain(&e)))
                        }
                    }
                }
                out
            }
            ActionSpec::Reload(ReloadSpec::Reference(ReloadMode::MasterWorker)) => {
                self.master_reload(log).await
            }
            ActionSpec::Reload(ReloadSpec::Reference(ReloadMode::Restart)) => {
                self.restart(log, false).await
            }
            ActionSpec::Reload(ReloadSpec::Reference(mode)) => self.upgrade(*mode, log).await,
            ActionSpec::Reload(ReloadSpec::Variant(v)) => ActOutcome::triggered_now()
                .fail(format!("reload variant {v:?} needs a command proxy")),
            ActionSpec::Signal { signal, target } => {
                ActOutcome::triggered_now().check(self.signal(*signal, *target))
            }
            ActionSpec::SignalPid { .. } => ActOutcome::triggered_now()
                .fail("pid_file and pid_command are for an external server"),
            ActionSpec::Exec { command, timeout } | ActionSpec::ExecReload { command, timeout } => {
                exec_action(command, *timeout, &self.vars(), &self.env).await
            }
            ActionSpec::Sysctl { key, value } => self.sysctls.action(key, value),
        }
    }

    async fn stop(&mut self, _log: &mut EventLog) -> Result<(), RunnerError> {
        let deadline = tokio::time::Instant::now() + self.drain_timeout();
        for r in &mut self.retiring {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if r.wait_exit(left).await.is_err() {
                let _ = r.stop(Signal::SIGKILL, SLACK).await;
            }
        }
        let mut result = Ok(());
        if let Some(mut cur) = self.current.take() {
            if let Err(e) = cur.stop(Signal::SIGTERM, self.drain_timeout()).await {
                result = Err(RunnerError::Process(e));
            }
            self.retiring.push(cur);
        }
        for r in &mut self.retiring {
            r.join_readers(Duration::from_secs(2)).await;
            if let Some(t) = r.exit_mono_ns() {
                self.exits.entry(r.pid()).or_insert(t);
            }
        }
        if let Err(e) = self.sysctls.restore() {
            result = result.and(Err(e.into()));
        }
        let _ = std::fs::remove_file(&self.control_socket);
        result
    }

    fn exit_seen(&self, pid: u32) -> Option<u64> {
        self.exits.get(&pid).copied()
    }

    fn lost(&mut self) -> Option<String> {
        let cur = self.current.as_mut()?;
        let status = cur.try_reap()?;
        Some(format!(
            "refproxy (pid {}) exited during the load ({status}); stderr in {}",
            cur.pid(),
            cur.stderr_path().display()
        ))
    }
}

/// How an old process ended an upgrade.
enum Handover {
    /// It reported `reload_done`, exited or closed its stdout.
    Done,
    /// It reported `reload_failed` (it gave the new process up and serves on).
    GaveUp(String),
    /// Nothing of that from pid `.0` in time.
    TimedOut(u32),
}

/// Waits (bounded) until process `old` reports `reload_done` or `reload_failed`, exits, or
/// closes its stdout after `from`.
async fn handed_over(log: &mut EventLog, from: usize, old: u32, timeout: Duration) -> Handover {
    let idx = log
        .wait_for(from, timeout, |s| {
            s.stdout_end_or(old, |k| {
                matches!(
                    k,
                    EventKind::ReloadDone { .. }
                        | EventKind::ReloadFailed { .. }
                        | EventKind::Exited { .. }
                )
            })
        })
        .await;
    let Some(idx) = idx else {
        return Handover::TimedOut(old);
    };
    match log.seen()[idx].event() {
        Some(Event {
            kind: EventKind::ReloadFailed { reason, .. },
            ..
        }) => Handover::GaveUp(reason.clone()),
        _ => Handover::Done,
    }
}

/// Adds the stderr log path to a start failure.
fn with_log(e: RunnerError, p: &ProcessGuard) -> RunnerError {
    RunnerError::NotReady {
        source: Box::new(e),
        note: p.stderr_note(),
    }
}
