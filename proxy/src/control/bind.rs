//! Creating a control socket file at a path: what may already be there, and the mode 0600
//! from the first moment the socket is reachable.
//!
//! What may be at the path: nothing, or a stale socket (one that refuses connections),
//! which is replaced. Anything else (a regular file, a directory, a symbolic link, a FIFO, a
//! device) is never touched: binding fails with [`ControlError::NotASocket`], which
//! [`check_path`] also reports for `refproxy check`. A socket somebody listens on is
//! [`ControlError::InUse`].
//!
//! The socket is bound inside a private directory (mode 0700, created next to the path),
//! narrowed to 0600 there, and then hard-linked to the path: a link never replaces anything
//! that appeared since the check, and no process-wide umask is touched (refproxy has
//! threads).

use std::fs::{FileType, Metadata};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
use tokio::net::UnixListener;

use super::ControlError;

/// The longest path a unix socket address holds (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Names tried for the private directory before giving up.
const PRIVATE_DIR_ATTEMPTS: u64 = 16;

/// Makes private directory names unique within this process.
static PRIVATE_DIR_SEQ: AtomicU64 = AtomicU64::new(0);

/// Checks a control socket path for `refproxy check`: nothing there, or a socket (live or
/// stale), is fine; anything else is [`ControlError::NotASocket`].
pub fn check_path(path: &Path) -> Result<(), ControlError> {
    socket_meta(path).map(|_| ())
}

/// What is at `path`: nothing (`None`) or a socket (its metadata); anything else is
/// [`ControlError::NotASocket`].
fn socket_meta(path: &Path) -> Result<Option<Metadata>, ControlError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ControlError::io(path, e)),
        Ok(m) if m.file_type().is_socket() => Ok(Some(m)),
        Ok(m) => Err(not_a_socket(path, m.file_type())),
    }
}

/// Whether `path` names the file `id` (device, inode) right now.
pub(super) fn names(path: &Path, id: (u64, u64)) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == id)
}

/// Binds a socket file with mode 0600 at `at`, replacing only a stale socket; returns the
/// listener and the file's (device, inode).
pub(super) fn bind(at: &Path) -> Result<(UnixListener, (u64, u64)), ControlError> {
    if let Existing::StaleSocket(id) = inspect(at)? {
        remove_stale(at, id)?;
    }
    let private = PrivateDir::create(at)?;
    let inner = private.socket();
    let listener = private.bind().map_err(|e| ControlError::io(&inner, e))?;
    // Narrowed while only this uid can reach it (the directory is 0700).
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ControlError::io(&inner, e))?;
    let meta = std::fs::symlink_metadata(&inner).map_err(|e| ControlError::io(&inner, e))?;
    if let Err(e) = std::fs::hard_link(&inner, at) {
        return Err(match (e.kind(), inspect(at)) {
            (ErrorKind::AlreadyExists, Err(found)) => found,
            _ => ControlError::io(at, e),
        });
    }
    Ok((listener, (meta.dev(), meta.ino())))
}

/// What is at a path about to be bound (anything else is an error).
enum Existing {
    Nothing,
    /// A socket nobody listens on, with its (device, inode).
    StaleSocket((u64, u64)),
}

fn inspect(path: &Path) -> Result<Existing, ControlError> {
    let Some(meta) = socket_meta(path)? else {
        return Ok(Existing::Nothing);
    };
    match probe(path) {
        // Accepted, or its backlog is full: somebody listens.
        Ok(()) | Err(Errno::EAGAIN) => Err(ControlError::InUse(path.to_owned())),
        Err(Errno::ECONNREFUSED) => Ok(Existing::StaleSocket((meta.dev(), meta.ino()))),
        Err(Errno::ENOENT) => Ok(Existing::Nothing),
        Err(e) => Err(ControlError::io(path, e.into())),
    }
}

/// A non-blocking connect to `path` (a blocking one would wait on a full backlog).
fn probe(path: &Path) -> Result<(), Errno> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)
}

/// Removes the stale socket `id` at `path` if it is still that socket.
fn remove_stale(path: &Path, id: (u64, u64)) -> Result<(), ControlError> {
    if !names(path, id) {
        return match socket_meta(path) {
            Err(e @ ControlError::NotASocket { .. }) => Err(e),
            // Replaced or gone meanwhile: the link fails rather than replace what is there.
            _ => Ok(()),
        };
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(ControlError::io(path, e)),
        _ => Ok(()),
    }
}

fn not_a_socket(path: &Path, ft: FileType) -> ControlError {
    let kind = if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "of an unknown file type"
    };
    ControlError::NotASocket {
        path: path.to_owned(),
        kind,
    }
}

/// A directory with mode 0700 next to the socket's path, where the socket is bound and
/// narrowed before it is linked into place; removed with its content on drop.
struct PrivateDir {
    dir: PathBuf,
}

impl PrivateDir {
    fn create(next_to: &Path) -> Result<PrivateDir, ControlError> {
        let parent = match next_to.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let pid = std::process::id();
        let mut seq = PRIVATE_DIR_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut attempts = 1;
        loop {
            let dir = parent.join(format!(".refproxy-{pid}-{seq}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(PrivateDir { dir }),
                // Left over by an earlier process with this pid: try the next name.
                Err(e)
                    if e.kind() == ErrorKind::AlreadyExists && attempts < PRIVATE_DIR_ATTEMPTS =>
                {
                    seq = PRIVATE_DIR_SEQ.fetch_add(1, Ordering::Relaxed);
                    attempts += 1;
                }
                Err(e) => return Err(ControlError::io(&dir, e)),
            }
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("s")
    }

    /// Binds the socket; through `/proc/self/fd/N/s` (N: the directory, held open) when the
    /// plain path is too long for a unix socket address, which the final path may not be.
    fn bind(&self) -> std::io::Result<UnixListener> {
        let inner = self.socket();
        if inner.as_os_str().len() <= MAX_SOCKET_PATH {
            return UnixListener::bind(&inner);
        }
        let dir = std::fs::File::open(&self.dir)?;
        UnixListener::bind(format!("/proc/self/fd/{}/s", dir.as_raw_fd()))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn bound_0600_with_nothing_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (_l, id) = bind(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!((meta.dev(), meta.ino()), id);
        assert_eq!(meta.nlink(), 1, "the private link is gone");
        assert_eq!(names(dir.path()), ["ctl.sock"], "no private directory left");
        std::os::unix::net::UnixStream::connect(&path).expect("reachable at the path");
    }

    #[tokio::test]
    async fn a_path_near_the_length_limit_is_bound_too() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().as_os_str().len();
        // The final path is 107 bytes: its private directory's socket path is longer.
        let sub = dir
            .path()
            .join("d".repeat(107 - base - "/x/ctl.sock".len() + 1));
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("ctl.sock");
        assert_eq!(path.as_os_str().len(), MAX_SOCKET_PATH);
        let (_l, _) = bind(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(names(&sub), ["ctl.sock"]);
        std::os::unix::net::UnixStream::connect(&path).expect("reachable at the path");
    }

    #[tokio::test]
    async fn only_a_stale_socket_is_replaced_and_a_live_one_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        check_path(&path).unwrap();
        let (_l, _) = bind(&path).unwrap();
        check_path(&path).unwrap();
        let err = bind(&path).unwrap_err();
        assert!(
            matches!(err, ControlError::InUse(ref p) if *p == path),
            "{err}"
        );
        assert_eq!(names(dir.path()), ["ctl.sock"]);
    }

    #[tokio::test]
    async fn anything_but_a_socket_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "precious").unwrap();
        let subdir = dir.path().join("dir");
        std::fs::create_dir(&subdir).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let live = dir.path().join("live.sock");
        let _live = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let sock_link = dir.path().join("sock-link");
        std::os::unix::fs::symlink(&live, &sock_link).unwrap();
        for (path, kind) in [
            (&file, "a regular file"),
            (&subdir, "a directory"),
            (&link, "a symbolic link"),
            (&fifo, "a FIFO"),
            (&sock_link, "a symbolic link"),
        ] {
            for err in [bind(path).unwrap_err(), check_path(path).unwrap_err()] {
                match &err {
                    ControlError::NotASocket { path: p, kind: k } => {
                        assert_eq!((p, *k), (path, kind));
                    }
                    other => panic!("{}: {other}", path.display()),
                }
                let text = err.to_string();
                assert!(
                    text.contains(&*path.to_string_lossy()) && text.contains(kind),
                    "{text}"
                );
            }
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        assert!(subdir.is_dir());
        assert_eq!(std::fs::read_link(&link).unwrap(), file);
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(
            names(dir.path()),
            ["dir", "fifo", "file", "link", "live.sock", "sock-link"],
            "nothing removed, no private directory left"
        );
    }
}
