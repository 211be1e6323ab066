//! The old-process side of one upgrade request, run as its own task so signals and other
//! requests are still served while the successor starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reloadbench_model::event::{EventKind, ReloadMode};
use tokio::sync::mpsc;

use super::Committed;
use crate::control::Disowner;
use crate::control::protocol::{self, Message, Offer};
use crate::fdpass::Channel;
use crate::listeners::Listener;
use crate::phase::{Events, Notifier};

/// One accepted upgrade request.
pub(super) struct Job {
    pub(super) chan: Channel,
    pub(super) pid: u32,
    pub(super) mode: ReloadMode,
    pub(super) generation: u64,
    pub(super) listeners: Arc<Vec<Listener>>,
    pub(super) ready_timeout: Duration,
    pub(super) events: Events,
    pub(super) notifier: Notifier,
    pub(super) disowner: Option<Disowner>,
    pub(super) busy: Arc<AtomicBool>,
    pub(super) done: mpsc::Sender<Committed>,
}

impl Job {
    pub(super) async fn run(mut self) {
        tracing::info!("upgrade to pid {} ({})", self.pid, self.mode);
        self.events.emit(EventKind::ReloadStarted {
            generation: self.generation,
            mode: self.mode,
        });
        self.notifier.reloading();
        let next = self.generation + 1;
        let offer = Offer {
            generation: next,
            listeners: &self.listeners,
            send_sockets: self.mode == ReloadMode::FdPass,
            expect_pid: None,
        };
        let events = self.events.clone();
        let result = protocol::give(&mut self.chan, &offer, self.ready_timeout, |sockets| {
            events.emit(EventKind::HandoffDone {
                generation: next,
                sockets,
            });
        })
        .await;
        match result {
            Ok(accepted) => {
                let new_pid = accepted.pid;
                // Give up the control socket path before confirming: from the confirmation
                // on, the successor may rename its own socket over it.
                if let Some(d) = self.disowner.as_ref().filter(|_| accepted.takes_path) {
                    d.disown();
                }
                if let Err(e) = self.chan.send(&Message::Committed).await {
                    if let Some(d) = &self.disowner {
                        d.reclaim();
                    }
                    self.fail(format!(
                        "could not confirm the commit to pid {new_pid}: {e}"
                    ));
                    return;
                }
                // The successor renames its control socket over the path, then closes the
                // connection: waiting for that makes `reload_done` mean that the next
                // reload finds the successor at the path.
                let closed = self.chan.wait_closed();
                if tokio::time::timeout(crate::control::STEP_TIMEOUT, closed)
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "pid {new_pid} kept the control connection open after the commit"
                    );
                }
                let committed = Committed {
                    new_pid,
                    generation: next,
                    mode: self.mode,
                };
                let _ = self.done.send(committed).await;
            }
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn fail(&self, reason: String) {
        tracing::warn!("upgrade to pid {} failed: {reason}", self.pid);
        self.events.emit(EventKind::ReloadFailed {
            generation: self.generation,
            reason,
        });
        self.notifier.ready(false);
        self.busy.store(false, Ordering::SeqCst);
    }
}
