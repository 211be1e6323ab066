//! Ctrl-C and SIGTERM to reloadbench: turned into a cancellation the case
//! loop watches, so it can stop the load, stop the processes and keep the
//! finished cases.
//!
//! A second signal while that is under way kills the process group of every
//! process the run started and has not reaped yet (from its pid list) and
//! exits at once with 128 + signal.

use std::sync::{Arc, OnceLock};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::process::PidLog;

/// A cancellation that can be awaited; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Cancel {
    rx: watch::Receiver<Option<Signal>>,
    pids: Arc<OnceLock<PidLog>>,
}

/// The sending side of a [`Cancel`].
#[derive(Debug)]
pub(crate) struct CancelHandle {
    tx: watch::Sender<Option<Signal>>,
}

impl CancelHandle {
    /// Cancels with the signal that asked for it.
    pub(crate) fn cancel(&self, signal: Signal) {
        self.tx.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(signal);
                true
            } else {
                false
            }
        });
    }
}

impl Cancel {
    /// A cancellation and its trigger.
    pub(crate) fn new() -> (CancelHandle, Cancel) {
        let (tx, rx) = watch::channel(None);
        (
            CancelHandle { tx },
            Cancel {
                rx,
                pids: Arc::default(),
            },
        )
    }

    /// The run's pid list, for the hard stop on a second signal.
    pub(crate) fn watch_pids(&self, pids: PidLog) {
        let _ = self.pids.set(pids);
    }

    /// Installs SIGINT and SIGTERM handlers that cancel. Must be called in a
    /// tokio runtime.
    pub(crate) fn on_signals() -> std::io::Result<Cancel> {
        use tokio::signal::unix::{SignalKind, signal};
        let (handle, cancel) = Cancel::new();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let pids = Arc::clone(&cancel.pids);
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => handle.cancel(Signal::SIGINT),
                _ = term.recv() => handle.cancel(Signal::SIGTERM),
            }
            // A second signal: no more waiting for a graceful stop.
            let sig = tokio::select! {
                _ = int.recv() => Signal::SIGINT,
                _ = term.recv() => Signal::SIGTERM,
            };
            if let Some(p) = pids.get() {
                for pid in p.live() {
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
            }
            eprintln!("reloadbench: second {sig}: killed every process it started");
            std::process::exit(128 + sig as i32);
        });
        Ok(cancel)
    }

    /// The signal that cancelled, if any.
    pub(crate) fn signal(&self) -> Option<Signal> {
        *self.rx.borrow()
    }

    /// Resolves once cancelled (never, if the trigger is dropped uncancelled).
    pub(crate) async fn cancelled(&self) -> Signal {
        let mut rx = self.rx.clone();
        loop {
            if let Some(s) = *rx.borrow_and_update() {
                return s;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_signal_wins() {
        let (h, c) = Cancel::new();
        assert_eq!(c.signal(), None);
        h.cancel(Signal::SIGTERM);
        h.cancel(Signal::SIGINT);
        assert_eq!(c.cancelled().await, Signal::SIGTERM);
        assert_eq!(c.signal(), Some(Signal::SIGTERM));
    }
}
