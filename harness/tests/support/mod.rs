//! Test support: scenario files in temp dirs, running the binary with a
//! deadline, and checking that nothing it started is left.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A duration scaled by the slow-machine multiplier (`RELOADBENCH_TEST_SLOW=3`).
pub(crate) use reloadbench_model::test_timing::scaled;

/// A temp dir holding one scenario file, its limits scaled by [`scaled_limits`].
pub(crate) fn scenario_dir(name: &str, text: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), scaled_limits(text)).unwrap();
    dir
}

/// The scenario text with its limits scaled for slow machines (see
/// [`reloadbench_model::test_timing::scaled_timeouts`]).
pub(crate) use reloadbench_model::test_timing::scaled_timeouts as scaled_limits;

/// A finished `reloadbench` invocation.
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// The run directory (`--out`), inside the scenario's temp dir.
    pub(crate) out: PathBuf,
    _dir: PathBuf,
}

/// Runs `reloadbench args... --out <dir>/run` in `dir` (for `run`), with a deadline.
pub(crate) fn reloadbench(dir: &TempDir, args: &[&str], deadline: Duration) -> Run {
    reloadbench_env(dir, args, &[], deadline)
}

/// [`reloadbench`] with extra environment variables.
pub(crate) fn reloadbench_env(
    dir: &TempDir,
    args: &[&str],
    envs: &[(&str, &str)],
    deadline: Duration,
) -> Run {
    let out = dir.path().join("run");
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    if args.first() == Some(&"run") {
        all.push("--out".into());
        all.push(out.display().to_string());
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reloadbench"));
    cmd.args(&all)
        .envs(envs.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().expect("spawn reloadbench");
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(scaled(deadline)) {
        Ok(o) => o.expect("wait for reloadbench"),
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("reloadbench {all:?} did not finish within {deadline:?}");
        }
    };
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        out,
        _dir: dir.path().to_owned(),
    };
    if envs.is_empty() && run.stderr.contains("refproxy not found") {
        panic!("{}", run.stderr);
    }
    run
}

impl Run {
    /// Asserts the exit code, showing the output and logs otherwise.
    pub(crate) fn assert_code(&self, want: i32) {
        if self.code != Some(want) {
            panic!(
                "exit code {:?}, expected {want}\n--- stderr\n{}\n--- stdout\n{}\n--- logs\n{}",
                self.code,
                self.stderr,
                self.stdout,
                self.logs()
            );
        }
    }

    /// Every stderr log of the run, with its path.
    pub(crate) fn logs(&self) -> String {
        let mut s = String::new();
        let Ok(cases) = std::fs::read_dir(self.out.join("cases")) else {
            return s;
        };
        for case in cases.flatten() {
            let Ok(logs) = std::fs::read_dir(case.path().join("logs")) else {
                continue;
            };
            for f in logs.flatten() {
                let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                s.push_str(&format!("== {}\n", f.path().display()));
                for l in tail.iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
        s
    }

    /// Pids listed in the run's `pids.log`.
    pub(crate) fn started_pids(&self) -> Vec<u32> {
        pids_log(&self.out)
            .into_iter()
            .map(|(pid, _)| pid)
            .collect()
    }

    /// The directory of the run's case `index` (from 0): `cases/NN-name`.
    #[allow(dead_code)] // not every test binary looks into case directories
    pub(crate) fn case_dir(&self, index: usize) -> std::path::PathBuf {
        let prefix = format!("{:02}-", index + 1);
        std::fs::read_dir(self.out.join("cases"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .unwrap_or_else(|| panic!("no directory of case {index} in {}", self.out.display()))
    }

    /// The run's `results.json`.
    pub(crate) fn results(&self) -> reloadbench_model::run::RunReport {
        let text = std::fs::read_to_string(self.out.join("results.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Asserts that no pid reloadbench started is alive, and that no
    /// process (workers included) runs with a path of this run in its
    /// command line. Waits (bounded) for init to reap orphaned zombies.
    pub(crate) fn assert_no_process_left(&self) {
        let needle = self._dir.display().to_string();
        let deadline = Instant::now() + scaled(Duration::from_secs(10));
        loop {
            let alive: Vec<u32> = self
                .started_pids()
                .into_iter()
                .filter(|p| Path::new(&format!("/proc/{p}")).exists())
                .collect();
            let mentioning = processes_mentioning(&needle);
            if alive.is_empty() && mentioning.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                panic!("processes left: started {alive:?}, mentioning the run: {mentioning:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The `(pid, name)` lines of `pids.log` in the run directory `out` (none
/// while it does not exist).
pub(crate) fn pids_log(out: &Path) -> Vec<(u32, String)> {
    std::fs::read_to_string(out.join("pids.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, name) = l.split_once(' ')?;
            Some((pid.parse().ok()?, name.to_owned()))
        })
        .collect()
}

/// Live processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && pid != std::process::id() {
            out.push((pid, cmd));
        }
    }
    out
}
