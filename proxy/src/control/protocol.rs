//! The handoff protocol spoken over a control connection.
//!
//! ```text
//! new → old  Hello { pid, mode }
//! old → new  Welcome { generation, pid, addrs, sockets, tickets?, older? } | Refused { reason }
//! old → new  Batch { index, addrs } + SCM_RIGHTS fds        (fd-pass and master-worker only,
//! new → old  Ack { index, received }                         one ack per batch, ≤ 16 fds each)
//! new → old  Commit { pid, generation, takes_path }          (after the new process is READY)
//!            | Fail { reason }
//! old → new  Committed                                       (the new may accept now)
//! new → old  Serving                                         (the new accepts)
//! old → new  Release                                         (the path is the new one's)
//! old → new  Ping            new → old  Pong                 (first: taken over; then
//!                                                             while the old drains)
//! new → old  Stopping                                        (the new stops on purpose)
//! master → worker  TicketKeys { tickets }                     (between heartbeats, after a
//!                                                             rotation of the master's keys)
//! ```
//! After `Committed` the old process keeps serving until `Serving` arrives within
//! `reload.takeover_timeout`. It then releases the control socket path, and the new one
//! renames its socket over it before it answers the first ping: that answer is the
//! takeover (`reload_done`). Only then does the old process stop accepting and drain; it
//! keeps pinging the new one until it has itself exited. If the new one dies or stops
//! answering before that (and has not said `Stopping`), the old one serves again. Only the
//! old process decides: a new process that is given up gets no `Release` and never takes
//! the path.
//! `Welcome.generation` is the generation the new process takes (old + 1); `sockets` is the
//! count announced before any batch; `addrs` are the old process's bound addresses (naive
//! reloads bind those); `tickets` is the TLS session-ticket key state
//! ([`crate::tls::TicketState`]), present when the owner shares its keys
//! (`tls.share_ticket_keys`), absent otherwise and from an owner without it; `older` are the
//! pids of the owner's older generations still draining, oldest first (absent when none),
//! counted against `reload.max_old_generations`. A master also accepts `Reload` (answered `Reloaded` or `Error`).

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use reloadbench_model::event::ReloadMode;
use serde::{Deserialize, Serialize};

use crate::fdpass::{Channel, FdPassError, MAX_FDS_PER_MESSAGE};
use crate::listeners::Listener;

/// One message of the control protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A new process asks to replace the owner.
    Hello {
        /// The new process's pid.
        pid: u32,
        /// How it replaces the owner.
        mode: ReloadMode,
    },
    /// The owner accepts the upgrade.
    Welcome {
        /// The generation the new process takes.
        generation: u64,
        /// The owner's pid.
        pid: u32,
        /// The owner's listening addresses.
        addrs: Vec<SocketAddr>,
        /// How many sockets follow in batches.
        sockets: u32,
        /// The owner's TLS session-ticket keys, when it shares them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tickets: Option<crate::tls::TicketState>,
        /// Pids of the owner's older generations that were still draining, oldest first
        /// (fd-pass and naive reloads count them against `reload.max_old_generations`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        older: Vec<u32>,
    },
    /// The owner refuses (e.g. "reload in progress").
    Refused {
        /// Why.
        reason: String,
    },
    /// A batch of listening sockets; the fds travel with this message, one per address.
    Batch {
        /// Batch number, from 0.
        index: u32,
        /// The address of each fd, in order.
        addrs: Vec<SocketAddr>,
    },
    /// The new process received a batch.
    Ack {
        /// Batch number.
        index: u32,
        /// Fds received.
        received: u32,
    },
    /// The new process gives up before READY.
    Fail {
        /// Why.
        reason: String,
    },
    /// The new process is READY: the owner may stop accepting.
    Commit {
        /// The new process's pid.
        pid: u32,
        /// The new process's generation.
        generation: u64,
        /// Whether the new process takes over the control socket path (it renames its own
        /// socket over it after `Committed`); if not, the old process keeps removing it.
        #[serde(default)]
        takes_path: bool,
    },
    /// The owner accepted the commit: the new process may start accepting.
    Committed,
    /// The new process accepts connections now.
    Serving,
    /// The owner lets the new process take the control socket path; the answer to the
    /// first [`Message::Ping`] after it confirms the takeover.
    Release,
    /// Liveness check from a draining owner to its successor.
    Ping,
    /// The successor's answer to [`Message::Ping`].
    Pong,
    /// The successor stops on purpose (a signal): its draining predecessor must not take
    /// over again.
    Stopping,
    /// A master's new TLS session-ticket keys, pushed to a worker after each rotation
    /// (between heartbeats); the worker seals and opens tickets with them from now on.
    TicketKeys {
        /// The current and previous keys.
        tickets: crate::tls::TicketState,
    },
    /// Ask a master to replace its worker.
    Reload,
    /// A master replaced its worker.
    Reloaded {
        /// The new worker's generation.
        generation: u64,
        /// The new worker's pid.
        pid: u32,
    },
    /// A request failed.
    Error {
        /// Why.
        reason: String,
    },
}

/// Errors of the handoff protocol.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The channel failed (timeout, closed, I/O).
    #[error(transparent)]
    Channel(#[from] FdPassError),
    /// The peer sent something unexpected.
    #[error("protocol error: expected {expected}, got {got:?}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What came.
        got: Box<Message>,
    },
    /// The owner refused the upgrade.
    #[error("refused: {0}")]
    Refused(String),
    /// The new process gave up.
    #[error("the new process failed: {0}")]
    Failed(String),
    /// A batch did not carry one fd per address, or the count did not add up.
    #[error("bad batch: {0}")]
    BadBatch(String),
    /// The commit named the wrong pid or generation.
    #[error("bad commit: {0}")]
    BadCommit(String),
    /// A received fd is not a usable listener.
    #[error(transparent)]
    Listener(#[from] crate::listeners::ListenerError),
}

fn unexpected(expected: &'static str, got: Message) -> HandoffError {
    match got {
        Message::Refused { reason } => HandoffError::Refused(reason),
        Message::Fail { reason } => HandoffError::Failed(reason),
        got => HandoffError::Unexpected {
            expected,
            got: Box::new(got),
        },
    }
}

/// What the owner offers a new process.
#[derive(Debug)]
pub struct Offer<'a> {
    /// The generation the new process takes.
    pub generation: u64,
    /// The owner's listeners.
    pub listeners: &'a [Listener],
    /// Whether to send the sockets (false for naive reloads).
    pub send_sockets: bool,
    /// The pid the commit must name; `None` checks it against the peer's credentials instead
    /// (a socketpair's credentials are its creator's, so a master names the child's pid).
    pub expect_pid: Option<u32>,
    /// The TLS session-ticket keys to hand over (`None`: not shared).
    pub tickets: Option<crate::tls::TicketState>,
    /// Pids of the owner's older generations still draining, oldest first.
    pub older: Vec<u32>,
}

/// A commit the owner accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The new process's pid.
    pub pid: u32,
    /// Whether it takes over the control socket path.
    pub takes_path: bool,
}

/// Owner side, after `Hello`: sends the welcome and the sockets batch by batch (each
/// acknowledged), then waits up to `ready_timeout` for the commit.
///
/// Calls `on_handed_over(count)` once every batch is acknowledged.
pub async fn give(
    chan: &mut Channel,
    offer: &Offer<'_>,
    ready_timeout: Duration,
    on_handed_over: impl FnOnce(u32),
) -> Result<Accepted, HandoffError> {
    let sockets = if offer.send_sockets {
        offer.listeners.len() as u32
    } else {
        0
    };
    chan.send(&Message::Welcome {
        generation: offer.generation,
        pid: std::process::id(),
        addrs: offer.listeners.iter().map(|l| l.addr).collect(),
        sockets,
        tickets: offer.tickets.clone(),
        older: offer.older.clone(),
    })
    .await?;
    if offer.send_sockets {
        for (index, batch) in offer.listeners.chunks(MAX_FDS_PER_MESSAGE).enumerate() {
            let index = index as u32;
            let fds: Vec<_> = batch.iter().map(|l| l.fd.as_fd()).collect();
            let addrs = batch.iter().map(|l| l.addr).collect();
            chan.send_with_fds(&Message::Batch { index, addrs }, &fds)
                .await?;
            match chan.recv().await? {
                Message::Ack { index: i, received }
                    if i == index && received as usize == fds.len() => {}
                got => return Err(unexpected("ack", got)),
            }
        }
        on_handed_over(sockets);
    }
    match chan.recv_within(ready_timeout).await {
        Ok(Message::Commit {
            pid,
            generation,
            takes_path,
        }) => {
            if generation != offer.generation {
                return Err(HandoffError::BadCommit(format!(
                    "generation {generation}, expected {}",
                    offer.generation
                )));
            }
            let expected = match offer.expect_pid {
                Some(p) => Some(p),
                None => chan
                    .stream()
                    .peer_cred()
                    .ok()
                    .and_then(|c| c.pid())
                    .map(|p| p as u32),
            };
            if let Some(peer) = expected.filter(|p| *p != pid) {
                return Err(HandoffError::BadCommit(format!(
                    "pid {pid} but the peer is {peer}"
                )));
            }
            Ok(Accepted { pid, takes_path })
        }
        Ok(got) => Err(unexpected("commit", got)),
        Err(FdPassError::Timeout(..)) => Err(HandoffError::Failed(format!(
            "not ready within reload.ready_timeout ({})",
            humantime::format_duration(ready_timeout)
        ))),
        Err(FdPassError::Closed) => Err(HandoffError::Failed("exited before READY".into())),
        Err(e) => Err(e.into()),
    }
}

/// What a new process learned and received from the owner.
#[derive(Debug)]
pub struct Taken {
    /// The generation to take.
    pub generation: u64,
    /// The owner's pid.
    pub owner_pid: u32,
    /// The owner's listening addresses.
    pub owner_addrs: Vec<SocketAddr>,
    /// The sockets received (empty for naive reloads).
    pub listeners: Vec<Listener>,
    /// The owner's TLS session-ticket keys, if it shared them.
    pub tickets: Option<crate::tls::TicketState>,
    /// Pids of the owner's older generations still draining, oldest first.
    pub older: Vec<u32>,
}

/// New-process side: says hello and receives the welcome and the sockets.
pub async fn take(chan: &mut Channel, mode: ReloadMode) -> Result<Taken, HandoffError> {
    chan.send(&Message::Hello {
        pid: std::process::id(),
        mode,
    })
    .await?;
    let (generation, owner_pid, owner_addrs, sockets, tickets, older) = match chan.recv().await? {
        Message::Welcome {
            generation,
            pid,
            addrs,
            sockets,
            tickets,
            older,
        } => (generation, pid, addrs, sockets, tickets, older),
        got => return Err(unexpected("welcome", got)),
    };
    let mut listeners = Vec::with_capacity(sockets as usize);
    let mut index = 0u32;
    while listeners.len() < sockets as usize {
        let step = Duration::from_secs(10);
        let (msg, fds) = chan.recv_with_fds::<Message>(step).await?;
        let addrs = match msg {
            Message::Batch { index: i, addrs } if i == index => addrs,
            got => return Err(unexpected("batch", got)),
        };
        if addrs.len() != fds.len() || listeners.len() + fds.len() > sockets as usize {
            return Err(HandoffError::BadBatch(format!(
                "batch {index}: {} addresses, {} fds, {} of {sockets} received before",
                addrs.len(),
                fds.len(),
                listeners.len()
            )));
        }
        let received = fds.len() as u32;
        for (addr, fd) in addrs.iter().zip(fds) {
            let l = Listener::from_inherited(&addr.to_string(), fd)?;
            if l.addr != *addr {
                return Err(HandoffError::BadBatch(format!(
                    "fd named {addr} is bound to {}",
                    l.addr
                )));
            }
            listeners.push(l);
        }
        chan.send(&Message::Ack { index, received }).await?;
        index += 1;
    }
    Ok(Taken {
        generation,
        owner_pid,
        owner_addrs,
        listeners,
        tickets,
        older,
    })
}

/// New-process side, once set up: commits and waits for the owner's confirmation.
/// `takes_path`: this process will rename its control socket over the owner's path.
/// `sent` runs between sending the commit and reading the answer (fault injection).
pub async fn commit(
    chan: &mut Channel,
    generation: u64,
    takes_path: bool,
    sent: impl FnOnce(),
) -> Result<(), HandoffError> {
    chan.send(&Message::Commit {
        pid: std::process::id(),
        generation,
        takes_path,
    })
    .await?;
    sent();
    match chan.recv().await? {
        Message::Committed => Ok(()),
        got => Err(unexpected("committed", got)),
    }
}

/// New-process side, once it accepts: tells the owner and waits up to `within` for the
/// owner to release the control socket path.
pub async fn serving(chan: &mut Channel, within: Duration) -> Result<(), HandoffError> {
    chan.send(&Message::Serving).await?;
    match chan.recv_within(within).await? {
        Message::Release => Ok(()),
        got => Err(unexpected("release", got)),
    }
}

/// Owner side, after `Committed`: waits up to `within` for the successor's `Serving`, and
/// releases the path.
pub async fn await_serving(chan: &mut Channel, within: Duration) -> Result<(), HandoffError> {
    match chan.recv_within(within).await {
        Ok(Message::Serving) => Ok(chan.send(&Message::Release).await?),
        Ok(got) => Err(unexpected("serving", got)),
        Err(FdPassError::Timeout(..)) => Err(HandoffError::Failed(format!(
            "no confirmation that it accepts within reload.takeover_timeout ({})",
            humantime::format_duration(within)
        ))),
        Err(e) if peer_gone(&e) => Err(HandoffError::Failed(
            "exited before it accepted (after the commit)".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// How often a draining process pings its successor, and a master its workers.
pub const HEARTBEAT: Duration = Duration::from_millis(200);

/// Whether an error means that the peer process is gone (EOF, reset, broken pipe).
fn peer_gone(e: &FdPassError) -> bool {
    match e {
        FdPassError::Closed => true,
        FdPassError::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// How the watch over a successor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// The successor stops on purpose: do not take over again.
    Stopping,
    /// The successor is gone (the connection ended).
    Exited,
    /// The successor stopped answering, or answered nonsense.
    Lost(String),
}

impl Watch {
    /// Why the watch ended, for a log line or an event.
    pub fn why(&self) -> String {
        match self {
            Watch::Stopping => "it stopped on a signal".to_owned(),
            Watch::Exited => "it exited".to_owned(),
            Watch::Lost(why) => why.clone(),
        }
    }
}

/// Owner side: one heartbeat, answered within `within`; `None` when it was answered.
pub async fn ping(chan: &mut Channel, within: Duration) -> Option<Watch> {
    if let Err(e) = chan.send(&Message::Ping).await {
        // A successor that said `Stopping` and closed makes the ping fail: its word is
        // still there to read.
        if let Ok(Message::Stopping) = chan.recv_within(Duration::from_millis(1)).await {
            return Some(Watch::Stopping);
        }
        if peer_gone(&e) {
            return Some(Watch::Exited);
        }
        return Some(Watch::Lost(format!("heartbeat: {e}")));
    }
    match chan.recv_within(within).await {
        Ok(Message::Pong) => None,
        Ok(Message::Stopping) => Some(Watch::Stopping),
        Ok(got) => Some(Watch::Lost(format!(
            "unexpected {got:?} instead of a heartbeat"
        ))),
        Err(e) if peer_gone(&e) => Some(Watch::Exited),
        Err(FdPassError::Timeout(..)) => Some(Watch::Lost(format!(
            "it did not answer the heartbeat within reload.takeover_timeout ({})",
            humantime::format_duration(within)
        ))),
        Err(e) => Some(Watch::Lost(format!("heartbeat: {e}"))),
    }
}

/// Owner side, while it drains: pings the successor every `every` and expects each answer
/// within `within`. Returns when the successor says `Stopping`, dies or stops answering.
/// Anything that arrives between two pings (`Stopping`, or the end of the connection when
/// the successor dies) is looked at at once, not at the next ping.
pub async fn watch_successor(chan: &mut Channel, every: Duration, within: Duration) -> Watch {
    watch_and_push(chan, every, within, None).await
}

/// [`watch_successor`] that also sends every new value of `keys` (a master's ticket keys,
/// after a rotation) as [`Message::TicketKeys`], between two heartbeats.
pub async fn watch_and_push(
    chan: &mut Channel,
    every: Duration,
    within: Duration,
    mut keys: Option<tokio::sync::watch::Receiver<Option<crate::tls::TicketState>>>,
) -> Watch {
    loop {
        // A new key set is sent first; waiting for one gives up the pause's wait for a
        // message only before anything was read (`readable` reads nothing). A stale
        // readiness leads to the pause below, which delays a push by one heartbeat at most.
        if let Some(rx) = &mut keys {
            let mut sender_gone = false;
            let pushed = tokio::select! {
                biased;
                changed = rx.changed() => match changed {
                    Ok(()) => rx.borrow_and_update().clone(),
                    Err(_) => {
                        sender_gone = true;
                        None
                    }
                },
                ready = chan.stream().readable() => {
                    if let Err(e) = ready {
                        return Watch::Lost(format!("heartbeat: {e}"));
                    }
                    None
                }
                () = tokio::time::sleep(every) => {
                    if let Some(end) = ping(chan, within).await {
                        return end;
                    }
                    continue;
                }
            };
            if let Some(tickets) = pushed {
                if let Err(e) = chan.send(&Message::TicketKeys { tickets }).await {
                    if peer_gone(&e) {
                        return Watch::Exited;
                    }
                    return Watch::Lost(format!("pushing ticket keys: {e}"));
                }
                continue;
            }
            if sender_gone {
                keys = None;
                continue;
            }
        }
        // The pause between pings is a wait for a message: nothing is due, so anything
        // that comes ends the watch.
        match chan.recv_within::<Message>(every).await {
            Err(FdPassError::Timeout(..)) => {}
            Ok(Message::Stopping) => return Watch::Stopping,
            Ok(got) => return Watch::Lost(format!("unexpected {got:?} between heartbeats")),
            Err(e) if peer_gone(&e) => return Watch::Exited,
            Err(e) => return Watch::Lost(format!("heartbeat: {e}")),
        }
        if let Some(end) = ping(chan, within).await {
            return end;
        }
    }
}

/// Serving side: answers the pings of a draining predecessor (or of the master) until the
/// peer is gone, or says `Stopping` (then returns) once `stopping` resolves.
/// `first` runs right after the first answer (fault injection).
/// Ticket keys pushed by a master ([`Message::TicketKeys`]) are installed into `keys`.
pub async fn answer_heartbeats(
    mut chan: Channel,
    stopping: impl std::future::Future<Output = ()>,
    first: impl FnOnce(),
    keys: Option<std::sync::Arc<crate::tls::TicketKeys>>,
) {
    let mut first = Some(first);
    let mut stopping = std::pin::pin!(stopping);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopping => {
                let _ = chan.send(&Message::Stopping).await;
                return;
            }
            msg = chan.recv_within::<Message>(Duration::from_secs(3600)) => match msg {
                Ok(Message::Ping) => {
                    if chan.send(&Message::Pong).await.is_err() {
                        return;
                    }
                    if let Some(first) = first.take() {
                        first();
                    }
                }
                Ok(Message::TicketKeys { tickets }) => {
                    let installed = keys.as_ref().is_some_and(|k| k.install(&tickets));
                    if !installed {
                        tracing::warn!("ticket keys pushed but not installed (no shared keys here)");
                    }
                }
                Ok(_) => {}
                Err(FdPassError::Timeout(..)) => {}
                Err(_) => return,
            },
        }
    }
}

/// New-process side: tells the owner this attempt failed (best effort).
pub async fn fail(chan: &mut Channel, reason: &str) {
    let _ = chan
        .send(&Message::Fail {
            reason: reason.to_owned(),
        })
        .await;
}
