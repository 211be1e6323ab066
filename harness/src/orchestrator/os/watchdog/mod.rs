//! The watchdog: a small process that kills every process of the run when
//! the harness dies, on every path, `SIGKILL` of the harness included.
//!
//! `reloadbench run` starts it ([`start`]) once the scenario is valid,
//! before any other process, as `reloadbench __watchdog` in its own
//! process group, with a pipe as stdin. The watchdog moves the harness into a fresh cgroup v2 when it can
//! ([`cgroup`]); either way the harness tells it, over the pipe, every pid
//! it starts (`track`) and every process group it has killed (`forget`),
//! and every child carries the run's marker in its environment
//! ([`MARKER_VAR`]). When the pipe reaches end of file the harness is gone:
//! the watchdog kills the cgroup and every process it can name: the tracked
//! pids (checked by start time), members of their process groups, marked
//! processes and all their descendants ([`tree`]). Without a cgroup it also
//! notes the harness's descendants every 100 ms, so a daemon that left its
//! group and session is known before it is re-parented away.
//!
//! `PR_SET_PDEATHSIG` is not used: it fires when the *thread* that spawned
//! a child exits, and it is lost by the grandchildren a daemon forks.

pub(crate) mod cgroup;
pub(crate) mod serve;
pub(crate) mod tree;

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use std::os::unix::process::CommandExt;

/// Environment variable every child of a run carries; its value names the run.
pub(crate) const MARKER_VAR: &str = "RELOADBENCH_RUN";

/// Environment variable that, set to `0`, keeps the watchdog from using a
/// cgroup (it then tracks pids and descendants only).
pub(crate) const CGROUP_ENV: &str = "RELOADBENCH_CGROUP";

/// The hidden subcommand that runs the watchdog.
pub(crate) const SUBCOMMAND: &str = "__watchdog";

/// Why the watchdog could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchdogError {
    /// The executable could not be spawned.
    #[error("cannot start the watchdog: {0}")]
    Spawn(std::io::Error),
    /// Its first line could not be read.
    #[error("the watchdog did not start: {0}")]
    Read(#[source] std::io::Error),
    /// Its stdin or stdout was not piped.
    #[error("the watchdog did not start: no pipes")]
    NoPipes,
    /// It did not say it was ready; what it said instead.
    #[error("the watchdog did not start: it said {0:?}")]
    Handshake(String),
}

/// The running watchdog, as the harness sees it.
#[derive(Debug)]
pub(crate) struct Watchdog {
    pid: u32,
    marker: String,
    pipe: Mutex<ChildStdin>,
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

/// Starts the watchdog for this process (once; later calls return the
/// first one) and waits until it watches: from then on every process the
/// run starts is killed when the harness dies.
pub(crate) fn start() -> Result<&'static Watchdog, WatchdogError> {
    if let Some(w) = WATCHDOG.get() {
        return Ok(w);
    }
    let exe = std::env::current_exe().map_err(WatchdogError::Spawn)?;
    let me = std::process::id();
    let marker = format!("{me}.{}", reloadbench_model::clock::monotonic_ns());
    let cgroup = std::env::var(CGROUP_ENV).map_or(true, |v| v != "0");
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .arg("--harness")
        .arg(me.to_string())
        .arg("--marker")
        .arg(&marker)
        .arg(format!("--cgroup={cgroup}"))
        .env_remove(MARKER_VAR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(WatchdogError::Spawn)?;
    let pid = child.id();
    let (Some(pipe), Some(out)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(WatchdogError::NoPipes);
    };
    let mut hello = String::new();
    BufReader::new(out)
        .read_line(&mut hello)
        .map_err(WatchdogError::Read)?;
    if !hello.trim().starts_with("ready ") {
        return Err(WatchdogError::Handshake(hello.trim().to_owned()));
    }
    // The watchdog is never waited for: it outlives the harness.
    drop(child);
    Ok(WATCHDOG.get_or_init(|| Watchdog {
        pid,
        marker,
        pipe: Mutex::new(pipe),
    }))
}

impl Watchdog {
    fn send(&self, verb: &str, pid: u32) {
        if let Ok(mut p) = self.pipe.lock() {
            let _ = writeln!(p, "{verb} {pid}");
        }
    }
}

/// The marker environment variable of this run's children, if a watchdog runs.
pub(crate) fn marker() -> Option<(&'static str, &'static str)> {
    WATCHDOG.get().map(|w| (MARKER_VAR, w.marker.as_str()))
}

/// Tells the watchdog (if any) that the run started `pid`.
pub(crate) fn track(pid: u32) {
    if let Some(w) = WATCHDOG.get() {
        w.send("track", pid);
    }
}

/// Tells the watchdog (if any) that the process group led by `pid` was
/// killed and reaped: its number may be reused.
pub(crate) fn forget(pid: u32) {
    if let Some(w) = WATCHDOG.get() {
        w.send("forget", pid);
    }
}

/// Whether `pid` is the watchdog (a child of the harness that is not part
/// of any case).
pub(crate) fn is_watchdog(pid: u32) -> bool {
    WATCHDOG.get().is_some_and(|w| w.pid == pid)
}
