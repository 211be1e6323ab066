//! Starting one worker: spawn `refproxy --worker FD` with one end of a socketpair, relay its
//! events, hand it the listening sockets over the socketpair, and wait for its commit and
//! its word that it accepts.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reloadbench_model::event::ReloadMode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;

use crate::control::STEP_TIMEOUT;
use crate::control::protocol::{self, Message, Offer, Watch};
use crate::fdpass::Channel;
use crate::listeners::Listener;
use crate::phase::Events;

/// What every worker is started with.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) config: PathBuf,
    /// Fault injection for replacement workers (generation ≥ 2).
    pub(super) faults: super::Faults,
    pub(super) ready_timeout: Duration,
    pub(super) takeover_timeout: Duration,
    /// The master's TLS session-ticket keys, handed to every worker (never in argv, the
    /// environment or a file: in the `Welcome` message on the worker's socketpair).
    pub(super) tickets: Option<Arc<crate::tls::TicketKeys>>,
    /// The master's ticket keys after each rotation, pushed to every worker.
    pub(super) key_updates: tokio::sync::watch::Receiver<Option<crate::tls::TicketState>>,
}

/// News about worker processes, for the master loop.
#[derive(Debug)]
pub(super) enum Note {
    /// A worker process exists.
    Started(u32),
    /// A worker process exited and was reaped.
    Exited(u32, std::process::ExitStatus),
}

/// A worker that took over. The master's end of its socketpair is held by the task that
/// watches it (`watch`); the worker stops when it closes.
#[derive(Debug)]
pub(super) struct Worker {
    pub(super) pid: u32,
    pub(super) generation: u64,
}

/// Spawns a worker of `generation`, hands it `listeners`, waits for its commit. On failure
/// the worker is killed and the reason returned.
pub(super) async fn spawn_worker(
    spec: &Spec,
    generation: u64,
    listeners: &[Listener],
    events: &Events,
    notes: &mpsc::Sender<Note>,
) -> Result<Worker, String> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    // The worker's end must survive exec. Only the master loop spawns, one worker at a time,
    // so no other child can inherit it.
    fcntl(&theirs, FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| format!("fcntl: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(&spec.config)
        .arg("--worker")
        .arg(theirs.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env_remove("NOTIFY_SOCKET");
    if generation > 1 {
        if spec.faults.fail_before_ready {
            cmd.arg("--fail-before-ready");
        }
        if let Some(point) = spec.faults.freeze_at {
            cmd.arg("--freeze-at").arg(point.as_arg());
        }
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn worker: {e}"))?;
    drop(theirs);
    let pid = child.id().ok_or("the worker exited at spawn")?;
    let _ = notes.send(Note::Started(pid)).await;
    let stdout = child.stdout.take();
    tokio::spawn(relay_and_reap(
        child,
        stdout,
        events.clone(),
        notes.clone(),
        pid,
    ));

    // Rotations from now on are pushed once the worker took over; one that lands between
    // here and the welcome's export is sent again, which changes nothing.
    let mut updates = spec.key_updates.clone();
    updates.mark_unchanged();
    let result = handoff(ours, spec, generation, listeners, pid).await;
    match result {
        Ok(link) => {
            tokio::spawn(watch(link, pid, spec.takeover_timeout, updates));
            Ok(Worker { pid, generation })
        }
        Err(Failure { reason, committed }) => {
            // A worker that got `Committed` may have accepted connections: it drains them.
            let signal = if committed {
                Signal::SIGTERM
            } else {
                Signal::SIGKILL
            };
            let _ = kill(Pid::from_raw(pid as i32), signal);
            Err(reason)
        }
    }
}

/// Why a handoff to a worker failed, and whether the worker had been told `Committed`.
struct Failure {
    reason: String,
    committed: bool,
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure {
            reason,
            committed: false,
        }
    }
}

async fn handoff(
    ours: std::os::unix::net::UnixStream,
    spec: &Spec,
    generation: u64,
    listeners: &[Listener],
    pid: u32,
) -> Result<Channel, Failure> {
    ours.set_nonblocking(true).map_err(|e| e.to_string())?;
    let stream = tokio::net::UnixStream::from_std(ours).map_err(|e| e.to_string())?;
    let mut link = Channel::new(stream, STEP_TIMEOUT);
    match link.recv::<Message>().await {
        Ok(Message::Hello {
            mode: ReloadMode::MasterWorker,
            ..
        }) => {}
        Ok(other) => return Err(format!("worker said {other:?} instead of hello").into()),
        Err(e) => return Err(format!("worker did not say hello: {e}").into()),
    }
    let offer = Offer {
        generation,
        listeners,
        send_sockets: true,
        expect_pid: Some(pid),
        tickets: spec.tickets.as_ref().and_then(|k| k.export()),
        // The master counts its old workers itself.
        older: Vec::new(),
    };
    protocol::give(&mut link, &offer, spec.ready_timeout, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    link.send(&Message::Committed)
        .await
        .map_err(|e| format!("confirming the commit: {e}"))?;
    // The worker accepts only after the confirmation; it says so before it counts.
    protocol::await_serving(&mut link, spec.takeover_timeout)
        .await
        .map_err(|e| Failure {
            reason: e.to_string(),
            committed: true,
        })?;
    Ok(link)
}

/// Pings a worker every [`protocol::HEARTBEAT`] for as long as it lives, and pushes it the
/// master's ticket keys after each rotation. One that does not answer within `within`
/// (stopped, deadlocked) is killed: its reaper then reports the exit, and the master
/// replaces it as it replaces a worker that died.
async fn watch(
    mut link: Channel,
    pid: u32,
    within: Duration,
    updates: tokio::sync::watch::Receiver<Option<crate::tls::TicketState>>,
) {
    let updates = Some(updates);
    match protocol::watch_and_push(&mut link, protocol::HEARTBEAT, within, updates).await {
        Watch::Exited | Watch::Stopping => {}
        Watch::Lost(why) => {
            tracing::error!("worker {pid} is hung ({why}): SIGKILL");
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Copies the worker's event lines to the master's events, then reaps it.
async fn relay_and_reap(
    mut child: Child,
    stdout: Option<ChildStdout>,
    events: Events,
    notes: mpsc::Sender<Note>,
    pid: u32,
) {
    if let Some(stdout) = stdout {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(mut line)) => {
                    line.push('\n');
                    events.write_line(&line);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("reading worker {pid}'s events: {e}");
                    break;
                }
            }
        }
    }
    match child.wait().await {
        Ok(status) => {
            let _ = notes.send(Note::Exited(pid, status)).await;
        }
        Err(e) => tracing::error!("waiting for worker {pid}: {e}"),
    }
}
