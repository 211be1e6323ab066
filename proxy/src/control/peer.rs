//! Who may use the control socket: only processes running as this process's effective uid,
//! checked with `SO_PEERCRED` on every accepted connection (the file mode 0600 is the first
//! fence; this one holds even when the mode was widened by hand).

use tokio::net::UnixStream;

/// Whether the peer of an accepted control connection runs as our effective uid; logs a
/// WARN naming the peer's uid and pid when it does not (or cannot be identified).
pub(super) fn allowed(stream: &UnixStream) -> bool {
    let ours = nix::unistd::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == ours => true,
        Ok(cred) => {
            let pid = cred
                .pid()
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            tracing::warn!(
                "control connection refused: peer uid {} (pid {pid}) is not uid {ours}",
                cred.uid()
            );
            false
        }
        Err(e) => {
            tracing::warn!("control connection refused: cannot read its peer credentials: {e}");
            false
        }
    }
}
