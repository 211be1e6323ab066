//! One serving process — plain, upgraded or worker — from READY to exit.
//!
//! An [`Instance`] owns the HTTP server, a copy of every listening socket (to hand them to
//! a successor) and the signal handlers. [`Instance::run`] serves until a signal, a
//! committed handoff on the control socket, or the loss of the master link, then stops:
//! gracefully (stop accepting, drain per the config's drain policy, exit as soon as the
//! last connection is done) or fast.

mod handoff;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reloadbench_model::event::{EventKind, ReloadMode};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::control::{self, ControlPath, Request, protocol::Message};
use crate::error::ProxyError;
use crate::fdpass::Channel;
use crate::listeners::Listener;
use crate::phase::{Events, Notifier};
use crate::serve::{Identity, Server};
use crate::signals::{SignalAction, Signals};

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
}

/// A started serving process.
pub struct Instance {
    server: Server,
    listeners: Option<Arc<Vec<Listener>>>,
    generation: u64,
    cfg: Arc<Config>,
    events: Events,
    notifier: Notifier,
    signals: Signals,
}

/// A committed handoff: the successor is READY.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Committed {
    pub(crate) new_pid: u32,
    pub(crate) generation: u64,
    pub(crate) mode: ReloadMode,
}

impl Instance {
    /// Installs the signal handlers, then starts serving on the listeners. Does not report
    /// ready: call [`Instance::announce_ready`].
    pub fn start(setup: Setup) -> Result<Instance, ProxyError> {
        let signals = Signals::install().map_err(ProxyError::Signals)?;
        let std_listeners = setup
            .listeners
            .iter()
            .map(Listener::to_std)
            .collect::<Result<Vec<_>, _>>()?;
        let id = Identity {
            pid: std::process::id(),
            generation: setup.generation,
        };
        let server = Server::start(std_listeners, setup.cfg.clone(), id)?;
        Ok(Instance {
            server,
            listeners: Some(Arc::new(setup.listeners)),
            generation: setup.generation,
            cfg: setup.cfg,
            events: setup.events,
            notifier: setup.notifier,
            signals,
        })
    }

    /// This process's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Emits the `ready` event with the bound addresses.
    pub fn announce_ready(&self) {
        let addrs = self
            .listeners
            .iter()
            .flat_map(|ls| ls.iter().map(|l| l.addr.to_string()))
            .collect();
        self.events.emit(EventKind::Ready {
            generation: self.generation,
            addrs,
        });
    }

    /// Serves until stopped; returns the exit code.
    ///
    /// `control` is the control socket to accept upgrades on; `master` the link to a
    /// master (its closing stops this process gracefully).
    pub async fn run(
        mut self,
        control: Option<(ControlPath, UnixListener)>,
        mut master: Option<Channel>,
    ) -> i32 {
        let (path, mut requests, accept_task) = match control {
            Some((path, listener)) => {
                let (task, rx) = control::listen(listener);
                (Some(path), rx, Some(task))
            }
            None => (None, mpsc::channel(1).1, None),
        };
        let busy = Arc::new(AtomicBool::new(false));
        let (commit_tx, mut commit_rx) = mpsc::channel::<Committed>(1);
        // Stopping first closes the control socket, so no upgrade starts against a process
        // that is going away.
        let stop_control = |task: &Option<tokio::task::JoinHandle<()>>| {
            if let Some(task) = task {
                task.abort();
            }
        };
        let code = loop {
            tokio::select! {
                action = self.signals.next() => match action {
                    SignalAction::GracefulStop => {
                        tracing::info!("SIGTERM: graceful stop");
                        stop_control(&accept_task);
                        requests.close();
                        self.notifier.stopping();
                        break self.stop_gracefully(0).await;
                    }
                    SignalAction::FastStop => {
                        tracing::info!("fast stop");
                        stop_control(&accept_task);
                        self.notifier.stopping();
                        break self.exit(0);
                    }
                    other => tracing::info!(
                        "{other:?} ignored: replace this process with `refproxy --upgrade-from`"
                    ),
                },
                Some(request) = requests.recv() => {
                    self.on_request(request, &busy, &path, &commit_tx);
                }
                Some(done) = commit_rx.recv() => {
                    stop_control(&accept_task);
                    requests.close();
                    self.events.emit(EventKind::ReloadDone {
                        generation: done.generation,
                        new_pid: done.new_pid,
                        mode: done.mode,
                    });
                    break self.stop_gracefully(0).await;
                }
                () = wait_closed(&mut master) => {
                    tracing::info!("the master is gone: graceful stop");
                    stop_control(&accept_task);
                    break self.stop_gracefully(0).await;
                }
            }
        };
        if let Some(task) = accept_task {
            task.abort();
        }
        drop(path);
        code
    }

    fn on_request(
        &self,
        request: Request,
        busy: &Arc<AtomicBool>,
        path: &Option<ControlPath>,
        commit_tx: &mpsc::Sender<Committed>,
    ) {
        match request {
            Request::Upgrade {
                mut chan,
                pid,
                mode,
            } => {
                let reason = if mode == ReloadMode::MasterWorker || mode == ReloadMode::Restart {
                    Some(format!("mode {mode} is not an upgrade of a single process"))
                } else if busy.swap(true, Ordering::SeqCst) {
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
                let job = handoff::Job {
                    chan,
                    pid,
                    mode,
                    generation: self.generation,
                    listeners,
                    ready_timeout: self.cfg.reload.ready_timeout,
                    events: self.events.clone(),
                    notifier: self.notifier.clone(),
                    disowner: path.as_ref().map(ControlPath::disowner),
                    busy: busy.clone(),
                    done: commit_tx.clone(),
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
        self.server.stop_accepting().await;
        // Our copies of the listening sockets go too: after a naive reload this closes the
        // socket (queued connections are reset); after fd passing the successor holds it.
        self.listeners = None;
        self.events.emit(EventKind::Draining {
            generation: self.generation,
            connections: self.server.connections(),
        });
        let report = tokio::select! {
            report = self.server.drain() => report,
            action = self.signals.next() => {
                tracing::info!("{action:?} while draining: exiting now");
                return self.exit(code);
            }
        };
        self.events.emit(EventKind::Drained {
            generation: self.generation,
            forced: report.forced,
        });
        self.exit(code)
    }

    fn exit(&self, code: i32) -> i32 {
        self.events.emit(EventKind::Exited {
            generation: self.generation,
            code,
        });
        code
    }
}

async fn wait_closed(master: &mut Option<Channel>) {
    match master {
        Some(chan) => chan.wait_closed().await,
        None => std::future::pending().await,
    }
}
