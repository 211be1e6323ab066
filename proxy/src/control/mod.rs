//! The unix control socket: where a new process (or an operator) finds the running one.
//!
//! [`ControlPath`] owns the socket file; [`listen`] accepts connections and turns each
//! connection's first message into a [`Request`] for the owner (a serving process or a
//! master), which answers on the connection, after checking that the peer runs as our uid
//! (`SO_PEERCRED`; refusals are logged at most once a second, with a count).
//! [`protocol`] is the handoff spoken on it.

mod bind;
mod peer;
pub mod protocol;
mod socket;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reloadbench_model::event::ReloadMode;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::fdpass::Channel;
use crate::serve::throttle::Throttle;
use protocol::Message;

pub use bind::check_path;
pub use socket::{ControlPath, Disowner};

/// Step timeout of control connections (each message exchanged).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept on the control socket.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Errors of the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A live process already answers on the path.
    #[error("control socket {0} is in use by a running process")]
    InUse(PathBuf),
    /// Something other than a socket is at the path; it is never replaced.
    #[error("control socket {path} exists and is {kind}, not a socket; refusing to replace it")]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What is there, e.g. `a regular file`.
        kind: &'static str,
    },
    /// A file operation on the path failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ControlError {
    fn io(path: &Path, source: std::io::Error) -> ControlError {
        ControlError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A request that arrived on the control socket; the owner answers on `chan`.
#[derive(Debug)]
pub enum Request {
    /// A new process wants to replace this one.
    Upgrade {
        /// The connection, after `Hello`.
        chan: Channel,
        /// The new process's pid.
        pid: u32,
        /// How it replaces this one.
        mode: ReloadMode,
    },
    /// Replace the worker (master only).
    Reload {
        /// The connection, after `Reload`.
        chan: Channel,
    },
}

/// Accepts control connections until the returned task is aborted or the receiver dropped.
pub fn listen(listener: UnixListener) -> (JoinHandle<()>, mpsc::Receiver<Request>) {
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(async move {
        let refused = Throttle::new(peer::REFUSED_LOG_EVERY);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) if peer::allowed(&stream, &refused) => stream,
                // Another uid: closed unanswered, before any message is read.
                Ok(_) => continue,
                Err(e) => {
                    // A persistent error (e.g. out of fds) must not spin.
                    tracing::warn!("control socket accept: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut chan = Channel::new(stream, STEP_TIMEOUT);
                let request = match chan.recv::<Message>().await {
                    Ok(Message::Hello { pid, mode }) => Request::Upgrade { chan, pid, mode },
                    Ok(Message::Reload) => Request::Reload { chan },
                    Ok(other) => {
                        let reason = format!("unexpected first message {other:?}");
                        let _ = chan.send(&Message::Error { reason }).await;
                        return;
                    }
                    Err(e) => {
                        tracing::debug!("control connection: {e}");
                        return;
                    }
                };
                let _ = tx.send(request).await;
            });
        }
    });
    (task, rx)
}

#[cfg(test)]
mod tests;
