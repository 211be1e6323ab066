//! The signal table.
//!
//! | signal | plain / upgraded process, worker | master |
//! |---|---|---|
//! | SIGTERM | graceful stop: stop accepting, drain, exit 0 | forward to workers, wait, exit 0 |
//! | SIGINT, SIGQUIT | fast stop: exit 0 now, open connections are cut | same, forwarded to workers |
//! | SIGUSR2 | ignored (logged) | replace the worker |
//! | SIGHUP | ignored (logged) | re-read the config, replace the worker |
//! | SIGUSR1 | end the WebSocket tunnels open now (draining: later ones too) with 1001 | ignored (logged) |
//!
//! Handlers are installed before a process reports ready, so a signal sent right after the
//! `ready` event is never lost or fatal.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// What a received signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// SIGTERM: stop accepting, drain, exit.
    GracefulStop,
    /// SIGINT or SIGQUIT: exit now.
    FastStop,
    /// SIGUSR2: replace the worker (master only).
    Upgrade,
    /// SIGHUP: re-read the config and replace the worker (master only).
    Reload,
    /// SIGUSR1: end every WebSocket tunnel politely (close frame 1001); a master sends it
    /// to its oldest draining worker when `reload.max_old_generations` is reached.
    CloseTunnels,
}

/// The installed handlers.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
    quit: Signal,
    usr2: Signal,
    hup: Signal,
    usr1: Signal,
}

impl Signals {
    /// Installs handlers for every signal of the table. Must run inside a tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            usr2: signal(SignalKind::user_defined2())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> SignalAction {
        tokio::select! {
            _ = self.term.recv() => SignalAction::GracefulStop,
            _ = self.int.recv() => SignalAction::FastStop,
            _ = self.quit.recv() => SignalAction::FastStop,
            _ = self.usr2.recv() => SignalAction::Upgrade,
            _ = self.hup.recv() => SignalAction::Reload,
            _ = self.usr1.recv() => SignalAction::CloseTunnels,
        }
    }
}
