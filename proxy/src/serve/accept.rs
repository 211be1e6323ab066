//! The accept loop of one handle of a listening socket, on one serving thread.
//!
//! Accept errors are logged at most once per [`ERROR_LOG_EVERY`] over all loops (a
//! process out of file descriptors fails every accept while connections wait in the
//! backlog), each WARN line with the count of the errors not logged since the one
//! before; once accepting works again, the count still unreported is logged too, as a
//! line within the same budget (so failures and successes in turn, near the fd limit,
//! still give at most one line per interval).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Shared;
use super::balance::Accepted;
use super::conn;
use crate::forward::Forwarder;

/// Pause after an accept error caused by resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM).
const EXHAUSTED_BACKOFF: Duration = Duration::from_millis(50);
/// Pause after any other accept error, so that a persistent error never spins.
const ERROR_BACKOFF: Duration = Duration::from_millis(5);
/// Accept errors are logged at most this often, over all accept loops of the process.
pub(super) const ERROR_LOG_EVERY: Duration = Duration::from_secs(1);

/// Counts one running accept loop from its creation; decrements the count when
/// dropped (the loop ended, panicked, or never started).
pub(super) struct Running(Arc<Shared>);

impl Running {
    pub(super) fn new(shared: Arc<Shared>) -> Running {
        shared.accepting.send_modify(|n| *n += 1);
        Running(shared)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.accepting.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Accepts connections until told to stop, then drops the listener handle.
/// Connections are served on the serving thread with the fewest open connections (this
/// one, number `index`, with `forwarder`, on a tie): see [`super::balance`].
pub(super) async fn accept_loop(
    index: usize,
    listener: TcpListener,
    tls: Option<conn::Handshake>,
    running: Running,
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
) {
    let mut stop = shared.stop_accept.subscribe();
    let mut gate = shared.accept_open.subscribe();
    // A held server accepts nothing until its gate opens (or it is stopped first).
    let opened = tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => false,
        g = gate.wait_for(|o| *o) => g.is_ok(),
    };
    if opened {
        accept_until_stopped(
            index,
            &listener,
            tls.as_ref(),
            &mut stop,
            &shared,
            &forwarder,
        )
        .await;
    }
    // Dropping closes only this process's handle; never shut the shared socket down.
    // The handle is closed before the loop stops counting as running.
    drop(listener);
    drop(running);
}

/// The accept loop proper: accepts on `listener` until `stop` says so.
async fn accept_until_stopped(
    index: usize,
    listener: &TcpListener,
    tls: Option<&conn::Handshake>,
    stop: &mut watch::Receiver<bool>,
    shared: &Arc<Shared>,
    forwarder: &Arc<Forwarder>,
) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(suppressed) = shared.accept_errors.take_suppressed(Instant::now) {
                        tracing::warn!(suppressed, "accepting again (`suppressed`: accept errors not logged)");
                    }
                    let open = conn::OpenGuard::new(shared.clone());
                    let tls = tls.cloned();
                    shared.balance.serve(index, forwarder, Accepted { stream, peer, open, tls });
                }
                Err(e) => {
                    let pause = if is_exhaustion(&e) { EXHAUSTED_BACKOFF } else { ERROR_BACKOFF };
                    if let Some(suppressed) = shared.accept_errors.note(Instant::now()) {
                        tracing::warn!(
                            error = %e,
                            ?pause,
                            suppressed,
                            "accept failed (logged at most once a second; `suppressed`: errors not logged since the last line)"
                        );
                    }
                    tokio::time::sleep(pause).await;
                }
            },
        }
    }
}

/// Whether an accept error means the process or system ran out of a resource.
fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
