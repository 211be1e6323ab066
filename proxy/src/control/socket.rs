//! The control socket file: created with mode 0600 (see [`bind`](super::bind)), handed
//! from process to process by rename, and removed on exit only while the path is still ours.
//!
//! A plain start binds the configured path (only after checking that no live process answers
//! there, and that nothing but a stale socket is there). A new process of an upgrade binds
//! `PATH.<pid>.tmp` and renames it over `PATH` once the old process has committed, so the
//! next reload finds it. The old process disowns the path at commit, before the rename can
//! happen, so it never removes the new owner's socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::UnixListener;

use super::{ControlError, bind};

/// Ownership of a control socket file; removes it on drop while still owned.
#[derive(Debug)]
pub struct ControlPath {
    /// The configured path.
    path: PathBuf,
    /// Where the socket currently lives (the path, or the temporary path before promotion).
    bound_at: PathBuf,
    /// Identity of the socket file (device, inode), to recognise it as ours.
    id: (u64, u64),
    owned: Arc<AtomicBool>,
}

/// A handle that lets a handoff task give up the path at commit.
#[derive(Debug, Clone)]
pub struct Disowner(Arc<AtomicBool>);

impl Disowner {
    /// From now on the path belongs to someone else: never remove it.
    pub fn disown(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// The commit did not go through after all: the path is ours again.
    pub fn reclaim(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl ControlPath {
    /// Binds `path` for a plain start (or a master). Fails if a live process answers there
    /// or if something other than a socket is there; a stale socket is replaced.
    pub fn bind(path: &Path) -> Result<(ControlPath, UnixListener), ControlError> {
        Self::bind_at(path, path)
    }

    /// Binds the temporary path of an upgrade (`PATH.<pid>.tmp`), to be promoted at commit.
    pub fn bind_tmp(path: &Path) -> Result<(ControlPath, UnixListener), ControlError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        Self::bind_at(path, &PathBuf::from(tmp))
    }

    fn bind_at(path: &Path, at: &Path) -> Result<(ControlPath, UnixListener), ControlError> {
        let (listener, id) = bind::bind(at)?;
        let guard = ControlPath {
            path: path.to_owned(),
            bound_at: at.to_owned(),
            id,
            owned: Arc::new(AtomicBool::new(true)),
        };
        Ok((guard, listener))
    }

    /// The configured path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the socket still lives at the temporary path (to be promoted at commit).
    pub fn is_temporary(&self) -> bool {
        self.bound_at != self.path
    }

    /// A handle to give up ownership from another task.
    pub fn disowner(&self) -> Disowner {
        Disowner(self.owned.clone())
    }

    /// Renames the temporary socket over the configured path (no-op if already there).
    pub fn promote(&mut self) -> Result<(), ControlError> {
        if self.bound_at == self.path {
            return Ok(());
        }
        std::fs::rename(&self.bound_at, &self.path).map_err(|e| ControlError::io(&self.path, e))?;
        self.bound_at = self.path.clone();
        Ok(())
    }

    /// Whether the configured path names this socket right now (whoever owns the flag).
    pub fn holds_path(&self) -> bool {
        self.bound_at == self.path && bind::names(&self.path, self.id)
    }

    fn still_ours(&self) -> bool {
        self.owned.load(Ordering::SeqCst) && bind::names(&self.bound_at, self.id)
    }
}

impl Drop for ControlPath {
    fn drop(&mut self) {
        if self.still_ours()
            && let Err(e) = std::fs::remove_file(&self.bound_at)
        {
            tracing::warn!(
                "cannot remove control socket {}: {e}",
                self.bound_at.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn bound_0600_promoted_and_removed_only_while_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (old, _l) = ControlPath::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            ControlPath::bind(&path),
            Err(ControlError::InUse(_))
        ));

        let (mut new, _l2) = ControlPath::bind_tmp(&path).unwrap();
        old.disowner().disown();
        new.promote().unwrap();
        drop(old);
        assert!(
            path.exists(),
            "the old owner must not remove the new socket"
        );
        drop(new);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_regular_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let (g, _l) = ControlPath::bind(&path).unwrap();
        drop(g);

        std::fs::write(&path, "precious").unwrap();
        let err = ControlPath::bind(&path).unwrap_err();
        assert!(matches!(err, ControlError::NotASocket { .. }), "{err}");
        // The temporary path of an upgrade follows the same rule.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        std::fs::write(&tmp, "also precious").unwrap();
        let err = ControlPath::bind_tmp(&path).unwrap_err();
        assert!(matches!(err, ControlError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&tmp).unwrap(), "also precious");
    }
}
