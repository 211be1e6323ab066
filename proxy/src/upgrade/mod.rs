//! The new-process side of a naive or fd-passing reload (`--upgrade-from SOCK --mode ...`).
//!
//! 1. Connect to the old process's control socket and say hello; learn the generation to
//!    take and the old process's addresses; with fd passing, receive the listening sockets
//!    (count first, each batch acknowledged).
//! 2. Load the config (an invalid config is reported to the old process, which keeps serving).
//! 3. Match the sockets to the config (fd-pass), or bind new `SO_REUSEPORT` sockets on the old
//!    process's addresses (naive). Bind the control socket at `PATH.<pid>.tmp`.
//! 4. Start the server with its accept gate closed, then commit (pid + generation). Once the
//!    old process confirms, open the gate, report `ready`, rename the control socket over
//!    `PATH`, and say `Serving`: the old process reports `reload_done`, stops accepting and
//!    drains. Keep answering its heartbeat until it has exited; say `Stopping` first when a
//!    signal stops this process. Notify systemd of the new main pid.
//!
//! Any failure before the confirmation exits non-zero, having accepted nothing, and leaves
//! the old process serving untouched; if the old process is gone by then, this one takes
//! over alone.

use std::path::Path;
use std::sync::Arc;

use tokio::net::UnixStream;

use crate::cli::{FreezePoint, UpgradeMode};
use crate::config;
use crate::control::{self, ControlPath, protocol};
use crate::error::ProxyError;
use crate::fdpass::Channel;
use crate::instance::{Instance, Setup};
use crate::listeners;
use crate::phase::{Events, Notifier};
use crate::pidfd::Owner;

/// Options of an upgrade.
#[derive(Debug)]
pub struct UpgradeArgs<'a> {
    /// The new config file.
    pub config: &'a Path,
    /// The old process's control socket.
    pub from: &'a Path,
    /// How to replace it.
    pub mode: UpgradeMode,
    /// Fault injection: exit 1 after receiving the sockets, before READY
    /// (`fail_before_ready`), or stop with SIGSTOP at a point of the takeover (`freeze_at`).
    pub faults: crate::master::Faults,
}

/// Replaces the process owning `args.from`; returns the exit code once this process stops.
pub async fn run(
    args: UpgradeArgs<'_>,
    events: Events,
    notifier: Notifier,
) -> Result<i32, ProxyError> {
    let stream = connect(args.from).await?;
    let mut chan = Channel::new(stream, control::STEP_TIMEOUT);
    let taken = protocol::take(&mut chan, args.mode.reload_mode())
        .await
        .map_err(|e| ProxyError::Upgrade(e.to_string()))?;
    // Opened now, while the pid surely names the old process: if the commit breaks, this
    // tells whether the old process is still there to serve.
    let owner = Owner::open(taken.owner_pid);
    tracing::info!(
        "replacing pid {} as generation {} ({} sockets received)",
        taken.owner_pid,
        taken.generation,
        taken.listeners.len()
    );
    let cfg = match config::load(args.config) {
        Ok(cfg) => Arc::new(cfg),
        Err(e) => {
            protocol::fail(&mut chan, &format!("invalid config: {e}")).await;
            return Err(e.into());
        }
    };
    if args.faults.fail_before_ready {
        return Err(ProxyError::InjectedFailure);
    }
    let freeze = args.faults.freeze_at;
    let takeover_timeout = cfg.reload.takeover_timeout;
    let prepared = prepare(&cfg, args, taken.listeners, &taken.owner_addrs);
    let (listeners, control) = match prepared {
        Ok(p) => p,
        Err(e) => {
            protocol::fail(&mut chan, &e.to_string()).await;
            return Err(e);
        }
    };
    let setup = Setup {
        cfg,
        generation: taken.generation,
        listeners,
        events: events.clone(),
        notifier: notifier.clone(),
        tickets: taken.tickets,
    };
    let mut instance = match Instance::start_held(setup) {
        Ok(i) => i,
        Err(e) => {
            protocol::fail(&mut chan, &e.to_string()).await;
            return Err(e);
        }
    };
    let mut older = taken.older;
    older.push(taken.owner_pid);
    instance.set_older(older);
    let takes_path = control.as_ref().is_some_and(|(p, _)| p.is_temporary());
    if let Err(e) = instance.commit(&mut chan, takes_path, freeze).await {
        if owner_gone(owner.as_ref(), takeover_timeout).await {
            // Nobody else serves: take over alone.
            tracing::warn!(
                "commit failed ({e}), but pid {} is gone: taking over",
                taken.owner_pid
            );
        } else {
            // The old process did not take the commit: it keeps serving. This one accepted
            // nothing, so stepping back loses nothing.
            tracing::error!("commit failed: {e}");
            events.emit(reloadbench_model::event::EventKind::ReloadFailed {
                generation: taken.generation,
                reason: format!("commit failed: {e}"),
            });
            return Ok(instance.stop_gracefully(1).await);
        }
    }
    // The old process releases the control socket path once it knows that this one
    // accepts; it alone decides, so a successor it gave up never takes the path.
    if let Err(e) = instance
        .serve_and_confirm(&mut chan, takeover_timeout, freeze)
        .await
    {
        if !owner_gone(owner.as_ref(), takeover_timeout).await {
            tracing::error!(
                "pid {} gave this process up ({e}): it serves on, this one drains",
                taken.owner_pid
            );
            return Ok(instance.stop_gracefully(1).await);
        }
        tracing::warn!("pid {} is gone ({e}): taking over alone", taken.owner_pid);
    }
    let control = match control {
        Some((mut path, listener)) => match path.promote() {
            Ok(()) => Some((path, listener)),
            Err(e) => {
                tracing::error!("cannot take over the control socket: {e}");
                None
            }
        },
        None => None,
    };
    // The first heartbeat answer tells the old process that the takeover is complete: it
    // then stops accepting and drains, and watches this one until it has exited.
    instance.answer_predecessor(chan, move || {
        FreezePoint::apply(freeze, FreezePoint::AfterTakeover);
    });
    notifier.ready(true);
    Ok(instance.run(control, None).await)
}

/// Whether the old process is gone, after a broken control connection: waits up to
/// `within` for its exit, because the end of the connection of a process that crashed can
/// arrive before its pidfd is readable. An old process that gave this one up on purpose
/// stays alive (and sends SIGTERM), so the wait never mistakes it for dead.
async fn owner_gone(owner: Option<&Owner>, within: std::time::Duration) -> bool {
    match owner {
        Some(o) => o.exited_within(within).await,
        None => false,
    }
}

/// How long a refused connect is retried: right after a commit, the control socket path
/// still names the old process's closed socket until the new owner renames its own over it.
const CONNECT_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

async fn connect(path: &Path) -> Result<UnixStream, ProxyError> {
    let deadline = tokio::time::Instant::now() + CONNECT_RETRY;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        let attempt = tokio::time::timeout(control::STEP_TIMEOUT, UnixStream::connect(path)).await;
        match attempt {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e))
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && tokio::time::Instant::now() + pause < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            Ok(Err(e)) => return Err(ProxyError::io(format!("connect to {}", path.display()), e)),
            Err(_) => {
                return Err(ProxyError::Upgrade(format!(
                    "connect to {}: timed out",
                    path.display()
                )));
            }
        }
    }
}

type Prepared = (
    Vec<listeners::Listener>,
    Option<(ControlPath, tokio::net::UnixListener)>,
);

fn prepare(
    cfg: &config::Config,
    args: UpgradeArgs<'_>,
    received: Vec<listeners::Listener>,
    owner_addrs: &[std::net::SocketAddr],
) -> Result<Prepared, ProxyError> {
    let listeners = match args.mode {
        UpgradeMode::FdPass => {
            let (listeners, closed) = listeners::adopt(&cfg.listen, received)?;
            if closed > 0 {
                tracing::info!("closed {closed} handed-over sockets the config does not use");
            }
            listeners
        }
        UpgradeMode::Naive => {
            listeners::bind_all(&listeners::resolve_against(&cfg.listen, owner_addrs))?
        }
    };
    let control = match &cfg.control_socket {
        Some(path) if same_path(path, args.from) => Some(ControlPath::bind_tmp(path)?),
        Some(path) => Some(ControlPath::bind(path)?),
        None => None,
    };
    Ok((listeners, control))
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}
