//! [`CommandRunner`]: drives any server (HAProxy, nginx, ...) through the
//! command templates of its scenario, and starts command origins.
//!
//! External servers cannot take a listening socket from the harness, so the
//! listen port is reserved by binding `127.0.0.1:0`, reading the port and
//! closing the socket just before the start (the only place the harness
//! does that). Processes are spawned from templates split into words (no
//! shell) in their own process group; `run` steps go through `/bin/sh -c`.
//! Daemonizing servers leave their group (`setsid`); the harness is a child
//! subreaper ([`adopt_orphans`]), so they are re-parented to it and can be
//! found, stopped and reaped. Exits of processes that are not the harness's
//! direct children are watched through `/proc` at [`super::readiness::POLL`].

mod orphans;
mod spawn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reloadbench_model::clock::monotonic_ns;

use crate::scenario::{
    ActionSpec, CommandProxy, MainPid, PidTarget, ReloadSpec, Step, StepAction, Template, Vars,
};

use super::readiness::{POLL, pid_alive, read_pid_file, wait_pid_file};
use super::runner::CaseEnv;
use super::runner::{ActOutcome, Runner, RunnerError};
use crate::cause::chain;
use crate::orchestrator::events::EventLog;
use crate::orchestrator::os::host::{Sysctls, exec_action, run_shell};
use crate::orchestrator::os::process::ProcessGuard;
use crate::orchestrator::os::procstat::proc_info;

pub(crate) use orphans::adopt_orphans;
use orphans::{kill_adopted, reap_adopted, reap_all_adopted};
pub(crate) use spawn::{reserve_port, start_command_origin};
use spawn::{spawn_template, wait_ready};

/// Drives a server through its command templates.
#[derive(Debug)]
pub(crate) struct CommandRunner {
    cfg: CommandProxy,
    env: CaseEnv,
    listen: Option<SocketAddr>,
    main_pid: Option<u32>,
    previous_pid: Option<u32>,
    generation: u64,
    spawned: Vec<ProcessGuard>,
    exits: Arc<Mutex<HashMap<u32, u64>>>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    sysctls: Sysctls,
}

impl CommandRunner {
    /// A runner for `cfg` in the case described by `env`.
    pub(crate) fn new(cfg: CommandProxy, env: CaseEnv) -> CommandRunner {
        CommandRunner {
            cfg,
            env,
            listen: None,
            main_pid: None,
            previous_pid: None,
            generation: 0,
            spawned: Vec::new(),
            exits: Arc::default(),
            watchers: Vec::new(),
            sysctls: Sysctls::default(),
        }
    }

    fn vars(&self) -> Vars {
        let mut v = self.env.vars();
        let dir = &self.env.dir;
        v.set(
            "config",
            dir.join(&self.cfg.config_name).display().to_string(),
        )
        .set("generation", self.generation.max(1).to_string());
        if let Some(l) = self.listen {
            v.set("listen", l.to_string())
                .set("listen_port", l.port().to_string());
        }
        if let Some(p) = self.main_pid {
            v.set("pid", p.to_string());
        }
        // pidfile and stats_socket may use the values above.
        let pidfile = self.cfg.pidfile.render(&v).ok();
        let sock = self.cfg.stats_socket.render(&v).ok();
        if let Some(p) = pidfile {
            v.set("pidfile", p);
        }
        if let Some(s) = sock {
            v.set("stats_socket", s);
        }
        v
    }

    fn render_config(&self) -> Result<(), RunnerError> {
        let Some(tpl_path) = &self.cfg.config_template else {
            return Ok(());
        };
        let text = std::fs::read_to_string(tpl_path).map_err(|source| RunnerError::Read {
            path: tpl_path.clone(),
            source,
        })?;
        let rendered =
            Template::new(text)
                .render(&self.vars())
                .map_err(|source| RunnerError::Template {
                    what: tpl_path.display().to_string(),
                    source,
                })?;
        let out = self.env.dir.join(&self.cfg.config_name);
        std::fs::write(&out, rendered).map_err(|source| RunnerError::Write { path: out, source })
    }

    fn pidfile(&self) -> Option<std::path::PathBuf> {
        self.vars().get("pidfile").map(Into::into)
    }

    /// Main pid after a start or reload, per [`MainPid`]: the last spawned
    /// process, or the live pid the pid file names (a reload by signal may
    /// keep the same main pid; a binary upgrade changes it).
    async fn settle_main_pid(&mut self, last_spawned: Option<u32>) -> Result<(), RunnerError> {
        self.main_pid = match self.cfg.main_pid {
            MainPid::Child => last_spawned.or(self.main_pid),
            MainPid::PidFile => {
                let path = self
                    .pidfile()
                    .ok_or(RunnerError::Missing("no pid file configured"))?;
                let pid = match read_pid_file(&path) {
                    Some(p) if pid_alive(p) => p,
                    _ => wait_pid_file(&path, None, Duration::from_secs(10)).await?,
                };
                // A daemon's main pid: the watchdog kills it if we die.
                crate::orchestrator::os::watchdog::track(pid);
                Some(pid)
            }
        };
        Ok(())
    }

    async fn start_inner(&mut self, log: &mut EventLog) -> Result<u64, RunnerError> {
        self.generation += 1;
        self.render_config()?;
        let vars = self.vars();
        let from = log.cursor();
        let p = spawn_template(
            "server",
            &self.cfg.start,
            &vars,
            &self.env.dir,
            &self.env.ctx,
        )?;
        let pid = p.pid();
        self.spawned.push(p);
        let addr = self
            .listen
            .ok_or(RunnerError::Missing("no listen address"))?;
        let prev = self.main_pid;
        let ready = match wait_ready(&self.cfg.ready, &vars, addr, Some(pid), from, prev, log).await
        {
            Ok(t) => t,
            Err(e) => {
                let mut note = String::new();
                if let Some(p) = self.spawned.last_mut() {
                    if let Some(st) = p.try_reap() {
                        note.push_str(&format!("; `{}` exited with {st}", self.cfg.start));
                        // Its output is complete: let the readers write it.
                        p.join_readers(Duration::from_secs(1)).await;
                    }
                    note.push_str(&p.stderr_note());
                }
                return Err(RunnerError::NotReady {
                    source: Box::new(e),
                    note,
                });
            }
        };
        self.settle_main_pid(Some(pid)).await?;
        Ok(ready)
    }

    /// Runs one step; returns the pid it spawned, if any.
    async fn step(
        &mut self,
        step: &Step,
        previous: Option<u32>,
        log: &mut EventLog,
    ) -> Result<Option<u32>, RunnerError> {
        let vars = self.vars();
        let from = log.cursor();
        let mut spawned = None;
        match &step.action {
            StepAction::Spawn(t) => {
                let p = spawn_template("server", t, &vars, &self.env.dir, &self.env.ctx)?;
                spawned = Some(p.pid());
                self.spawned.push(p);
            }
            StepAction::Run { command, timeout } => {
                let cmd = command.render(&vars)?;
                run_shell("step", &cmd, &self.env.dir, *timeout, &self.env.ctx).await?;
            }
            StepAction::Signal { signal, target } => {
                self.send(*signal, *target, previous)?;
            }
        }
        if let Some(w) = &step.wait {
            let addr = self
                .listen
                .ok_or(RunnerError::Missing("no listen address"))?;
            wait_ready(w, &vars, addr, spawned, from, previous, log).await?;
        }
        Ok(spawned)
    }

    /// Runs `steps` in order, stopping at the first failure; returns the
    /// pid the last spawning step spawned, if any.
    async fn steps(
        &mut self,
        steps: &[Step],
        previous: Option<u32>,
        log: &mut EventLog,
    ) -> Result<Option<u32>, RunnerError> {
        let mut last = None;
        for step in steps {
            if let Some(p) = self.step(step, previous, log).await? {
                last = Some(p);
            }
        }
        Ok(last)
    }

    fn send(
        &self,
        signal: Signal,
        target: PidTarget,
        previous: Option<u32>,
    ) -> Result<(), RunnerError> {
        let pid = match target {
            PidTarget::Main => self.main_pid.ok_or(RunnerError::Missing("no main pid"))?,
            PidTarget::Previous => previous
                .or(self.previous_pid)
                .ok_or(RunnerError::Missing("no previous pid"))?,
            PidTarget::Group => {
                for p in &self.spawned {
                    let _ = p.signal_group(signal);
                }
                return Ok(());
            }
        };
        if !self.is_ours(pid) {
            return Err(RunnerError::NotOurs(pid));
        }
        kill(Pid::from_raw(pid as i32), signal).map_err(|source| RunnerError::Signal {
            signal,
            pid,
            source,
        })
    }

    /// Whether `pid` was started by this case: spawned by it, in one of its
    /// process groups, or re-parented to the harness.
    fn is_ours(&self, pid: u32) -> bool {
        if self.spawned.iter().any(|p| p.pid() == pid) {
            return true;
        }
        let Some(st) = proc_info(pid) else {
            return false;
        };
        st.ppid == std::process::id() || self.spawned.iter().any(|p| p.pid() == st.pgid)
    }

    /// Watches `pid` until it exits (bounded), recording when.
    fn watch_exit(&mut self, pid: u32) {
        let exits = Arc::clone(&self.exits);
        let limit = self.cfg.stop_timeout + Duration::from_secs(30);
        self.watchers.push(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            while pid_alive(pid) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
            }
            if !pid_alive(pid)
                && let Ok(mut m) = exits.lock()
            {
                m.insert(pid, monotonic_ns());
            }
        }));
    }

    async fn reload(&mut self, name: &str, log: &mut EventLog) -> ActOutcome {
        let mut out = ActOutcome::triggered_now();
        let Some(variant) = self.cfg.reload.get(name).cloned() else {
            return out.fail(format!("no reload variant {name:?}"));
        };
        let previous = self.main_pid;
        self.generation += 1;
        if let Err(e) = self.render_config() {
            return out.fail_by(&e);
        }
        let last = match self.steps(&variant.steps, previous, log).await {
            Ok(last) => last,
            Err(e) => return out.fail_by(&e),
        };
        // Complete when the last step (with its own wait) is done.
        out.ready_mono_ns = Some(monotonic_ns());
        if let Err(e) = self.settle_main_pid(last).await {
            return out.fail_by(&e);
        }
        self.previous_pid = previous;
        out.new_pid = self.main_pid;
        if let Some(old) = previous.filter(|p| Some(*p) != self.main_pid) {
            out.old_pids.push(old);
            self.watch_exit(old);
        }
        out
    }

    async fn stop_main(&mut self, log: &mut EventLog) -> Result<Option<u64>, RunnerError> {
        let Some(pid) = self.main_pid else {
            return Ok(None);
        };
        let stop = self.cfg.stop.clone();
        self.step(&stop, Some(pid), log).await?;
        let deadline = tokio::time::Instant::now() + self.cfg.stop_timeout;
        while pid_alive(pid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            self.reap();
        }
        if pid_alive(pid) {
            if self.is_ours(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            return Err(RunnerError::StopTimeout {
                pid,
                limit: self.cfg.stop_timeout,
            });
        }
        self.previous_pid = Some(pid);
        Ok(Some(monotonic_ns()))
    }

    async fn restart(&mut self, log: &mut EventLog) -> ActOutcome {
        let mut out = ActOutcome::triggered_now();
        out.old_pids.extend(self.main_pid);
        if let Some(steps) = self.cfg.restart.clone() {
            let previous = self.main_pid;
            let last = match self.steps(&steps, previous, log).await {
                Ok(last) => last,
                Err(e) => return out.fail_by(&e),
            };
            out.ready_mono_ns = Some(monotonic_ns());
            if let Err(e) = self.settle_main_pid(last).await {
                return out.fail_by(&e);
            }
            out.new_pid = self.main_pid;
            return out;
        }
        match self.stop_main(log).await {
            Ok(t) => out.exited_mono_ns = t,
            Err(e) => return out.fail_by(&e),
        }
        match self.start_inner(log).await {
            Ok(t) => {
                out.ready_mono_ns = Some(t);
                out.new_pid = self.main_pid;
                out
            }
            Err(e) => out.fail(format!("the server did not start again: {}", chain(&e))),
        }
    }

    /// Reaps adopted orphans that have exited (never a child the harness
    /// waits for itself).
    fn reap(&mut self) {
        for p in &mut self.spawned {
            p.try_reap();
        }
        reap_adopted(&self.env.ctx.pids.pids());
    }
}

impl Runner for CommandRunner {
    async fn start(&mut self, log: &mut EventLog) -> Result<SocketAddr, RunnerError> {
        let addr = reserve_port().map_err(RunnerError::Port)?;
        self.listen = Some(addr);
        self.start_inner(log).await?;
        Ok(addr)
    }

    async fn act(&mut self, action: &ActionSpec, log: &mut EventLog) -> ActOutcome {
        self.reap();
        match action {
            ActionSpec::Restart => self.restart(log).await,
            ActionSpec::Reload(ReloadSpec::Variant(v)) => self.reload(v, log).await,
            ActionSpec::Reload(ReloadSpec::Reference(m)) => ActOutcome::triggered_now()
                .fail(format!("reload mode {m} needs the reference proxy")),
            ActionSpec::Signal { signal, target } => {
                ActOutcome::triggered_now().check(self.send(*signal, *target, None))
            }
            ActionSpec::Kill { restart } => {
                let mut out = ActOutcome::triggered_now();
                out.old_pids.extend(self.main_pid);
                if let Some(pid) = self.main_pid.filter(|p| self.is_ours(*p)) {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
                for p in &self.spawned {
                    let _ = p.signal_group(Signal::SIGKILL);
                }
                out.exited_mono_ns = Some(monotonic_ns());
                self.previous_pid = self.main_pid.take();
                if *restart {
                    match self.start_inner(log).await {
                        Ok(t) => {
                            out.ready_mono_ns = Some(t);
                            out.new_pid = self.main_pid;
                        }
                        Err(e) => {
                            out = out.fail(format!("the server did not start again: {}", chain(&e)))
                        }
                    }
                }
                out
            }
            ActionSpec::SignalPid { .. } => ActOutcome::triggered_now()
                .fail("pid_file and pid_command are for an external server"),
            ActionSpec::Exec { command, timeout } | ActionSpec::ExecReload { command, timeout } => {
                exec_action(command, *timeout, &self.vars(), &self.env).await
            }
            ActionSpec::Sysctl { key, value } => self.sysctls.action(key, value),
        }
    }

    async fn stop(&mut self, log: &mut EventLog) -> Result<(), RunnerError> {
        let res = self.stop_main(log).await;
        // Old generations still draining get the stop timeout, then go.
        let deadline = tokio::time::Instant::now() + self.cfg.stop_timeout;
        for w in self.watchers.drain(..) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if tokio::time::timeout(left, w).await.is_err() {
                break;
            }
        }
        // Whatever is left: daemonized processes re-parented to us, then our groups.
        let ours = self.env.ctx.pids.pids();
        kill_adopted(&ours);
        for p in &mut self.spawned {
            let _ = p.stop(Signal::SIGKILL, Duration::from_secs(5)).await;
            p.join_readers(Duration::from_secs(2)).await;
        }
        reap_all_adopted(&ours, Duration::from_secs(5)).await;
        let restore = self.sysctls.restore();
        res?;
        restore?;
        Ok(())
    }

    fn exit_seen(&self, pid: u32) -> Option<u64> {
        self.exits.lock().ok()?.get(&pid).copied()
    }

    fn lost(&mut self) -> Option<String> {
        self.reap();
        let pid = self.main_pid?;
        (!pid_alive(pid)).then(|| {
            format!(
                "{} (main pid {pid}) exited during the load; its output is in {}",
                self.cfg.binary,
                self.env.ctx.log_dir.display()
            )
        })
    }
}
