//! SIGKILL of `reloadbench run` at several moments (just after the origin
//! started, during the load with master-worker reloads, in the middle of an
//! fd-pass handoff, with a daemonized command server under load) leaves no
//! process of the run: with the run's cgroup and with pid tracking alone.
//!
//! Independent of the harness's bookkeeping, the test puts its own marker
//! in the harness's environment (every descendant inherits it) and walks
//! `/proc` for live processes carrying it, or listed in `pids.log`.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{scaled, scenario_dir};

const MARK_VAR: &str = "RELOADBENCH_TEST_SIGKILL";

/// Reference proxy, endless load; `actions` and `master` vary.
fn reference(mode: &str, actions: &str) -> String {
    format!(
        r#"
[load]
concurrency = 10
requests = 10_000_000
[proxy]
kind = "reference"

[[case]]
name = "killed"
actions = [
  {{ every = "100ms", do = "reload", mode = "{mode}" }},
  {actions}
]
"#
    )
}

/// A command server that daemonizes: `daemon.sh` double-forks, the server
/// (`reloadbench origin`) runs in a new session, both parents exit.
fn daemon_scenario() -> String {
    r#"
[load]
concurrency = 10
requests = 10_000_000
[proxy]
kind = "command"
binary = "sh"
pidfile = "{dir}/server.pid"
start = "sh {scenario_dir}/daemon.sh {listen} {pidfile}"
main_pid = "pid_file"
ready = { port = true, timeout = "10s" }
stop = { signal = "TERM" }
stop_timeout = "5s"

[[case]]
name = "killed"
actions = [
  { every = "200ms", do = "exec", command = "true" },
  { after_requests = 2_000, do = "exec", command = "kill -KILL $PPID" },
]
"#
    .to_owned()
}

fn daemon_script() -> String {
    format!(
        "#!/bin/sh\n\
         # Daemonizes like `haproxy -D`: new session, the parents exit at once.\n\
         setsid sh -c '\"$0\" origin --listen \"$1\" </dev/null >/dev/null 2>&1 & echo $! > \"$2\"' \
         '{}' \"$1\" \"$2\" &\n",
        env!("CARGO_BIN_EXE_reloadbench")
    )
}

/// When the test kills the harness.
enum Moment {
    /// Once `pids.log` has `n` lines naming `name`.
    Started(&'static str, usize),
    /// The scenario kills it itself (an exec action).
    ByScenario,
}

/// A running `reloadbench run` with the test's marker.
struct Harness {
    child: Child,
    out: PathBuf,
    mark: String,
}

fn start(dir: &Path, file: &str, cgroup: bool, mark: &str) -> Harness {
    let out = dir.join("run");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reloadbench"));
    cmd.args(["run", file, "-q", "--out"])
        .arg(&out)
        .env(MARK_VAR, mark)
        .env("RELOADBENCH_CGROUP", if cgroup { "1" } else { "0" })
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Harness {
        child: cmd.spawn().expect("spawn reloadbench"),
        out,
        mark: mark.to_owned(),
    }
}

impl Harness {
    fn pids_log(&self) -> Vec<(u32, String)> {
        support::pids_log(&self.out)
    }

    /// Waits for `moment`, then SIGKILLs the harness (the pid only) and reaps it.
    fn kill_at(&mut self, moment: &Moment, what: &str) {
        let deadline = Instant::now() + scaled(Duration::from_secs(60));
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                match moment {
                    Moment::ByScenario => {
                        assert_eq!(
                            std::os::unix::process::ExitStatusExt::signal(&st),
                            Some(9),
                            "{what}: the harness ended with {st}, not by SIGKILL"
                        );
                        return;
                    }
                    Moment::Started(..) => {
                        self.cleanup();
                        panic!("{what}: the harness exited ({st}) before the moment");
                    }
                }
            }
            if let Moment::Started(name, n) = moment
                && self.pids_log().iter().filter(|(_, p)| p == name).count() >= *n
            {
                break;
            }
            if Instant::now() >= deadline {
                self.cleanup();
                panic!(
                    "{what}: the moment did not come; pids.log: {:?}",
                    self.pids_log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL).unwrap();
        self.child.wait().unwrap();
    }

    /// Live processes of the run: carrying the marker, or in `pids.log`.
    fn left(&self) -> Vec<(u32, String)> {
        let logged: Vec<u32> = self.pids_log().iter().map(|(p, _)| *p).collect();
        let mut left = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_none_or(|(_, r)| r.trim_start().starts_with(['Z', 'X']));
            if zombie || pid == std::process::id() {
                continue;
            }
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let want = format!("{MARK_VAR}={}", self.mark);
            let marked = env.split(|b| *b == 0).any(|v| v == want.as_bytes());
            if marked || logged.contains(&pid) {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                left.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
            }
        }
        left
    }

    /// Waits (bounded) until no process of the run is alive; on failure
    /// kills what is left and names it.
    fn nothing_left(&mut self, what: &str) -> Result<(), String> {
        let deadline = Instant::now() + scaled(Duration::from_secs(10));
        loop {
            let left = self.left();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.cleanup();
                return Err(format!(
                    "{what}: processes of the run left after SIGKILL: {left:#?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn cleanup(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..50 {
            let left = self.left();
            if left.is_empty() {
                return;
            }
            for (pid, _) in left {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn kill_at_every_moment(cgroup: bool) {
    let mode = if cgroup { "cgroup" } else { "tracking" };
    let self_kill = r#"{ after_requests = 3_000, do = "exec", command = "kill -KILL $PPID" },"#;
    let runs: [(&str, String, Moment); 4] = [
        (
            "just after the origin started",
            reference("fd-pass", ""),
            Moment::Started("origin", 1),
        ),
        (
            "under load, master-worker reloads",
            reference("master-worker", self_kill),
            Moment::ByScenario,
        ),
        (
            "in an fd-pass handoff",
            reference("fd-pass", ""),
            Moment::Started("refproxy", 3),
        ),
        (
            "under load on a daemonized server",
            daemon_scenario(),
            Moment::ByScenario,
        ),
    ];
    let mut failures = Vec::new();
    for (i, (moment, text, when)) in runs.iter().enumerate() {
        let what = format!("{mode}: {moment}");
        let dir = scenario_dir("s.toml", text);
        std::fs::write(dir.path().join("daemon.sh"), daemon_script()).unwrap();
        let mark = format!("{}-{mode}-{i}", std::process::id());
        let mut h = start(dir.path(), "s.toml", cgroup, &mark);
        h.kill_at(when, &what);
        assert!(!h.pids_log().is_empty(), "{what}: pids.log is empty");
        if let Err(e) = h.nothing_left(&what) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn heavy_sigkill_of_the_harness_leaves_no_process_with_a_cgroup() {
    kill_at_every_moment(true);
}

#[test]
fn heavy_sigkill_of_the_harness_leaves_no_process_without_a_cgroup() {
    kill_at_every_moment(false);
}
