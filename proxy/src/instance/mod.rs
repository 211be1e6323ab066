//! One serving process — plain, upgraded or worker — from READY to exit.
//!
//! An [`Instance`] owns the HTTP server, a copy of every listening socket (to hand them to
//! a successor) and the signal handlers. [`Instance::run`] serves until a signal, a
//! successor that took over on the control socket, or the loss of the master link, then
//! stops: gracefully (stop accepting, drain per the config's drain policy, exit as soon as
//! the last connection is done) or fast.
//!
//! A process replaced by a successor keeps its listening sockets and watches the successor
//! (`handoff`) until it has itself exited: if the successor dies or stops answering before
//! that, it starts serving again and takes the control socket path back. A successor that
//! is stopped by a signal says so first, and is then not replaced.

mod handoff;
mod takeover;

use std::sync::Arc;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reloadbench_model::event::{EventKind, ReloadMode};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::control::protocol::{self, Message};
use crate::control::{self, ControlPath, Request};
use crate::error::ProxyError;
use crate::fdpass::Channel;
use crate::listeners::Listener;
use crate::phase::{Events, Notifier};
use crate::serve::{DrainReport, Identity, Server};
use crate::signals::{SignalAction, Signals};
use crate::tls::{Terminator, TicketKeys};

/// What a serving process needs to start.
#[derive(Debug)]
pub struct Setup {
    /// The validated config.
    pub cfg: Arc<Config>,
    /// This process's generation.
    pub generation: u64,
    /// The listening sockets, in config order.
    pub listeners: Vec<Listener>,
    /// Where events go.
    pub events: Events,
    /// systemd notifications.
    pub notifier: Notifier,
    /// The TLS session-ticket keys the previous generation handed over, if any.
    pub tickets: Option<crate::tls::TicketState>,
}

/// A started serving process.
pub struct Instance {
    server: Arc<Server>,
    /// The TLS session-ticket keys (with a `[tls]` config).
    tickets: Option<Arc<TicketKeys>>,
    listeners: Option<Arc<Vec<Listener>>>,
    /// The bound addresses (port 0 resolved), to bind again after a naive reload.
    addrs: Vec<std::net::SocketAddr>,
    generation: u64,
    cfg: Arc<Config>,
    events: Events,
    notifier: Notifier,
    signals: Signals,
    /// The heartbeat link to a draining predecessor, told `Stopping` before this process
    /// stops or hands over itself (see [`Instance::release_predecessor`]).
    predecessor: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    /// The replaced generations before this one that may still drain, oldest first, with
    /// a pidfd opened when their pids were handed over (fd-pass and naive reloads; see
    /// [`Instance::set_older`]).
    older: Vec<(u32, crate::pidfd::Owner)>,
}

/// A committed handoff: the successor is READY.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Committed {
    pub(crate) new_pid: u32,
    pub(crate) generation: u64,
    pub(crate) mode: ReloadMode,
}

/// The control socket while this process answers on it.
struct Control {
    path: ControlPath,
    task: Option<JoinHandle<()>>,
    requests: mpsc::Receiver<Request>,
}

impl Control {
    fn new(path: ControlPath, listener: UnixListener) -> Control {
        let (task, requests) = control::listen(listener);
        Control {
            path,
            task: Some(task),
            requests,
        }
    }

    /// Stops answering (the socket file stays until the guard is dropped, if ours).
    fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.requests.close();
    }

    /// Makes the configured path lead to this process again after a handoff that did not
    /// hold: keeps the socket if the path still names it, else binds a new one over it.
    fn reclaim(&mut self) {
        if self.task.is_some() && self.path.holds_path() {
            self.path.disowner().reclaim();
            return;
        }
        self.close();
        let configured = self.path.path().to_owned();
        let bound = ControlPath::bind_tmp(&configured).and_then(|(mut path, listener)| {
            path.promote()?;
            Ok((path, listener))
        });
        match bound {
            Ok((path, listener)) => *self = Control::new(path, listener),
            Err(e) => tracing::error!("cannot take the control socket back: {e}"),
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the instance's loop does next.
enum Step {
    Continue,
    Exit(i32),
}

/// Where a serving process is in its life.
struct Life {
    control: Option<Control>,
    /// A handoff is running.
    busy: bool,
    /// The drain after a successor took over.
    retiring: Option<JoinHandle<DrainReport>>,
    /// A signal asked this process to stop: it never takes over again.
    stopping: bool,
    notes_tx: mpsc::Sender<handoff::Note>,
}

impl Instance {
    /// Installs the signal handlers, then starts serving on the listeners. Does not report
    /// ready: call [`Instance::announce_ready`].
    pub fn start(setup: Setup) -> Result<Instance, ProxyError> {
        Instance::start_with(setup, true)
    }

    /// Like [`Instance::start`], but accepts nothing until [`Instance::open`] (a new
    /// generation before its predecessor confirmed the commit).
    pub fn start_held(setup: Setup) -> Result<Instance, ProxyError> {
        Instance::start_with(setup, false)
    }

    fn start_with(setup: Setup, open: bool) -> Result<Instance, ProxyError> {
        let signals = Signals::install().map_err(ProxyError::Signals)?;
        let tickets = setup
            .cfg
            .tls
            .as_ref()
            .map(|t| Arc::new(Terminator::ticket_keys(t, setup.tickets.as_ref())));
        let server = held_server(
            &setup.listeners,
            &setup.cfg,
            setup.generation,
            tickets.clone(),
        )?;
        if open {
            server.open_gate();
        }
        Ok(Instance {
            server: Arc::new(server),
            tickets,
            addrs: setup.listeners.iter().map(|l| l.addr).collect(),
            listeners: Some(Arc::new(setup.listeners)),
            generation: setup.generation,
            cfg: setup.cfg,
            events: setup.events,
            notifier: setup.notifier,
            signals,
            predecessor: None,
            older: Vec::new(),
        })
    }

    /// Starts accepting (after [`Instance::start_held`]).
    pub fn open(&self) {
        self.server.open_gate();
    }

    /// Records the replaced generations that may still drain, oldest first (the
    /// predecessor last): a reload of this process counts them against
    /// `reload.max_old_generations` and has the oldest close its tunnels at the cap.
    ///
    /// A pidfd of each is opened now, while the pid is known to be that generation's (the
    /// predecessor just named them): a later reload signals them through it, never a
    /// process that reused the pid. Pids already gone are left out.
    pub fn set_older(&mut self, older: Vec<u32>) {
        self.older = older
            .into_iter()
            .filter_map(|pid| crate::pidfd::Owner::open(pid).map(|o| (pid, o)))
            .collect();
    }

    /// Keeps answering the draining predecessor's heartbeat on `chan` until it is gone;
    /// a stop by signal tells it `Stopping`, so that it does not take over again.
    /// `first` runs right after the first answer (fault injection).
    ///
    /// Ticket keys handed over by the predecessor start rotating on their schedule after
    /// that first answer (the takeover: the predecessor stops accepting), or when the
    /// predecessor is gone.
    pub fn answer_predecessor(&mut self, chan: Channel, first: impl FnOnce() + Send + 'static) {
        let (tx, rx) = oneshot::channel();
        let stopping = async {
            let _ = rx.await;
        };
        let keys = self.tickets.clone();
        let resume = move || {
            if let Some(k) = &keys {
                k.resume();
            }
        };
        let on_first = {
            let resume = resume.clone();
            move || {
                resume();
                first();
            }
        };
        let task = tokio::spawn(async move {
            protocol::answer_heartbeats(chan, stopping, on_first, None).await;
            resume();
        });
        self.predecessor = Some((tx, task));
    }

    /// The ticket-key state to hand to a successor: only in an fd-pass handoff (the
    /// process family goes on), and only when `tls.share_ticket_keys` is on. The keys stop
    /// rotating until the handoff ends ([`Instance::resume_ticket_rotation`] if it fails;
    /// never again once taken over), so that both processes seal with the same key.
    fn shared_tickets(&self, mode: ReloadMode) -> Option<crate::tls::TicketState> {
        let share = self.cfg.tls.as_ref().is_some_and(|t| t.share_ticket_keys);
        if mode != ReloadMode::FdPass || !share {
            return None;
        }
        let keys = self.tickets.as_ref()?;
        keys.hold();
        keys.export()
    }

    /// Lets this process's ticket keys rotate on their schedule again: after a failed
    /// handoff, when serving again, and in a successor once its takeover is confirmed.
    pub fn resume_ticket_rotation(&self) {
        if let Some(k) = &self.tickets {
            k.resume();
        }
    }

    /// This process's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Emits the `ready` event with the bound addresses.
    pub fn announce_ready(&self) {
        self.events.emit(EventKind::Ready {
            generation: self.generation,
            addrs: self.addrs.iter().map(ToString::to_string).collect(),
        });
    }

    /// Serves until stopped; returns the exit code.
    ///
    /// `control` is the control socket to accept upgrades on; `master` the link to a
    /// master (its closing stops this process gracefully).
    pub async fn run(
        mut self,
        control: Option<(ControlPath, UnixListener)>,
        master: Option<Channel>,
    ) -> i32 {
        // The master's link is served by a task of its own (it answers the master's
        // heartbeat); its end is this process's signal to stop.
        // It also installs the ticket keys the master pushes after each rotation.
        let mut master = master.map(|chan| {
            let (closed_tx, closed) = oneshot::channel::<()>();
            let keys = self.tickets.clone();
            tokio::spawn(async move {
                protocol::answer_heartbeats(chan, std::future::pending(), || {}, keys).await;
                let _ = closed_tx.send(());
            });
            closed
        });
        let (notes_tx, mut notes) = mpsc::channel::<handoff::Note>(4);
        let mut life = Life {
            control: control.map(|(path, listener)| Control::new(path, listener)),
            busy: false,
            retiring: None,
            stopping: false,
            notes_tx,
        };
        loop {
            let step = tokio::select! {
                action = self.signals.next() => self.on_signal(action, &mut life).await,
                Some(request) = next_request(&mut life.control) => {
                    self.on_request(request, &mut life);
                    Step::Continue
                }
                Some(note) = notes.recv() => self.on_note(note, &mut life).await,
                report = drained(&mut life.retiring) => {
                    self.report_drained(report);
                    Step::Exit(0)
                }
                () = wait_closed(&mut master) => {
                    tracing::info!("the master is gone: graceful stop");
                    life.stopping = true;
                    if let Some(c) = &mut life.control {
                        c.close();
                    }
                    self.drain_until_done().await;
                Step::Exit(0)
                }
            };
            if let Step::Exit(code) = step {
                self.release_predecessor().await;
                return self.exit(code);
            }
        }
    }

    async fn on_signal(&mut self, action: SignalAction, life: &mut Life) -> Step {
        match action {
            SignalAction::GracefulStop => {
                tracing::info!("SIGTERM: graceful stop");
                self.release_predecessor().await;
                life.stopping = true;
                if let Some(c) = &mut life.control {
                    c.close();
                }
                self.notifier.stopping();
                if life.retiring.is_some() {
                    // Already draining: the drain's end is the exit.
                    return Step::Continue;
                }
                self.drain_until_done().await;
                Step::Exit(0)
            }
            SignalAction::CloseTunnels => {
                self.close_tunnels();
                Step::Continue
            }
            SignalAction::FastStop => {
                tracing::info!("fast stop");
                self.release_predecessor().await;
                if let Some(c) = &mut life.control {
                    c.close();
                }
                self.notifier.stopping();
                Step::Exit(0)
            }
            other => {
                tracing::info!(
                    "{other:?} ignored: replace this process with `refproxy --upgrade-from`"
                );
                Step::Continue
            }
        }
    }

    /// Tells a draining predecessor `Stopping` (and waits until it is written, bounded):
    /// from now on it must not serve again when this process goes away. Called when this
    /// process stops, and when it hands over itself (its own successor then watches the
    /// newest generation).
    async fn release_predecessor(&mut self) {
        if let Some((tx, task)) = self.predecessor.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(crate::control::STEP_TIMEOUT, task).await;
        }
    }

    async fn on_note(&mut self, note: handoff::Note, life: &mut Life) -> Step {
        match note {
            handoff::Note::TakenOver(done) => {
                if let Some(c) = &mut life.control {
                    c.close();
                }
                self.release_predecessor().await;
                self.events.emit(EventKind::ReloadDone {
                    generation: done.generation,
                    new_pid: done.new_pid,
                    mode: done.mode,
                });
                // After a naive reload, closing our own sockets resets what is queued on
                // them: the loss that this mode shows. After fd passing they are kept, to
                // serve again if the successor is lost.
                let keep = done.mode != ReloadMode::Naive;
                life.retiring = Some(self.begin_drain(keep).await);
                Step::Continue
            }
            handoff::Note::Failed { reason, successor } => {
                if let Some(c) = &mut life.control {
                    c.reclaim();
                }
                self.resume_ticket_rotation();
                if let Some(successor) = successor {
                    self.give_up(successor, life);
                }
                self.events.emit(EventKind::ReloadFailed {
                    generation: self.generation,
                    reason,
                });
                life.busy = false;
                if !life.stopping {
                    self.notifier.ready(false);
                }
                Step::Continue
            }
            handoff::Note::SuccessorGone => {
                if !life.stopping
                    && life.retiring.is_none()
                    && let Some(c) = &mut life.control
                {
                    c.reclaim();
                }
                Step::Continue
            }
            handoff::Note::Lost { reason, successor } => {
                if life.stopping || life.retiring.is_none() {
                    tracing::warn!("{reason}; not serving again: this process is stopping");
                    return Step::Continue;
                }
                tracing::error!("{reason}: serving again");
                match self.serve_again() {
                    Ok(()) => self.resume_ticket_rotation(),
                    Err(e) => {
                        tracing::error!("cannot serve again: {e}");
                        return Step::Continue;
                    }
                }
                self.give_up(successor, life);
                // The abandoned drain goes on by itself; its connections end as they would.
                life.retiring = None;
                life.busy = false;
                if let Some(c) = &mut life.control {
                    c.reclaim();
                }
                self.events.emit(EventKind::ReloadFailed {
                    generation: self.generation,
                    reason: format!("{reason}; generation {} serves again", self.generation),
                });
                self.notifier.ready(true);
                Step::Continue
            }
        }
    }

    /// Asks a successor that was given up to stop (it drains what it accepted, if anything),
    /// and checks the control socket path again once it has exited.
    fn give_up(&self, successor: handoff::Successor, life: &Life) {
        stop_process(successor.pid);
        if let Some(pidfd) = successor.pidfd {
            let notes = life.notes_tx.clone();
            let within = self.cfg.drain.deadline + crate::control::STEP_TIMEOUT;
            tokio::spawn(async move {
                if pidfd.exited_within(within).await {
                    let _ = notes.send(handoff::Note::SuccessorGone).await;
                }
            });
        }
    }

    /// Starts a new server on this process's listening sockets (bound again after a naive
    /// reload closed them) after its successor was lost.
    fn serve_again(&mut self) -> Result<(), ProxyError> {
        let listeners = match &self.listeners {
            Some(l) => l.clone(),
            None => Arc::new(crate::listeners::bind_all(&self.addrs)?),
        };
        let server = held_server(&listeners, &self.cfg, self.generation, self.tickets.clone())?;
        server.open_gate();
        self.server = Arc::new(server);
        self.listeners = Some(listeners);
        Ok(())
    }

    fn on_request(&self, request: Request, life: &mut Life) {
        match request {
            Request::Upgrade {
                mut chan,
                pid,
                mode,
            } => {
                let reason = if mode == ReloadMode::MasterWorker || mode == ReloadMode::Restart {
                    Some(format!("mode {mode} is not an upgrade of a single process"))
                } else if life.busy {
                    Some("reload in progress".to_owned())
                } else {
                    None
                };
                if let Some(reason) = reason {
                    tracing::warn!("upgrade request from pid {pid} refused: {reason}");
                    tokio::spawn(async move {
                        let _ = chan.send(&Message::Refused { reason }).await;
                    });
                    return;
                }
                let Some(listeners) = self.listeners.clone() else {
                    return;
                };
                life.busy = true;
                let job = handoff::Job {
                    chan,
                    pid,
                    mode,
                    generation: self.generation,
                    listeners,
                    tickets: self.shared_tickets(mode),
                    ready_timeout: self.cfg.reload.ready_timeout,
                    takeover_timeout: self.cfg.reload.takeover_timeout,
                    events: self.events.clone(),
                    notifier: self.notifier.clone(),
                    disowner: life.control.as_ref().map(|c| c.path.disowner()),
                    notes: life.notes_tx.clone(),
                    older: self
                        .older
                        .iter()
                        .filter_map(|(pid, o)| o.try_clone().map(|o| (*pid, o)))
                        .collect(),
                    max_old: self.cfg.reload.max_old_generations,
                    // Well within the new process's wait for the welcome.
                    close_wait: crate::tunnel::close_wait(self.cfg.drain.linger)
                        .min(crate::control::STEP_TIMEOUT / 2),
                };
                tokio::spawn(job.run());
            }
            Request::Reload { mut chan } => {
                tokio::spawn(async move {
                    let reason =
                        "not a master: replace this process with `refproxy --upgrade-from`".into();
                    let _ = chan.send(&Message::Error { reason }).await;
                });
            }
        }
    }

    /// Stops accepting, drains, reports the exit with `code`, and returns `code`. SIGINT or
    /// SIGQUIT during the drain cuts it short.
    pub async fn stop_gracefully(&mut self, code: i32) -> i32 {
        self.drain_until_done().await;
        self.exit(code)
    }

    /// Stops accepting (keeping this process's copies of the listening sockets only if
    /// `keep_listeners`), reports `draining`, and drains in a task of its own.
    async fn begin_drain(&mut self, keep_listeners: bool) -> JoinHandle<DrainReport> {
        self.server.stop_accepting().await;
        if !keep_listeners {
            self.listeners = None;
        }
        self.events.emit(EventKind::Draining {
            generation: self.generation,
            connections: self.server.connections(),
        });
        let server = self.server.clone();
        let drain = tokio::spawn(async move { server.drain().await });
        // After the drain started: with `drain.tunnels = "close"`, WebSockets are being
        // closed; the count is the tunnels open at the start.
        self.report_tunnels();
        drain
    }

    /// Drains to the end for a stop (the sockets are let go: after fd passing the successor
    /// holds them, and a stopped process serves nothing again) and reports `drained`; SIGINT
    /// or SIGQUIT cuts it short.
    async fn drain_until_done(&mut self) {
        let mut drain = self.begin_drain(false).await;
        let report = loop {
            tokio::select! {
                report = join_drain(&mut drain) => break report,
                action = self.signals.next() => match action {
                    SignalAction::FastStop => {
                        tracing::info!("{action:?} while draining: exiting now");
                        return;
                    }
                    SignalAction::CloseTunnels => self.close_tunnels(),
                    other => tracing::info!("{other:?} while draining: already stopping"),
                },
            }
        };
        self.report_drained(report);
    }

    /// SIGUSR1: ends every WebSocket tunnel with a close frame 1001.
    fn close_tunnels(&self) {
        tracing::info!(
            open = self.server.tunnels().open,
            "SIGUSR1: closing the WebSocket tunnels (1001)"
        );
        self.server.close_tunnels();
    }

    /// Reports the tunnels of this draining generation (if it ever had one).
    fn report_tunnels(&self) {
        let t = self.server.tunnels();
        if t.opened == 0 {
            return;
        }
        self.events.emit(EventKind::Tunnels {
            generation: self.generation,
            open: t.open,
            going_away: t.going_away,
            cut: t.cut,
        });
    }

    /// Emits this generation's ledger counters (once per process: at its exit).
    fn report_counters(&self) {
        self.events.emit(EventKind::Counters {
            generation: self.generation,
            counters: self.server.counters(),
        });
    }

    fn report_drained(&self, report: DrainReport) {
        tracing::info!(
            open_at_start = report.open_at_start,
            idle_closed = report.idle_closed,
            raced = report.raced,
            forced = report.forced,
            cut = report.cut,
            cut_requests = report.cut_requests,
            "drained"
        );
        self.report_tunnels();
        self.events.emit(EventKind::Drained {
            generation: self.generation,
            forced: report.forced,
            cut: report.cut,
            cut_requests: report.cut_requests,
        });
    }

    fn exit(&self, code: i32) -> i32 {
        self.report_counters();
        self.events.emit(EventKind::Exited {
            generation: self.generation,
            code,
        });
        code
    }
}

/// A server of this process on dups of `listeners`, its accept gate still closed; with a
/// `[tls]` config, its TLS listeners seal tickets with `tickets`.
fn held_server(
    listeners: &[Listener],
    cfg: &Arc<Config>,
    generation: u64,
    tickets: Option<Arc<TicketKeys>>,
) -> Result<Server, ProxyError> {
    let std_listeners = listeners
        .iter()
        .map(Listener::to_std)
        .collect::<Result<Vec<_>, _>>()?;
    let id = Identity {
        pid: std::process::id(),
        generation,
    };
    let tls = match (&cfg.tls, tickets) {
        (Some(t), Some(keys)) => Some(
            Terminator::new(t, std_listeners.len(), keys)
                .map_err(crate::serve::ServeError::from)?,
        ),
        _ => None,
    };
    Ok(Server::start_held_tls(std_listeners, cfg.clone(), id, tls)?)
}

/// Asks a successor that was given up to stop (it drains what it accepted, if anything).
fn stop_process(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
        tracing::debug!("SIGTERM to pid {pid}: {e}");
    }
}

async fn next_request(control: &mut Option<Control>) -> Option<Request> {
    match control {
        Some(c) if c.task.is_some() => c.requests.recv().await,
        _ => std::future::pending().await,
    }
}

async fn drained(retiring: &mut Option<JoinHandle<DrainReport>>) -> DrainReport {
    match retiring {
        Some(drain) => join_drain(drain).await,
        None => std::future::pending().await,
    }
}

async fn join_drain(drain: &mut JoinHandle<DrainReport>) -> DrainReport {
    drain.await.unwrap_or_else(|e| {
        tracing::error!("the drain task failed: {e}");
        DrainReport::default()
    })
}

async fn wait_closed(master: &mut Option<oneshot::Receiver<()>>) {
    match master {
        Some(closed) => {
            let _ = closed.await;
        }
        None => std::future::pending().await,
    }
}
