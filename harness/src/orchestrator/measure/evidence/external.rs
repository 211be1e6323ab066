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
use reloadbench_model::run::{ActionKind, ActionReport};
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

/// Least time from an action's trigger to the last sample of its window
/// for [`unchanged_reloads`] to judge it: a shorter window may end before
/// the server replaced anything.
pub(crate) const JUDGED_WINDOW: Duration = Duration::from_millis(500);

/// Marks as not done every reload (an `exec` or `signal` action on a server
/// reloadbench did not start) during which no process changed: the
/// processes holding the target's listening sockets at the trigger were
/// the same at the end of the action's window (its last sample, at least
/// [`JUDGED_WINDOW`] later), none exited, and no other process listened in
/// between. Such an action's "ready" time only says the old listener still
/// accepted. Actions whose window the sampler did not see (no owners at the
/// trigger, too short) are left as they are.
pub(crate) fn unchanged_reloads(rec: &super::Recording, actions: &mut [ActionReport]) {
    for (k, a) in actions.iter_mut().enumerate() {
        if a.kind != ActionKind::Reload || !a.ok {
            continue;
        }
        let Some((at, end)) = rec.action_window(k) else {
            continue;
        };
        let end = end.min(rec.samples.len());
        if end <= at + 1 {
            continue;
        }
        let (first, last) = (&rec.samples[at], &rec.samples[end - 1]);
        let before = first.listening_pids();
        let span = last.mono_ns.saturating_sub(first.mono_ns);
        if before.is_empty() || span < JUDGED_WINDOW.as_nanos() as u64 {
            continue;
        }
        let same = rec.samples[at + 1..end]
            .iter()
            .all(|s| s.listening_pids() == before);
        let exited = before.iter().any(|p| {
            rec.exits
                .get(p)
                .is_some_and(|t| *t > first.mono_ns && *t <= last.mono_ns)
        });
        if same && !exited {
            a.ok = false;
            a.error = Some(format!(
                "no process change observed: the processes holding the target's listening \
                 socket ({}) were the same from the trigger until {} ms later and none exited, \
                 so the server replaced nothing (a server that reloads in place, in the same \
                 processes, looks the same)",
                before
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                span / 1_000_000
            ));
        }
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

    fn sample(ms: u64, owners: &[u32]) -> super::super::Sample {
        super::super::Sample {
            mono_ns: ms * 1_000_000,
            listeners: vec![super::super::Listener {
                inode: 1,
                owners: owners.iter().copied().collect(),
                depth: 0,
                backlog: 128,
            }],
            established: Default::default(),
            processes: 0,
            masters: Default::default(),
        }
    }

    #[test]
    fn a_reload_that_changed_no_process_is_not_done() {
        use crate::orchestrator::attribution::tests::action;
        // Action 0: the same master and worker throughout (an exec that
        // did nothing); action 1: worker 11 replaced by 12 (done); action
        // 2: its window too short to judge.
        let samples = vec![
            sample(0, &[10, 11]),
            sample(100, &[10, 11]),
            sample(900, &[10, 11]),
            sample(1000, &[10, 11]),
            sample(1010, &[10, 11, 12]),
            sample(1900, &[10, 12]),
            sample(2000, &[10, 12]),
            sample(2100, &[10, 12]),
        ];
        let rec = super::super::Recording {
            samples,
            triggers: vec![0, 3, 6],
            ..Default::default()
        };
        let mut actions = vec![
            action(0, Some(1), None),
            action(1000, Some(1001), None),
            action(2000, Some(2001), None),
        ];
        unchanged_reloads(&rec, &mut actions);
        assert!(!actions[0].ok);
        let why = actions[0].error.as_deref().unwrap();
        assert!(why.contains("no process change observed"), "{why}");
        assert!(why.contains("(10, 11)"), "{why}");
        assert!(actions[1].ok, "{:?}", actions[1].error);
        assert!(actions[2].ok, "{:?}", actions[2].error);
        // An old process that exited (and was replaced) is a change; so is
        // a window where the sampler saw no owner at the trigger.
        let mut rec = rec;
        rec.exits.insert(11, 500 * 1_000_000);
        let mut actions = vec![action(0, Some(1), None)];
        unchanged_reloads(&rec, &mut actions);
        assert!(actions[0].ok);
        rec.exits.clear();
        rec.samples[0] = sample(0, &[]);
        rec.samples[0].listeners.clear();
        let mut actions = vec![action(0, Some(1), None)];
        unchanged_reloads(&rec, &mut actions);
        assert!(actions[0].ok);
    }
}
