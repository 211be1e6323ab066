//! The worker side of master-worker: receive the sockets from the master over the inherited
//! socketpair, serve, and stop gracefully when the master says so (SIGTERM) or is gone
//! (the socketpair closes).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use reloadbench_model::event::ReloadMode;

use crate::cli::FreezePoint;
use crate::config;
use crate::control::{self, protocol};
use crate::error::ProxyError;
use crate::fdpass::Channel;
use crate::instance::{Instance, Setup};
use crate::listeners;
use crate::phase::{Events, Notifier};

/// Takes ownership of the socketpair end the master left open at `fd`.
pub fn link_from_fd(fd: RawFd) -> Result<Channel, ProxyError> {
    #[allow(unsafe_code)]
    // SAFETY: F_GETFD only reads the fd flags and fails cleanly on a closed fd. If it is open,
    // it is the socketpair end the master left open for us with `--worker FD`; nothing else in
    // this process refers to it, so the OwnedFd becomes its only owner.
    let owned = unsafe {
        if fd < 3 || libc::fcntl(fd, libc::F_GETFD) < 0 {
            return Err(ProxyError::Usage(format!("--worker {fd}: not an open fd")));
        }
        OwnedFd::from_raw_fd(fd)
    };
    let io = |e| ProxyError::io("worker link", e);
    let std = std::os::unix::net::UnixStream::from(owned);
    socket2::SockRef::from(&std).set_cloexec(true).map_err(io)?;
    std.set_nonblocking(true).map_err(io)?;
    let stream = tokio::net::UnixStream::from_std(std).map_err(io)?;
    Ok(Channel::new(stream, control::STEP_TIMEOUT))
}

/// Runs a worker: takes the sockets from the master, serves, returns the exit code.
pub async fn run(
    config_path: &Path,
    mut link: Channel,
    faults: super::Faults,
    events: Events,
) -> Result<i32, ProxyError> {
    let taken = protocol::take(&mut link, ReloadMode::MasterWorker)
        .await
        .map_err(|e| ProxyError::Master(format!("handoff from the master: {e}")))?;
    let cfg = match config::load(config_path) {
        Ok(cfg) => Arc::new(cfg),
        Err(e) => {
            protocol::fail(&mut link, &format!("invalid config: {e}")).await;
            return Err(e.into());
        }
    };
    if faults.fail_before_ready {
        return Err(ProxyError::InjectedFailure);
    }
    let listeners = match listeners::adopt(&cfg.listen, taken.listeners) {
        Ok((listeners, _closed)) => listeners,
        Err(e) => {
            protocol::fail(&mut link, &e.to_string()).await;
            return Err(e.into());
        }
    };
    let takeover_timeout = cfg.reload.takeover_timeout;
    let setup = Setup {
        cfg,
        generation: taken.generation,
        listeners,
        events,
        notifier: Notifier::default(),
        tickets: taken.tickets,
    };
    let mut instance = match Instance::start_held(setup) {
        Ok(i) => i,
        Err(e) => {
            protocol::fail(&mut link, &e.to_string()).await;
            return Err(e);
        }
    };
    let freeze = faults.freeze_at;
    if let Err(e) = instance.commit(&mut link, false, freeze).await {
        // Nothing was accepted: stepping back loses nothing.
        tracing::error!("the master did not take the commit: {e}");
        return Ok(instance.stop_gracefully(1).await);
    }
    if let Err(e) = instance
        .serve_and_confirm(&mut link, takeover_timeout, freeze)
        .await
    {
        // The master gave this worker up: it keeps the previous one, this one drains.
        tracing::error!("the master did not confirm the takeover: {e}");
        return Ok(instance.stop_gracefully(1).await);
    }
    FreezePoint::apply(freeze, FreezePoint::AfterTakeover);
    Ok(instance.run(None, Some(link)).await)
}
