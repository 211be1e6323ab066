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
pub(crate) enum CgroupError {
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
pub(crate) struct RunCgroup {
    dir: PathBuf,
}

impl RunCgroup {
    /// Creates `reloadbench.<pid>` below `pid`'s cgroup and moves `pid` into it.
    pub(crate) fn enter(pid: u32) -> Result<RunCgroup, CgroupError> {
        let dir = own_cgroup(pid)?.join(format!("reloadbench.{pid}"));
        RunCgroup::create(dir, pid)
    }

    /// Creates the cgroup `dir` and moves `pid` into it; when the move
    /// fails (no delegation: `EACCES`) the directory is removed again.
    fn create(dir: PathBuf, pid: u32) -> Result<RunCgroup, CgroupError> {
        std::fs::create_dir(&dir).map_err(|source| CgroupError::Io {
            path: dir.clone(),
            source,
        })?;
        let procs = dir.join("cgroup.procs");
        if let Err(source) = std::fs::write(&procs, pid.to_string()) {
            let _ = std::fs::remove_dir(&dir);
            return Err(CgroupError::Io {
                path: procs,
                source,
            });
        }
        Ok(RunCgroup { dir })
    }

    /// The cgroup directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Kills every process in the cgroup (`cgroup.kill`, or SIGKILL to each
    /// member on kernels before 5.14) and removes it once empty, waiting up
    /// to `limit`.
    pub(crate) fn kill_and_remove(&self, limit: Duration) -> Result<(), CgroupError> {
        let until = Instant::now() + limit;
        let killed = std::fs::write(self.dir.join("cgroup.kill"), "1").is_ok();
        // rmdir fails (EBUSY) while members remain.
        loop {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= until => {
                    return Err(CgroupError::Io {
                        path: self.dir.clone(),
                        source: e,
                    });
                }
                Err(_) => {
                    if !killed {
                        for pid in self.members() {
                            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
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

/// The directory of `pid`'s cgroup in the cgroup v2 hierarchy.
pub(crate) fn own_cgroup(pid: u32) -> Result<PathBuf, CgroupError> {
    let mount = cgroup2_mount().ok_or(CgroupError::NotMounted)?;
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        })
        .ok_or(CgroupError::Unknown(pid))?;
    Ok(mount.join(own.trim_start_matches('/')))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh cgroup below this process's own, or `None` (with a note)
    /// where cgroups cannot be created here.
    fn scratch(name: &str) -> Option<PathBuf> {
        let me = std::process::id();
        let dir = own_cgroup(me)
            .ok()?
            .join(format!("reloadbench-test-{name}.{me}"));
        let probe = dir.with_extension("probe");
        if std::fs::create_dir(&probe).is_err() {
            eprintln!("no writable cgroup v2 here: test skipped");
            return None;
        }
        let _ = std::fs::remove_dir(&probe);
        Some(dir)
    }

    #[test]
    fn a_cgroup_that_cannot_be_entered_is_removed_again() {
        let Some(dir) = scratch("enter") else {
            return;
        };
        // No process has this pid (pid_max is at most 2^22): the move fails.
        let got = RunCgroup::create(dir.clone(), i32::MAX as u32);
        let left = dir.exists();
        let _ = std::fs::remove_dir(&dir);
        assert!(
            matches!(&got, Err(CgroupError::Io { path, .. }) if path.ends_with("cgroup.procs")),
            "{got:?}"
        );
        assert!(!left, "{} was left behind", dir.display());
    }

    #[test]
    fn kill_and_remove_kills_the_members_and_removes_the_cgroup() {
        let Some(dir) = scratch("kill") else {
            return;
        };
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let cg = match RunCgroup::create(dir.clone(), child.id()) {
            Ok(cg) => cg,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{e}");
            }
        };
        assert_eq!(cg.members(), vec![child.id()]);
        let got = cg.kill_and_remove(Duration::from_secs(10));
        if got.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        got.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert!(!dir.exists());
    }
}
