//! The process tree of a server the harness did not start: the processes
//! that hold the target's listening sockets, found by looking through every
//! process's file descriptors (`/proc/*/fd`), plus the ones found before
//! that are still alive (an old process that stopped listening drains and
//! exits: its phases count).
//!
//! A full look costs a read of every process's fd table, so it is taken at
//! most every [`RESCAN`]; between looks the sampler follows the known
//! processes and their descendants (workers a master forks appear at once;
//! a new process started beside the old one, e.g. by `systemctl`, within
//! [`RESCAN`]).

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use reloadbench_model::clock::monotonic_ns;
use reloadbench_observe::owners::socket_owners;
use reloadbench_observe::sockdiag::{Filter, States, TcpState, dump};

use crate::orchestrator::sut::readiness::pid_alive;

/// Least time between two looks through every process.
pub(crate) const RESCAN: Duration = Duration::from_millis(50);

/// The owners of an address's listening sockets, looked up at most every
/// [`RESCAN`].
#[derive(Debug)]
pub(crate) struct ListenerOwners {
    listen: Filter,
    known: BTreeSet<u32>,
    last_scan_ns: Option<u64>,
}

impl ListenerOwners {
    /// Owners of the listening sockets on `addr` (none known yet).
    pub(crate) fn new(addr: SocketAddr) -> ListenerOwners {
        ListenerOwners {
            listen: Filter::local(addr, States::of(&[TcpState::Listen])),
            known: BTreeSet::new(),
            last_scan_ns: None,
        }
    }

    /// The roots of the server's process tree: every live process seen
    /// holding a listening socket of the address.
    pub(crate) fn roots(&mut self) -> Vec<u32> {
        let now = monotonic_ns();
        let due = self
            .last_scan_ns
            .is_none_or(|t| now.saturating_sub(t) >= RESCAN.as_nanos() as u64);
        if due {
            self.last_scan_ns = Some(now);
            let inodes: HashSet<u64> = dump(&self.listen)
                .map(|v| v.iter().map(|s| s.inode).filter(|i| *i != 0).collect())
                .unwrap_or_default();
            if !inodes.is_empty() {
                let me = std::process::id();
                let all: Vec<u32> = all_pids().into_iter().filter(|p| *p != me).collect();
                for owners in socket_owners(&all, Some(&inodes)).into_values() {
                    self.known.extend(owners);
                }
            }
        }
        self.known.retain(|p| pid_alive(*p));
        self.known.iter().copied().collect()
    }
}

/// Every pid in `/proc`.
fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_a_listening_socket_is_found_among_all_processes() {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        // A child that holds a listening socket through an inherited fd:
        // found; the test process (the harness) holds it too and is left out.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        fcntl(&l, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        fcntl(&l, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
        let mut o = ListenerOwners::new(addr);
        let roots = o.roots();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(roots, vec![child.id()]);
        // Gone: no longer a root, even before the next look.
        assert!(o.roots().is_empty());
    }
}
