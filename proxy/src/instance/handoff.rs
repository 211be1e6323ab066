//! The old-process side of one upgrade request, run as its own task so signals and other
//! requests are still served while the successor starts.
//!
//! The job hands the sockets over, takes the commit, confirms it, and waits for the
//! successor to say that it accepts (`Serving`); only then does the old process stop
//! accepting. While the old process drains, the job keeps a heartbeat with the successor:
//! if the successor dies or stops answering before the old process has exited, the old
//! process serves again. Every outcome goes back to the instance's loop as a [`Note`].

use std::sync::Arc;
use std::time::Duration;

use reloadbench_model::event::{EventKind, ReloadMode};
use tokio::sync::mpsc;

use super::Committed;
use crate::control::Disowner;
use crate::control::protocol::{self, Message, Offer, Watch};
use crate::fdpass::Channel;
use crate::listeners::Listener;
use crate::phase::{Events, Notifier};
use crate::pidfd::Owner;

/// What a handoff job tells the instance's loop.
#[derive(Debug)]
pub(super) enum Note {
    /// The successor accepts connections: stop accepting and drain.
    TakenOver(Committed),
    /// The reload failed before the successor took over: keep serving. `successor` is the
    /// pid of a successor that committed (it may still be alive: it is told to stop).
    Failed {
        reason: String,
        successor: Option<Successor>,
    },
    /// The successor that took over died or stopped answering: serve again.
    Lost {
        reason: String,
        successor: Successor,
    },
    /// A successor that was given up has exited: the control socket path is checked again
    /// (it may have renamed its socket over the path late, and removed it on exit).
    SuccessorGone,
}

/// A successor that committed: its pid, and a pidfd to see it exit.
#[derive(Debug)]
pub(super) struct Successor {
    pub(super) pid: u32,
    pub(super) pidfd: Option<Owner>,
}

/// One accepted upgrade request.
pub(super) struct Job {
    pub(super) chan: Channel,
    pub(super) pid: u32,
    pub(super) mode: ReloadMode,
    pub(super) generation: u64,
    pub(super) listeners: Arc<Vec<Listener>>,
    /// The TLS session-ticket keys to hand over (fd-pass only, when shared).
    pub(super) tickets: Option<crate::tls::TicketState>,
    pub(super) ready_timeout: Duration,
    pub(super) takeover_timeout: Duration,
    pub(super) events: Events,
    pub(super) notifier: Notifier,
    pub(super) disowner: Option<Disowner>,
    pub(super) notes: mpsc::Sender<Note>,
    /// This process's older generations that may still drain, oldest first: pids and
    /// pidfds opened when the pids were handed over.
    pub(super) older: Vec<(u32, Owner)>,
    /// `reload.max_old_generations`.
    pub(super) max_old: u32,
    /// How long the oldest generation is given to exit once told to close its tunnels.
    pub(super) close_wait: Duration,
}

impl Job {
    pub(super) async fn run(mut self) {
        tracing::info!("upgrade to pid {} ({})", self.pid, self.mode);
        self.events.emit(EventKind::ReloadStarted {
            generation: self.generation,
            mode: self.mode,
        });
        self.notifier.reloading();
        let older = make_room(
            std::mem::take(&mut self.older),
            self.max_old,
            self.close_wait,
        )
        .await;
        let next = self.generation + 1;
        let offer = Offer {
            generation: next,
            listeners: &self.listeners,
            send_sockets: self.mode == ReloadMode::FdPass,
            expect_pid: None,
            tickets: self.tickets.take(),
            older,
        };
        let events = self.events.clone();
        let result = protocol::give(&mut self.chan, &offer, self.ready_timeout, |sockets| {
            events.emit(EventKind::HandoffDone {
                generation: next,
                sockets,
            });
        })
        .await;
        let accepted = match result {
            Ok(accepted) => accepted,
            Err(e) => return self.note_failed(e.to_string(), None).await,
        };
        let new_pid = accepted.pid;
        let first = Successor {
            pid: new_pid,
            pidfd: Owner::open(new_pid),
        };
        // Give up the control socket path before confirming: from the confirmation on, the
        // successor may rename its own socket over it.
        if let Some(d) = self.disowner.as_ref().filter(|_| accepted.takes_path) {
            d.disown();
        }
        if let Err(e) = self.chan.send(&Message::Committed).await {
            let reason = format!("could not confirm the commit to pid {new_pid}: {e}");
            return self.note_failed(reason, Some(first)).await;
        }
        // Until the successor accepts and has taken the path (its first heartbeat answer),
        // this process keeps accepting: a successor that dies or hangs now costs nothing.
        if let Err(e) = protocol::await_serving(&mut self.chan, self.takeover_timeout).await {
            let reason = format!("generation {next} (pid {new_pid}) did not take over: {e}");
            return self.note_failed(reason, Some(first)).await;
        }
        if let Some(end) = protocol::ping(&mut self.chan, self.takeover_timeout).await {
            let why = end.why();
            let reason = format!("generation {next} (pid {new_pid}) did not take over: {why}");
            return self.note_failed(reason, Some(first)).await;
        }
        let committed = Committed {
            new_pid,
            generation: next,
            mode: self.mode,
        };
        if self.notes.send(Note::TakenOver(committed)).await.is_err() {
            return;
        }
        let watch =
            protocol::watch_successor(&mut self.chan, protocol::HEARTBEAT, self.takeover_timeout)
                .await;
        match watch {
            Watch::Stopping => {
                tracing::info!("generation {next} (pid {new_pid}) stops on purpose");
            }
            lost @ (Watch::Exited | Watch::Lost(_)) => {
                let reason = format!("generation {next} (pid {new_pid}) was lost: {}", lost.why());
                let _ = self
                    .notes
                    .send(Note::Lost {
                        reason,
                        successor: first,
                    })
                    .await;
            }
        }
    }

    async fn note_failed(self, reason: String, successor: Option<Successor>) {
        tracing::warn!("upgrade to pid {} failed: {reason}", self.pid);
        // Closing the connection first: a successor still waiting for `Committed` sees the
        // end and steps back.
        drop(self.chan);
        let _ = self.notes.send(Note::Failed { reason, successor }).await;
    }
}

/// Before a handoff: the older generations still alive (`older`, oldest first) plus this
/// process, which is about to become old too, may not exceed `max_old`. When they would,
/// the oldest is told to end its WebSocket tunnels (SIGUSR1, close frames 1001), which is
/// what usually holds it, and its exit is awaited up to `wait`; the handoff goes on either
/// way (the new process waits for the welcome only so long). Returns the older
/// generations still alive, for the successor's count.
///
/// The signal goes through each generation's pidfd (opened when its pid was handed
/// over), so a process that reused the pid of a generation that has exited is never
/// signalled.
async fn make_room(older: Vec<(u32, Owner)>, max_old: u32, wait: Duration) -> Vec<u32> {
    let mut alive: Vec<(u32, Owner)> = older.into_iter().filter(|(_, o)| !o.has_exited()).collect();
    while alive.len() + 1 > max_old as usize && !alive.is_empty() {
        let (pid, owner) = alive.remove(0);
        tracing::info!(
            "{} old generations would drain (reload.max_old_generations = {max_old}): pid {pid} closes its tunnels",
            alive.len() + 2
        );
        if let Err(e) = owner.signal(nix::sys::signal::Signal::SIGUSR1) {
            tracing::info!("pid {pid} not signalled: {e}");
        }
        if !owner.exited_within(wait).await {
            tracing::warn!("pid {pid} still draining after closing its tunnels");
            alive.insert(0, (pid, owner));
            break;
        }
    }
    alive.into_iter().map(|(pid, _)| pid).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[tokio::test]
    async fn make_room_signals_the_oldest_through_its_pidfd_and_skips_the_exited() {
        let mut oldest = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_owner = Owner::open(gone.id()).unwrap();
        gone.wait().unwrap();
        let older = vec![
            (gone.id(), gone_owner),
            (oldest.id(), Owner::open(oldest.id()).unwrap()),
        ];
        // Cap 1: this process alone may drain; the oldest alive is told to close its
        // tunnels (SIGUSR1, whose default action ends `sleep`).
        let alive = make_room(older, 1, Duration::from_secs(30)).await;
        assert!(alive.is_empty(), "{alive:?}");
        let status = oldest.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGUSR1));
    }
}
