//! Who may use the control socket: only processes running as this process's effective uid,
//! checked with `SO_PEERCRED` on every accepted connection (the file mode 0600 is the first
//! fence; this one holds even when the mode was widened by hand).

use std::time::{Duration, Instant};

use tokio::net::UnixStream;

use crate::serve::throttle::Throttle;

/// Refused peers are logged at most this often (a peer of another uid can connect in a
/// loop), each line with the count of the refusals not logged since the one before.
pub(super) const REFUSED_LOG_EVERY: Duration = Duration::from_secs(1);

/// Whether the peer of an accepted control connection runs as our effective uid. A refusal
/// is logged as a WARN naming the peer's uid and pid (or why it cannot be identified),
/// through `refused`: at most one line per [`REFUSED_LOG_EVERY`], with the count of the
/// refusals not logged; the first allowed peer after them reports a count still
/// unreported, within the same budget.
pub(super) fn allowed(stream: &UnixStream, refused: &Throttle) -> bool {
    let ours = nix::unistd::geteuid().as_raw();
    let cred = stream.peer_cred();
    if matches!(&cred, Ok(c) if c.uid() == ours) {
        if let Some(suppressed) = refused.take_suppressed(Instant::now) {
            tracing::warn!(
                suppressed,
                "control connections of other uids were refused (`suppressed`: refusals not logged)"
            );
        }
        return true;
    }
    let Some(suppressed) = refused.note(Instant::now()) else {
        return false;
    };
    match cred {
        Ok(cred) => {
            let pid = cred
                .pid()
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            tracing::warn!(
                suppressed,
                "control connection refused: peer uid {} (pid {pid}) is not uid {ours} \
                 (logged at most once a second; `suppressed`: refusals not logged since the last line)",
                cred.uid()
            );
        }
        Err(e) => {
            tracing::warn!(
                suppressed,
                "control connection refused: cannot read its peer credentials: {e} \
                 (logged at most once a second; `suppressed`: refusals not logged since the last line)"
            );
        }
    }
    false
}
