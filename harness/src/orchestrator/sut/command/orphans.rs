//! Processes re-parented to the harness: daemonizing servers leave their
//! process group (`setsid`); as a child subreaper the harness becomes their
//! parent, so it can find, stop and reap them. Processes the harness spawned
//! itself (listed in the run's pid list, `ours`) are never touched here:
//! their own guards wait for them.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use super::super::readiness::{POLL, pid_alive};
use crate::orchestrator::os::procstat::{proc_info, proc_pids};

/// Makes the harness a child subreaper, so daemonized grandchildren are
/// re-parented to it instead of to init.
pub(crate) fn adopt_orphans() -> Result<(), nix::Error> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// Pids whose parent is the harness (its own children and adopted
/// orphans, zombies included), the [`watchdog`](crate::orchestrator::os::watchdog)
/// left out.
pub(super) fn orphans() -> Vec<u32> {
    let me = std::process::id();
    proc_pids()
        .filter(|pid| !crate::orchestrator::os::watchdog::is_watchdog(*pid))
        .filter(|pid| proc_info(*pid).is_some_and(|p| p.ppid == me))
        .collect()
}

/// SIGKILL to every adopted process (children of the harness not in `ours`).
pub(super) fn kill_adopted(ours: &[u32]) {
    for pid in orphans() {
        if !ours.contains(&pid) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Reaps the adopted processes that have exited, without waiting.
pub(super) fn reap_adopted(ours: &[u32]) {
    for pid in orphans() {
        if !ours.contains(&pid) && !pid_alive(pid) {
            let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Reaps adopted processes until none is left or `limit` passed.
pub(super) async fn reap_all_adopted(ours: &[u32], limit: Duration) {
    let until = tokio::time::Instant::now() + limit;
    loop {
        reap_adopted(ours);
        let left = orphans().into_iter().any(|p| !ours.contains(&p));
        if !left || tokio::time::Instant::now() >= until {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}
