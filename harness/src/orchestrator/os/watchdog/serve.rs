//! The watchdog process itself (`reloadbench __watchdog`): started by the
//! harness before any other process of the run, it outlives the harness by the time it
//! takes to kill what the harness left.
//!
//! It learns of the harness's death from its stdin: a pipe whose only
//! writer is the harness (close-on-exec, so no child holds it), at end of
//! file the harness's descriptors are gone, and it waits until its own
//! parent pid changes (the kernel re-parents the harness's children in the
//! same step), then kills: the run's cgroup if it has one, and in any case
//! every process of the [`RunSet`]. Without a cgroup it also walks `/proc`
//! every [`SCAN`] to note the harness's descendants, so a daemon that left
//! its process group is known before it is re-parented away.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::unistd::{Pid, getppid};

use super::super::procstat::boot_ticks;
use super::cgroup::{CgroupError, RunCgroup};
use super::tree::{RunSet, snapshot};

/// How often the harness's descendants are noted when there is no cgroup.
pub(crate) const SCAN: Duration = Duration::from_millis(100);

/// How long the kill may take before the watchdog gives up.
const KILL_LIMIT: Duration = Duration::from_secs(10);

/// What the watchdog is told on its command line.
#[derive(Debug, Clone)]
pub(crate) struct ServeArgs {
    /// The harness's pid (the watchdog's parent).
    pub harness: u32,
    /// `VAR=value` every child of the run carries in its environment.
    pub marker: (String, String),
    /// Whether to try a cgroup.
    pub cgroup: bool,
}

/// Why the watchdog tracks processes without a cgroup (said in its
/// `ready tracking (...)` line).
#[derive(Debug, thiserror::Error)]
enum NoCgroup {
    /// The harness exited before the watchdog started.
    #[error("the harness is gone")]
    HarnessGone,
    /// The harness asked for no cgroup.
    #[error("disabled")]
    Disabled,
    /// The run's cgroup could not be created or entered.
    #[error(transparent)]
    Failed(CgroupError),
}

/// Runs the watchdog until the harness is gone and its processes are
/// killed; returns the exit code.
pub(crate) fn serve(args: &ServeArgs) -> u8 {
    // Ctrl-C and hang-ups are for the harness, which stops gracefully; the
    // watchdog stays to clean up after it.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT] {
        mask.add(s);
    }
    let _ = mask.thread_block();
    let mut set = RunSet {
        marker: Some(args.marker.clone()),
        exclude: vec![std::process::id()],
        ..RunSet::default()
    };
    let harness_alive = || getppid().as_raw() as u32 == args.harness;
    let cgroup = if !harness_alive() {
        Err(NoCgroup::HarnessGone)
    } else if args.cgroup {
        RunCgroup::enter(args.harness).map_err(NoCgroup::Failed)
    } else {
        Err(NoCgroup::Disabled)
    };
    let hello = match &cgroup {
        Ok(cg) => format!("ready cgroup {}", cg.path().display()),
        Err(why) => format!("ready tracking ({})", crate::cause::chain(why)),
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{hello}");
        let _ = out.flush();
    }
    if harness_alive() {
        watch(&mut set, cgroup.is_err(), args.harness);
    }
    // The harness's last descendants, in case it is still exiting.
    if cgroup.is_err() {
        let at = boot_ticks();
        set.track_descendants(args.harness, &snapshot(), at);
    }
    let until = Instant::now() + KILL_LIMIT;
    while harness_alive() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut code = 0;
    if let Ok(cg) = &cgroup
        && let Err(e) = cg.kill_and_remove(KILL_LIMIT)
    {
        eprintln!("reloadbench watchdog: {}", crate::cause::chain(&e));
        code = 1;
    }
    let left = kill_all(&set, until);
    if !left.is_empty() {
        eprintln!("reloadbench watchdog: processes of the run survived SIGKILL: {left:?}");
        code = 1;
    }
    code
}

/// Reads `track PID` / `forget PID` lines from stdin until end of file,
/// noting the harness's descendants every [`SCAN`] when `scan` (and then
/// dropping the tracked pids found dead, whose numbers may be reused).
fn watch(set: &mut RunSet, scan: bool, harness: u32) {
    let stdin = std::io::stdin();
    let timeout = if scan {
        PollTimeout::try_from(SCAN).unwrap_or(PollTimeout::NONE)
    } else {
        PollTimeout::NONE
    };
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let mut next_scan = Instant::now();
    loop {
        if scan && Instant::now() >= next_scan {
            let at = boot_ticks();
            let procs = snapshot();
            set.observe(&procs, at);
            set.track_descendants(harness, &procs, at);
            next_scan = Instant::now() + SCAN;
        }
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            apply(set, &String::from_utf8_lossy(&line));
        }
    }
}

/// Applies one line of the harness.
fn apply(set: &mut RunSet, line: &str) {
    let mut words = line.split_whitespace();
    let (Some(verb), Some(Ok(pid))) = (words.next(), words.next().map(str::parse::<u32>)) else {
        return;
    };
    match verb {
        "track" => set.track(pid),
        "forget" => {
            set.tracked.remove(&pid);
        }
        _ => {}
    }
}

/// SIGKILL to every process of `set`, and to each of its process groups
/// as a whole (so a member forked after the look at `/proc` dies too),
/// until none is left or `until`; returns the pids still alive then.
fn kill_all(set: &RunSet, until: Instant) -> Vec<u32> {
    loop {
        let procs = snapshot();
        let members = set.members(&procs);
        if members.is_empty() || Instant::now() >= until {
            return members.iter().map(|p| p.pid).collect();
        }
        for g in set.groups(&procs) {
            let holds_excluded = procs
                .iter()
                .any(|p| p.pgid == g && set.exclude.contains(&p.pid));
            if !holds_excluded {
                let _ = killpg(Pid::from_raw(g as i32), Signal::SIGKILL);
            }
        }
        for p in &members {
            let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
