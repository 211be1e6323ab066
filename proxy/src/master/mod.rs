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
//!    `reload.max_old_generations` workers draining: at the cap, the oldest is told to end
//!    its WebSocket tunnels (SIGUSR1, close frames 1001) and the reload waits for its exit
//!    (2 × `drain.linger` + 2 s at most; refused if it is still there).
//! 3. Workers' event lines are relayed to the master's events. A worker stops when its
//!    socketpair closes, so workers do not outlive the master. The master pings every worker
//!    over its socketpair and kills one that stops answering (`spawn::watch`). A current
//!    worker that dies unexpectedly (or was killed so) is replaced at once (`worker_lost`,
//!    then `worker_respawned`): the master holds the sockets, so clients lose at most the
//!    dead worker's open connections. When workers keep dying, each replacement waits
//!    longer (100 ms doubling to 5 s).
//! 4. SIGTERM to the master is forwarded to every worker; the master waits for them
//!    (drain deadline plus a margin, then SIGKILL) and exits.

mod spawn;
pub mod worker;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Fault injection for tests: applied to an upgrading process (`--upgrade-from`), and to
/// the workers that a master's reloads start (not to its first worker, nor to the
/// replacement of a worker that died).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// `--fail-before-ready`: exit 1 after receiving the sockets.
    pub fail_before_ready: bool,
    /// `--freeze-at`: stop with SIGSTOP at this point of the takeover.
    pub freeze_at: Option<crate::cli::FreezePoint>,
}

/// Losses of the current worker closer together than this make the next replacement wait.
const RESPAWN_STABLE: Duration = Duration::from_secs(10);
/// The first wait of a replacement after a quick loss; doubled per further loss.
const RESPAWN_MIN: Duration = Duration::from_millis(100);
/// The longest wait of a replacement.
const RESPAWN_MAX: Duration = Duration::from_secs(5);

/// How long to wait before replacing a current worker that died.
#[derive(Debug, Default)]
struct Backoff {
    delay: Duration,
    last_loss: Option<Instant>,
}

impl Backoff {
    /// The wait before the replacement of a worker lost now: none after a stable period,
    /// then 100 ms, doubling up to 5 s while losses keep coming.
    fn next(&mut self) -> Duration {
        let now = Instant::now();
        self.delay = match self.last_loss {
            Some(t) if now.duration_since(t) < RESPAWN_STABLE => {
                (self.delay * 2).clamp(RESPAWN_MIN, RESPAWN_MAX)
            }
            _ => Duration::ZERO,
        };
        self.last_loss = Some(now);
        self.delay
    }
}

/// The result of a reload attempt, back in the master loop.
struct Attempt {
    result: Result<Worker, String>,
    listeners: Vec<Listener>,
    cfg: Arc<Config>,
    reply: Option<Channel>,
    /// The replacement of a worker that died, not a reload.
    respawn: bool,
}

/// Runs the master; returns the exit code.
pub async fn run(
    config_path: &Path,
    faults: Faults,
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
    let tickets = master_tickets(&cfg, None);
    let (keys_tx, key_updates) =
        tokio::sync::watch::channel(tickets.as_ref().and_then(|k| k.export()));
    let spec = Spec {
        config: config_path.to_owned(),
        faults,
        ready_timeout: cfg.reload.ready_timeout,
        takeover_timeout: cfg.reload.takeover_timeout,
        tickets,
        key_updates,
    };
    let (notes_tx, mut notes) = mpsc::channel(64);
    let mut m = Master {
        keys_tx,
        events,
        notifier,
        spec,
        cfg,
        alive: HashSet::new(),
        current: None,
        old: Vec::new(),
        generation: 0,
        reloading: false,
        backoff: Backoff::default(),
        respawn_at: None,
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
                SignalAction::Upgrade => {
                    m.make_room(&mut notes).await;
                    m.start_reload(Kind::Reload { reread: false }, None, &listeners, &done_tx, &notes_tx).await;
                }
                SignalAction::Reload => {
                    m.make_room(&mut notes).await;
                    m.start_reload(Kind::Reload { reread: true }, None, &listeners, &done_tx, &notes_tx).await;
                }
                SignalAction::CloseTunnels => tracing::info!("SIGUSR1 ignored by a master: it has no tunnels"),
            },
            () = rotation_due(m.rotation_at()) => m.rotate_keys(),
            () = respawn_due(m.respawn_at) => {
                m.respawn_at = None;
                // A reload under way brings a worker; if it fails, it schedules the respawn.
                if !m.reloading {
                    m.start_reload(Kind::Respawn, None, &listeners, &done_tx, &notes_tx).await;
                }
            }
            Some(request) = requests.recv() => match request {
                Request::Reload { chan } => {
                    m.make_room(&mut notes).await;
                    m.start_reload(Kind::Reload { reread: false }, Some(chan), &listeners, &done_tx, &notes_tx).await;
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
                while let Ok(note) = notes.try_recv() {
                    m.on_note(note);
                }
                if let Some(new) = m.finish_reload(attempt).await {
                    listeners = new;
                }
            }
            Some(note) = notes.recv() => m.on_note(note),
        }
    };
    if let Some(task) = accept_task {
        task.abort();
    }
    drop(path);
    Ok(code)
}

struct Master {
    /// Publishes the ticket keys after each rotation (to every worker's watch task).
    keys_tx: tokio::sync::watch::Sender<Option<crate::tls::TicketState>>,
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
    backoff: Backoff,
    /// When to start the replacement of a current worker that died.
    respawn_at: Option<tokio::time::Instant>,
}

/// Why a new worker is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A reload (SIGUSR2, SIGHUP with `reread`, or `reload` on the control socket).
    Reload { reread: bool },
    /// The replacement of a current worker that died.
    Respawn,
}

/// The ticket keys the master hands to its workers under `cfg`: none without `[tls]`, with
/// `tls.share_ticket_keys = false` or with a key file (each worker reads it); else the
/// keys it has, or new ones when it has none or the rotation period changed.
fn master_tickets(
    cfg: &Config,
    have: Option<Arc<crate::tls::TicketKeys>>,
) -> Option<Arc<crate::tls::TicketKeys>> {
    let tls = cfg.tls.as_ref()?;
    if !tls.share_ticket_keys || tls.ticket_keys_file.is_some() {
        return None;
    }
    let fits = |k: &Arc<crate::tls::TicketKeys>| k.rotation() == tls.ticket_key_rotation;
    match have {
        Some(k) if fits(&k) => Some(k),
        _ => Some(Arc::new(crate::tls::TicketKeys::for_master(
            tls.ticket_key_rotation,
        ))),
    }
}

/// Resolves at unix time `at` (seconds), never without one.
async fn rotation_due(at: Option<u64>) {
    let Some(at) = at else {
        return std::future::pending().await;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(at).saturating_sub(now)).await;
}

/// Resolves at `at`, never without one.
async fn respawn_due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Master {
    async fn start_reload(
        &mut self,
        kind: Kind,
        reply: Option<Channel>,
        listeners: &[Listener],
        done: &mpsc::Sender<Attempt>,
        notes: &mpsc::Sender<Note>,
    ) {
        let respawn = kind == Kind::Respawn;
        let refuse = if self.reloading {
            Some("reload in progress".to_owned())
        } else if !respawn && self.old.len() >= self.cfg.reload.max_old_generations as usize {
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
        if !respawn {
            self.events.emit(EventKind::ReloadStarted {
                generation: self.generation,
                mode: ReloadMode::MasterWorker,
            });
            self.notifier.reloading();
        }
        let cfg = if kind == (Kind::Reload { reread: true }) {
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
        let before = self.spec.tickets.take();
        self.spec.tickets = master_tickets(&cfg, before.clone());
        let same = match (&before, &self.spec.tickets) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.publish_keys();
        }
        let mut spec = self.spec.clone();
        spec.ready_timeout = cfg.reload.ready_timeout;
        if respawn {
            // Fault injection is for reloads: a replacement must be able to serve.
            spec.faults = Faults::default();
        }
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
                respawn,
            };
            let _ = done.send(attempt).await;
        });
    }

    /// When the ticket keys are next due to rotate: never without shared keys, nor while a
    /// reload runs (the new worker got the keys of its welcome; the rotation waits until it
    /// serves, and is then pushed to it like to the others).
    fn rotation_at(&self) -> Option<u64> {
        match &self.spec.tickets {
            Some(k) if !self.reloading => Some(k.due_at()),
            _ => None,
        }
    }

    /// Rotates the ticket keys to a fresh random key and pushes them to every worker.
    fn rotate_keys(&mut self) {
        if let Some(k) = &self.spec.tickets {
            // On the schedule (every rotation period from the first key), unless the
            // master was held up for a whole period (then from now).
            let (now, due) = (crate::tls::tickets::unix_now(), k.due_at());
            let rotation = k.rotation().as_secs();
            k.rotate_at(if now < due + rotation { due } else { now });
            tracing::info!("ticket keys rotated: pushing them to the workers");
        }
        self.publish_keys();
    }

    fn publish_keys(&self) {
        let state = self.spec.tickets.as_ref().and_then(|k| k.export());
        self.keys_tx.send_replace(state);
    }

    /// Applies a finished attempt; returns the new listeners on success.
    async fn finish_reload(&mut self, attempt: Attempt) -> Option<Vec<Listener>> {
        self.reloading = false;
        let Attempt {
            result,
            listeners,
            cfg,
            mut reply,
            respawn,
        } = attempt;
        let worker = match result {
            Ok(w) if self.alive.contains(&w.pid) => w,
            Ok(w) => {
                let reason = format!("worker {} exited right after READY", w.pid);
                self.fail(reason, reply).await;
                self.respawn_if_needed();
                return None;
            }
            Err(reason) => {
                self.fail(reason, reply).await;
                self.respawn_if_needed();
                return None;
            }
        };
        let (pid, generation) = (worker.pid, worker.generation);
        self.generation = generation;
        self.cfg = cfg;
        self.spec.ready_timeout = self.cfg.reload.ready_timeout;
        self.spec.takeover_timeout = self.cfg.reload.takeover_timeout;
        if respawn {
            self.events.emit(EventKind::WorkerRespawned {
                generation,
                new_pid: pid,
            });
        } else {
            self.events.emit(EventKind::ReloadDone {
                generation,
                new_pid: pid,
                mode: ReloadMode::MasterWorker,
            });
        }
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

    /// Before a reload: when `reload.max_old_generations` workers are draining, tells the
    /// oldest to end its WebSocket tunnels (SIGUSR1: close frames 1001), which is what
    /// usually holds it, and waits for it to exit (2 × `drain.linger` + 2 s, at most
    /// `reload.ready_timeout`; worker
    /// news is applied meanwhile; other requests wait). If it is still there then, the
    /// reload is refused as before.
    async fn make_room(&mut self, notes: &mut mpsc::Receiver<Note>) {
        let cap = self.cfg.reload.max_old_generations as usize;
        if self.reloading || self.old.len() < cap {
            return;
        }
        let Some(oldest) = self.old.first() else {
            return;
        };
        let (pid, generation) = (oldest.pid, oldest.generation);
        tracing::info!(
            "{} old generations draining (reload.max_old_generations): generation {generation} (pid {pid}) closes its tunnels",
            self.old.len()
        );
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGUSR1);
        let within =
            crate::tunnel::close_wait(self.cfg.drain.linger).min(self.cfg.reload.ready_timeout);
        let wait = async {
            while self.old.iter().any(|w| w.pid == pid) {
                match notes.recv().await {
                    Some(note) => self.on_note(note),
                    None => break,
                }
            }
        };
        if tokio::time::timeout(within, wait).await.is_err() {
            tracing::warn!(
                "generation {generation} (pid {pid}) still draining after closing its tunnels"
            );
        }
    }

    /// Records a worker start or exit; a current worker that died is replaced.
    fn on_note(&mut self, note: Note) {
        match note {
            Note::Started(pid) => {
                self.alive.insert(pid);
            }
            Note::Exited(pid, status) => {
                self.alive.remove(&pid);
                self.old.retain(|w| w.pid != pid);
                let Some(w) = self.current.take_if(|w| w.pid == pid) else {
                    tracing::info!("worker {pid} exited ({status})");
                    return;
                };
                // A reload under way brings the next worker; if it fails, the replacement
                // is scheduled then.
                let delay = self.backoff.next();
                tracing::error!(
                    "the current worker {pid} (generation {}) died ({status}): replacing it in {delay:?}",
                    w.generation
                );
                self.events.emit(EventKind::WorkerLost {
                    generation: w.generation,
                    worker_pid: pid,
                    status: status.to_string(),
                    respawn_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                });
                if !self.reloading {
                    self.respawn_at = Some(tokio::time::Instant::now() + delay);
                }
            }
        }
    }

    /// After a failed attempt: if no worker serves, schedules a replacement (with back-off).
    fn respawn_if_needed(&mut self) {
        if self.current.is_none() && self.respawn_at.is_none() {
            let delay = self.backoff.next();
            self.respawn_at = Some(tokio::time::Instant::now() + delay);
        }
    }

    /// Forwards `signal` to every worker, waits for them (then SIGKILL), reports the exit
    /// (code 0).
    async fn stop(&mut self, signal: Signal, notes: &mut mpsc::Receiver<Note>) -> i32 {
        let code = 0;
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
                    Some(note) => self.on_note(note),
                    None => break,
                }
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }
}
