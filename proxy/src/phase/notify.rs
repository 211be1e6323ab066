//! systemd's `sd_notify` protocol, written directly over a unix datagram socket.
//!
//! When `NOTIFY_SOCKET` is set, refproxy sends `READY=1` (with `MAINPID=` when the main pid
//! changed), `RELOADING=1` with `MONOTONIC_USEC=`, and `STOPPING=1`. Without it, every call is
//! a no-op.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use reloadbench_model::clock::monotonic_ns;

/// Sends systemd notifications, if `NOTIFY_SOCKET` names a socket.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    target: Option<String>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` from the environment.
    pub fn from_env() -> Notifier {
        Notifier::from_var(std::env::var("NOTIFY_SOCKET").ok())
    }

    /// The notifier for a value of `NOTIFY_SOCKET`: unset or empty means none.
    fn from_var(value: Option<String>) -> Notifier {
        Notifier {
            target: value.filter(|s| !s.is_empty()),
        }
    }

    /// `READY=1`, with `MAINPID=` when this process takes over as the service's main process.
    pub fn ready(&self, main_pid_changed: bool) {
        if main_pid_changed {
            self.send(&format!("MAINPID={}\nREADY=1\n", std::process::id()));
        } else {
            self.send("READY=1\n");
        }
    }

    /// `RELOADING=1` with the monotonic timestamp systemd asks for.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\n",
            monotonic_ns() / 1_000
        ));
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1\n");
    }

    fn send(&self, msg: &str) {
        if let Some(Err(e)) = self.try_send(msg) {
            let target = self.target.as_deref().unwrap_or_default();
            tracing::warn!("cannot notify systemd at {target}: {e}");
        }
    }

    /// Sends `msg` to the target: `None` when there is none (nothing was attempted).
    fn try_send(&self, msg: &str) -> Option<std::io::Result<()>> {
        let target = self.target.as_deref()?;
        Some(send_to(target, msg))
    }
}

fn send_to(target: &str, msg: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(msg.as_bytes(), &addr)?;
    } else {
        sock.send_to(msg.as_bytes(), PathBuf::from(target))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some(path.to_string_lossy().into_owned()),
        };
        n.ready(true);
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(msg.starts_with("MAINPID="), "{msg}");
        assert!(msg.contains("READY=1"));
        n.reloading();
        let len = server.recv(&mut buf).unwrap();
        assert!(
            std::str::from_utf8(&buf[..len])
                .unwrap()
                .contains("MONOTONIC_USEC=")
        );
    }

    #[test]
    fn without_notify_socket_nothing_happens() {
        // Unset and empty `NOTIFY_SOCKET` both mean: no target, no send attempted.
        for value in [None, Some(String::new())] {
            let n = Notifier::from_var(value.clone());
            assert_eq!(n.target, None, "NOTIFY_SOCKET={value:?}");
            for msg in ["READY=1\n", "RELOADING=1\n", "STOPPING=1\n"] {
                assert!(
                    n.try_send(msg).is_none(),
                    "NOTIFY_SOCKET={value:?}: {msg:?} was attempted"
                );
            }
            // The public calls are harmless no-ops.
            n.ready(true);
            n.reloading();
            n.stopping();
        }
        assert!(
            Notifier::from_var(Some("/nonexistent/notify".into()))
                .target
                .is_some()
        );
    }
}
