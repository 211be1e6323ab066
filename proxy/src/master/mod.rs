//! Master-worker mode (`--master`): a long-lived master owns the listening sockets and
//! replaces its worker process on demand.
//!
//! 1. The master binds the listeners (and the control socket), installs its signal handlers
//!    and starts worker generation 1 (`spawn.rs`): `refproxy --worker FD` with one end of a
//!    socketpair, over which the worker receives the sockets and commits once READY.
//! 2. SIGUSR2, SIGHUP (which also re-reads the config's listen addresses) or a `reload`
//!    request on the control socket start a new worker the same way. Once it has committed,
//!    the previous worker gets SIGTERM and drains. If the new worker fails before READY
//!    (invalid config, crash, `reload.ready_timeout`), it is killed, the old one keeps
//!    serving and `reload_failed` is reported. One reload at a time; at most
//!    `reload.max_old_generations` workers draining.
//! 3. Workers' event lines are relayed to the master's events. A worker stops when its
//!    socketpair closes, so workers do not outlive the master.
//! 4. SIGTERM to the master is forwarded to every worker; the master waits for them
//!    (drain deadline plus a margin, then SIGKILL) and exits.

mod spawn;
pub mod worker;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reloadbench_model::event::{EventKind, ReloadMode};
use tokio::sync::mpsc;

use crate::config::{self, Config};
use crate::control::{self, ControlPath, Request, protocol::Message};
use crate::error::ProxyError;
use crate::fdpass::Channel;
use crate::listeners::{self, Listener};
use crate::phase::{Events, Notifier};
use crate::signals::{SignalAction, Signals};
use spawn::{Note, Spec, Worker};

/// Extra time the master gives its workers beyond the drain deadline before SIGKILL.
const STOP_MARGIN: Duration = Duration::from_secs(5);

/// The result of a reload attempt, back in the master loop.
struct Attempt {
    result: Result<Worker, String>,
    listeners: Vec<Listener>,
    cfg: Arc<Config>,
    reply: Option<Channel>,
}

/// Runs the master; returns the exit code.
pub async fn run(
    config_path: &Path,
    fail_before_ready: bool,
    events: Events,
    notifier: Notifier,
) -> Result<i32, ProxyError> {
    let cfg = Arc::new(config::load(config_path)?);
    let mut listeners = listeners::bind_all(&cfg.listen)?;
    let control = cfg
        .control_socket
        .as_deref()
        .map(ControlPath::bind)
        .transpose()?;
    let mut signals = Signals::install().map_err(ProxyError::Signals)?;
    let spec = Spec {
        config: config_path.to_owned(),
        fail_before_ready,
        ready_timeout: cfg.reload.ready_timeout,
    };
    let (notes_tx, mut notes) = mpsc::channel(64);
    let mut m = Master {
        events,
        notifier,
        spec,
        cfg,
        alive: HashSet::new(),
        current: None,
        old: Vec::new(),
        generation: 0,
        reloading: false,
    };
    let first = spawn::spawn_worker(&m.spec, 1, &listeners, &m.events, &notes_tx).await;
    while let Ok(note) = notes.try_recv() {
        m.on_note(note);
    }
    match first {
        Ok(w) => {
            m.generation = w.generation;
            m.current = Some(w);
        }
        Err(reason) => {
            tracing::error!("the first worker failed: {reason}");
            // spawn_worker killed it already; reap it before exiting.
            m.wait_all(&mut notes, STOP_MARGIN).await;
            return Err(ProxyError::Master(format!(
                "the first worker failed: {reason}"
            )));
        }
    }
    m.notifier.ready(false);

    let (path, mut requests, accept_task) = match control {
        Some((path, l)) => {
            let (task, rx) = control::listen(l);
            (Some(path), rx, Some(task))
        }
        None => (None, mpsc::channel(1).1, None),
    };
    let (done_tx, mut done) = mpsc::channel::<Attempt>(1);
    let code = loop {
        tokio::select! {
            action = signals.next() => match action {
                SignalAction::GracefulStop => break m.stop(Signal::SIGTERM, &mut notes).await,
                SignalAction::FastStop => break m.stop(Signal::SIGINT, &mut notes).await,
                SignalAction::Upgrade => m.start_reload(false, None, &listeners, &done_tx, &notes_tx).await,
                SignalAction::Reload => m.start_reload(true, None, &listeners, &done_tx, &notes_tx).await,
            },
            Some(request) = requests.recv() => match request {
                Request::Reload { chan } => {
                    m.start_reload(false, Some(chan), &listeners, &done_tx, &notes_tx).await;
                }
                Request::Upgrade { mut chan, .. } => {
                    tokio::spawn(async move {
                        let reason = "this is a master: send `reload` (or SIGUSR2) instead".into();
                        let _ = chan.send(&Message::Refused { reason }).await;
                    });
                }
            },
            Some(attempt) = done.recv() => {
                // Worker news sent before the attempt ended (the new worker's start, or its
                // exit right after the commit) is applied first: a dead worker is never
                // made current.
                let mut lost = None;
                while let Ok(note) = notes.try_recv() {
                    lost = lost.or(m.on_note(note));
                }
                match m.finish_reload(attempt).await {
                    Some(new) => listeners = new,
                    None => if let Some(code) = lost {
                        break m.stop_with(Signal::SIGTERM, &mut notes, code).await;
                    },
                }
            }
            Some(note) = notes.recv() => {
                if let Some(code) = m.on_note(note) {
                    break m.stop_with(Signal::SIGTERM, &mut notes, code).await;
                }
            }
        }
    };
    if let Some(task) = accept_task {
        task.abort();
    }
    drop(path);
    Ok(code)
}

struct Master {
    events: Events,
    notifier: Notifier,
    spec: Spec,
    cfg: Arc<Config>,
    /// Pids of worker processes not yet reaped.
    alive: HashSet<u32>,
    current: Option<Worker>,
    /// Replaced workers that are draining.
    old: Vec<Worker>,
    generation: u64,
    reloading: bool,
}

impl Master {
    async fn start_reload(
        &mut self,
        reread: bool,
        reply: Option<Channel>,
        listeners: &[Listener],
        done: &mpsc::Sender<Attempt>,
        notes: &mpsc::Sender<Note>,
    ) {
        let refuse = if self.reloading {
            Some("reload in progress".to_owned())
        } else if self.old.len() >= self.cfg.reload.max_old_generations as usize {
            Some(format!(
                "{} old generations still draining (reload.max_old_generations)",
                self.old.len()
            ))
        } else {
            None
        };
        if let Some(reason) = refuse {
            self.refuse(reason, reply).await;
            return;
        }
        self.events.emit(EventKind::ReloadStarted {
            generation: self.generation,
            mode: ReloadMode::MasterWorker,
        });
        self.notifier.reloading();
        let cfg = if reread {
            match config::load(&self.spec.config) {
                Ok(cfg) => Arc::new(cfg),
                Err(e) => {
                    self.fail(format!("invalid config: {e}"), reply).await;
                    return;
                }
            }
        } else {
            self.cfg.clone()
        };
        let dups = listeners
            .iter()
            .map(|l| {
                Ok(Listener {
                    addr: l.addr,
                    fd: l.to_std()?.into(),
                })
            })
            .collect::<Result<Vec<_>, listeners::ListenerError>>();
        let new_listeners = match dups.and_then(|d| listeners::adopt(&cfg.listen, d)) {
            Ok((l, _closed)) => l,
            Err(e) => {
                self.fail(e.to_string(), reply).await;
                return;
            }
        };
        self.reloading = true;
        let mut spec = self.spec.clone();
        spec.ready_timeout = cfg.reload.ready_timeout;
        let generation = self.generation + 1;
        let events = self.events.clone();
        let (done, notes) = (done.clone(), notes.clone());
        tokio::spawn(async move {
            let result =
                spawn::spawn_worker(&spec, generation, &new_listeners, &events, &notes).await;
            let attempt = Attempt {
                result,
                listeners: new_listeners,
                cfg,
                reply,
            };
            let _ = done.send(attempt).await;
        });
    }

    /// Applies a finished attempt; returns the new listeners on success.
    async fn finish_reload(&mut self, attempt: Attempt) -> Option<Vec<Listener>> {
        self.reloading = false;
        let Attempt {
            result,
            listeners,
            cfg,
            mut reply,
        } = attempt;
        let worker = match result {
            Ok(w) => w,
            Err(reason) => {
                self.fail(reason, reply).await;
                return None;
            }
        };
        let (pid, generation) = (worker.pid, worker.generation);
        if !self.alive.contains(&pid) {
            self.fail(format!("worker {pid} exited right after READY"), reply)
                .await;
            return None;
        }
        self.generation = generation;
        self.cfg = cfg;
        self.spec.ready_timeout = self.cfg.reload.ready_timeout;
        self.events.emit(EventKind::ReloadDone {
            generation,
            new_pid: pid,
            mode: ReloadMode::MasterWorker,
        });
        if let Some(prev) = self.current.replace(worker) {
            tracing::info!(
                "worker {} (generation {}) drains",
                prev.pid,
                prev.generation
            );
            let _ = kill(Pid::from_raw(prev.pid as i32), Signal::SIGTERM);
            self.old.push(prev);
        }
        self.notifier.ready(false);
        if let Some(chan) = &mut reply {
            let _ = chan.send(&Message::Reloaded { generation, pid }).await;
        }
        Some(listeners)
    }

    async fn refuse(&mut self, reason: String, reply: Option<Channel>) {
        tracing::warn!("reload refused: {reason}");
        self.events.emit(EventKind::ReloadFailed {
            generation: self.generation,
            reason: reason.clone(),
        });
        if let Some(mut chan) = reply {
            let _ = chan.send(&Message::Error { reason }).await;
        }
    }

    async fn fail(&mut self, reason: String, reply: Option<Channel>) {
        self.notifier.ready(false);
        self.refuse(reason, reply).await;
    }

    /// Records a worker start or exit; returns an exit code if the master must stop.
    fn on_note(&mut self, note: Note) -> Option<i32> {
        match note {
            Note::Started(pid) => {
                self.alive.insert(pid);
                None
            }
            Note::Exited(pid, status) => {
                self.alive.remove(&pid);
                self.old.retain(|w| w.pid != pid);
                if self.current.as_ref().is_some_and(|w| w.pid == pid) {
                    tracing::error!("the current worker {pid} exited ({status}): stopping");
                    self.current = None;
                    return Some(1);
                }
                tracing::info!("worker {pid} exited ({status})");
                None
            }
        }
    }

    async fn stop(&mut self, signal: Signal, notes: &mut mpsc::Receiver<Note>) -> i32 {
        self.stop_with(signal, notes, 0).await
    }

    /// Forwards `signal` to every worker, waits for them (then SIGKILL), reports the exit.
    async fn stop_with(
        &mut self,
        signal: Signal,
        notes: &mut mpsc::Receiver<Note>,
        code: i32,
    ) -> i32 {
        self.notifier.stopping();
        // The current worker is now stopping like the others: its exit is expected.
        if let Some(w) = self.current.take() {
            self.old.push(w);
        }
        for pid in &self.alive {
            let _ = kill(Pid::from_raw(*pid as i32), signal);
        }
        let deadline = self.cfg.drain.deadline + STOP_MARGIN;
        if !self.wait_all(notes, deadline).await {
            tracing::warn!("workers still alive after {deadline:?}: SIGKILL");
            for pid in &self.alive {
                let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
            }
            self.wait_all(notes, STOP_MARGIN).await;
        }
        self.events.emit(EventKind::Exited {
            generation: self.generation,
            code,
        });
        code
    }

    async fn wait_all(&mut self, notes: &mut mpsc::Receiver<Note>, within: Duration) -> bool {
        let wait = async {
            while !self.alive.is_empty() {
                match notes.recv().await {
                    Some(note) => {
                        let _ = self.on_note(note);
                    }
                    None => break,
                }
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }
}
