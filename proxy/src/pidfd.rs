//! Whether another process (not a child) is still alive, and signals to it, through a
//! pidfd: unlike `kill(pid, 0)` or `kill(pid, sig)` it is not fooled by a zombie nobody
//! has reaped yet, nor by a reused pid (a pidfd names the process it was opened for).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A pidfd of another process.
#[derive(Debug)]
pub struct Owner {
    fd: OwnedFd,
}

impl Owner {
    /// Opens a pidfd of `pid`; `None` if the process is already gone or pidfds are not
    /// available (then nothing can be told about it).
    pub fn open(pid: u32) -> Option<Owner> {
        let pid = libc::pid_t::try_from(pid).ok()?;
        #[allow(unsafe_code)]
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
        // shared with the kernel.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        #[allow(unsafe_code)]
        // SAFETY: the fd was just returned by pidfd_open and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(Owner { fd })
    }

    /// Whether the process exits within `within` (at once if it has already). A closed
    /// connection to a process that crashed can be seen before its pidfd is readable, so a
    /// caller that saw one waits here instead of asking once.
    pub async fn exited_within(&self, within: std::time::Duration) -> bool {
        if self.has_exited() {
            return true;
        }
        let Ok(fd) = self.fd.try_clone() else {
            return false;
        };
        let ms = i32::try_from(within.as_millis()).unwrap_or(i32::MAX);
        // A blocking poll on the blocking pool: no fd registration with the runtime needed.
        tokio::task::spawn_blocking(move || poll_readable(&fd, ms))
            .await
            .unwrap_or(false)
    }

    /// Whether the process has exited (a pidfd becomes readable when it terminates).
    pub fn has_exited(&self) -> bool {
        poll_readable(&self.fd, 0)
    }

    /// Another handle on the same process; `None` if the fd cannot be duplicated.
    pub fn try_clone(&self) -> Option<Owner> {
        self.fd.try_clone().ok().map(|fd| Owner { fd })
    }

    /// Sends `signal` to the process the pidfd was opened for (`pidfd_send_signal`):
    /// fails with `ESRCH` once it has exited, whoever has its pid now.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> std::io::Result<()> {
        #[allow(unsafe_code)]
        // SAFETY: pidfd_send_signal takes a pidfd (borrowed for the call), a signal number,
        // a null siginfo (the kernel fills one as kill(2) would) and flags 0; no memory is
        // shared with the kernel.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// Whether `fd` becomes readable within `ms` milliseconds (0: right now).
fn poll_readable(fd: &OwnedFd, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: one valid pollfd (the fd is borrowed for the call) and a count of 1.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_running_process_from_an_exited_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owner = Owner::open(child.id()).unwrap();
        assert!(!owner.has_exited());
        child.kill().unwrap();
        // Not reaped yet: a zombie counts as exited.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut pfd = libc::pollfd {
            fd: owner.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        #[allow(unsafe_code)]
        // SAFETY: one valid pollfd; blocks until the pidfd is readable or 10 s passed.
        let _ = unsafe { libc::poll(&mut pfd, 1, 10_000) };
        assert!(std::time::Instant::now() < deadline);
        assert!(owner.has_exited());
        child.wait().unwrap();
    }

    #[test]
    fn signals_reach_only_the_process_the_pidfd_was_opened_for() {
        use nix::sys::signal::Signal;
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owner = Owner::open(child.id()).unwrap();
        owner.signal(Signal::SIGUSR1).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(Signal::SIGUSR1 as i32));
        // Reaped: its pid may belong to anyone now; the pidfd signals nobody.
        let e = owner.signal(Signal::SIGUSR1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
    }
}
