//! A cgroup v2 for the run, where one is writable: the harness is moved
//! into a fresh leaf `reloadbench.<pid>` below its own cgroup, so every
//! process it starts, daemons that left its session included, is in it; on
//! the harness's death `cgroup.kill` kills them all at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Why no cgroup could be used.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup v2 hierarchy is mounted.
    #[error("no cgroup v2 hierarchy is mounted")]
    NotMounted,
    /// The harness's place in the hierarchy is unknown.
    #[error("cannot read the cgroup of pid {0}")]
    Unknown(u32),
    /// The cgroup could not be created or entered.
    #[error("cannot use cgroup {path}: {source}")]
    Io {
        /// The cgroup directory or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A cgroup holding the harness and everything it starts.
#[derive(Debug)]
pub struct RunCgroup {
    dir: PathBuf,
}

impl RunCgroup {
    /// Creates `reloadbench.<pid>` below `pid`'s cgroup and moves `pid` into it.
    pub fn enter(pid: u32) -> Result<RunCgroup, CgroupError> {
        let mount = cgroup2_mount().ok_or(CgroupError::NotMounted)?;
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
            })
            .ok_or(CgroupError::Unknown(pid))?;
        let dir = mount
            .join(own.trim_start_matches('/'))
            .join(format!("reloadbench.{pid}"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CgroupError::Io { path, source }
        };
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let cg = RunCgroup { dir };
        let procs = cg.dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(io(&procs))?;
        Ok(cg)
    }

    /// The cgroup directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Kills every process in the cgroup (`cgroup.kill`, or SIGKILL to each
    /// member on kernels before 5.14) and removes it once empty, waiting up
    /// to `limit`.
    pub fn kill_and_remove(&self, limit: Duration) -> Result<(), CgroupError> {
        let until = Instant::now() + limit;
        let killed = std::fs::write(self.dir.join("cgroup.kill"), "1").is_ok();
        loop {
            let members = self.members();
            if members.is_empty() {
                break;
            }
            if !killed {
                for pid in &members {
                    let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
                }
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // rmdir succeeds once the last member has exited.
        loop {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= until => {
                    return Err(CgroupError::Io {
                        path: self.dir.clone(),
                        source: e,
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn members(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on hybrid systems), from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}
