//! Process exits through pidfds (`pidfd_open(2)`, Linux 5.3+): a pidfd names
//! one process, so a wait on it cannot be fooled by the pid being reused.
//! A pidfd becomes readable when its process has exited (zombie or reaped).
//!
//! The only `unsafe` of the crate lives here: `pidfd_open` has no safe
//! wrapper in std, nix or libc.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// An open pidfd.
#[derive(Debug)]
pub struct Pidfd {
    pid: u32,
    fd: OwnedFd,
}

impl Pidfd {
    /// Opens a pidfd for `pid` (fails with ESRCH when no such process, a
    /// zombie included, exists).
    pub fn open(pid: u32) -> std::io::Result<Pidfd> {
        let raw_pid = libc::pid_t::try_from(pid)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
        // SAFETY: pidfd_open takes a pid and flags by value and touches no
        // memory of ours; it returns a new fd or -1 with errno.
        let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0 as libc::c_uint) };
        if ret < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let raw = i32::try_from(ret).map_err(|_| std::io::Error::other("fd out of range"))?;
        // SAFETY: `raw` is a fresh fd returned by pidfd_open that nothing
        // else owns; OwnedFd closes it once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Pidfd { pid, fd })
    }

    /// The pid it names.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process has exited (without waiting).
    pub fn has_exited(&self) -> bool {
        self.wait(Duration::ZERO)
    }

    /// Waits up to `timeout` for the process to exit; true if it has.
    pub fn wait(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(n) if n > 0 => return true,
                Ok(_) if left.is_zero() => return false,
                Ok(_) => {
                    if Instant::now() >= until {
                        return false;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                // Cannot poll: treat as not known to have exited.
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_seen_to_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let fd = Pidfd::open(child.id()).expect("pidfd");
        assert!(!fd.has_exited());
        child.kill().expect("kill");
        assert!(fd.wait(Duration::from_secs(10)));
        // Still exited once reaped.
        child.wait().expect("reap");
        assert!(fd.has_exited());
    }

    #[test]
    fn ourselves_have_not_exited() {
        let fd = Pidfd::open(std::process::id()).expect("pidfd");
        assert!(!fd.wait(Duration::from_millis(5)));
    }
}
