use std::process::{Child, Command};
use std::time::Instant;

use super::*;
use crate::scenario::Template;

/// A `sleep` the test owns: killed and reaped when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cmd(c: &str) -> PidSource {
    PidSource::Command(Template::new(c))
}

async fn find(source: &PidSource, dir: &Path, pids: &PidLog) -> Result<u32, PidError> {
    find_pid(source, &Vars::new(), dir, dir, 1, pids).await
}

#[tokio::test]
async fn the_harness_its_ancestors_and_the_runs_processes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pids = PidLog::memory();
    let f = dir.path().join("p.pid");
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    let started = Sleeper::start();
    pids.record(started.pid(), "origin");
    for (pid, who) in [
        (me, "the harness itself"),
        (parent, "an ancestor of the harness"),
        (started.pid(), "a process the run started"),
        (1, "init (or no process)"),
    ] {
        std::fs::write(&f, format!("{pid}\n")).unwrap();
        let e = find(&PidSource::File(f.clone()), dir.path(), &pids).await;
        assert!(
            matches!(e, Err(PidError::Refused { pid: p, who: w }) if p == pid && w == who),
            "{pid}: {e:?}"
        );
    }
    // `echo $PPID` in a pid command is the harness.
    let e = find(&cmd("echo $PPID"), dir.path(), &pids).await;
    assert!(
        matches!(e, Err(PidError::Refused { pid, .. }) if pid == me),
        "{e:?}"
    );
    // A thread of the harness names the harness too.
    let tid = nix::unistd::gettid().as_raw() as u32;
    assert!(matches!(
        check_signallable(tid, &pids),
        Err(PidError::Refused { .. })
    ));
    // Someone else's live process may be signalled.
    let other = Sleeper::start();
    std::fs::write(&f, format!("{}\n", other.pid())).unwrap();
    assert_eq!(
        find(&PidSource::File(f.clone()), dir.path(), &pids)
            .await
            .unwrap(),
        other.pid()
    );
}

#[tokio::test]
async fn a_pid_command_prints_exactly_one_pid() {
    let dir = tempfile::tempdir().unwrap();
    let pids = PidLog::memory();
    let other = Sleeper::start();
    let p = other.pid();
    for c in [
        format!("echo 'nginx: [warn] {p} worker_connections'"),
        format!("echo {p} {p}"),
        format!("printf '{p}\\n{p}\\n'"),
    ] {
        let e = find(&cmd(&c), dir.path(), &pids).await;
        assert!(
            matches!(
                &e,
                Err(PidError::Command {
                    why: CommandFailure::NotOnePid(_),
                    ..
                })
            ),
            "{c}: {e:?}"
        );
    }
    assert_eq!(
        find(&cmd(&format!("echo {p}")), dir.path(), &pids)
            .await
            .unwrap(),
        p
    );
}

#[tokio::test]
async fn a_pid_command_runs_in_the_case_dir_bounded_and_its_output_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pids = PidLog::memory();
    let other = Sleeper::start();
    // Relative paths are the case directory's, as for an exec action.
    std::fs::write(dir.path().join("server.pid"), format!("{}\n", other.pid())).unwrap();
    assert_eq!(
        find(&cmd("cat server.pid"), dir.path(), &pids)
            .await
            .unwrap(),
        other.pid()
    );
    // A background child holding stdout does not make it time out, and
    // is killed with the command's group.
    let t0 = Instant::now();
    let got = find(
        &cmd("sleep 47 & echo $! > bg.pid; cat server.pid"),
        dir.path(),
        &pids,
    )
    .await;
    assert_eq!(got.unwrap(), other.pid());
    assert!(t0.elapsed() < PID_COMMAND_TIMEOUT, "{:?}", t0.elapsed());
    let bg: u32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Killed (a zombie at most until its reaper, init, collects it).
    let deadline = Instant::now() + reloadbench_model::test_timing::scaled_secs(10);
    while pid_alive(bg) {
        assert!(Instant::now() < deadline, "background child {bg} survives");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Endless output: stopped at the bound, not read for 5 s.
    let t0 = Instant::now();
    let e = find(&cmd("yes 1"), dir.path(), &pids).await;
    assert!(
        matches!(
            &e,
            Err(PidError::Command {
                why: CommandFailure::TooMuch,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(t0.elapsed() < PID_COMMAND_TIMEOUT, "{:?}", t0.elapsed());
    // A failure says why, with its stderr, and the logs keep the output.
    let e = find(
        &cmd("echo partial; echo oops >&2; exit 3"),
        dir.path(),
        &pids,
    )
    .await
    .unwrap_err();
    let msg = e.to_string();
    for want in [
        "exit status: 3",
        "oops",
        "partial",
        "pid-command-1.stdout.log",
    ] {
        assert!(msg.contains(want), "{want}: {msg}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pid-command-1.stderr.log")).unwrap(),
        "oops\n"
    );
}
