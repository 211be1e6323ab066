//! What `reloadbench run` leaves and says when it cannot finish normally: a
//! report file it cannot write is exit 3 naming the file; an interrupted run's
//! results and reports say how far it got.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{reloadbench, scenario_dir};

#[test]
fn heavy_a_report_that_cannot_be_written_exits_3_naming_the_file() {
    let text = "[load]\nconcurrency = 2\nrequests = 50\n[proxy]\nkind = \"reference\"\n\
                [[case]]\nname = \"a\"\nexpect = { failed = 0 }\n";
    let dir = scenario_dir("s.toml", text);
    // A directory where report.html goes: its write fails like a full disk would.
    std::fs::create_dir_all(dir.path().join("run/report.html")).unwrap();
    let run = reloadbench(&dir, &["run", "s.toml", "-q"], Duration::from_secs(60));
    run.assert_code(3);
    assert!(
        run.stderr.contains("cannot write the reports: ")
            && run.stderr.contains("run/report.html: "),
        "{}",
        run.stderr
    );
    let r = run.results();
    assert_eq!(r.cases.len(), 1, "results.json is complete");
    assert!(r.cases[0].passed());
    run.assert_no_process_left();
}

#[test]
fn heavy_an_interrupted_run_reports_how_far_it_got() {
    let text = r#"
[load]
concurrency = 4
[proxy]
kind = "reference"

[[case]]
name = "first"
load = { requests = 200 }
expect = { failed = 0 }

[[case]]
name = "second"
load = { requests = 10_000_000 }
actions = [{ after_requests = 300, do = "exec", command = "kill -INT $PPID" }]
expect = { failed = 0 }

[[case]]
name = "third"
load = { requests = 200 }
"#;
    let dir = scenario_dir("int.toml", text);
    let run = reloadbench(&dir, &["run", "int.toml", "-q"], Duration::from_secs(120));
    run.assert_code(130);
    let r = run.results();
    assert_eq!(r.planned_cases, ["first", "second", "third"]);
    let i = r
        .interrupted
        .as_ref()
        .expect("results.json says interrupted");
    assert_eq!(i.signal, "SIGINT");
    assert_eq!(i.case.as_deref(), Some("second"));
    assert_eq!(r.never_ran(), ["third"]);
    let md = std::fs::read_to_string(run.out.join("report.md")).unwrap();
    let want = "**Result: ⏹ interrupted: 1 of 3 cases finished** (by SIGINT; expectations of \
                the finished cases: 0 of 1 failed; cut short: `second`; never ran: `third`)";
    assert!(md.contains(want), "{md}");
    // -q: nothing on stdout, the result line on stderr.
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains(&want.replace("**", "")),
        "{}",
        run.stderr
    );
    assert!(!md.contains("❌ failed"), "{md}");
    run.assert_no_process_left();
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(child);
        }
    }
    found
}

#[test]
fn an_invalid_scenario_starts_no_watchdog() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("s.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let mut harness = Command::new(env!("CARGO_BIN_EXE_reloadbench"))
        .arg("run")
        .arg(&fifo)
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Opening the FIFO for writing returns once the harness opened it to
    // read the scenario (everything it does first is done then).
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::OpenOptions::new().write(true).open(path));
    });
    let Ok(Ok(mut writer)) = rx.recv_timeout(support::scaled(Duration::from_secs(30))) else {
        let _ = harness.kill();
        let _ = harness.wait();
        panic!("the harness never opened the scenario");
    };
    let children = children_of(harness.id());
    let _ = writer.write_all(b"[load]\nconcurrency = 0\n");
    drop(writer);
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = harness.id();
    std::thread::spawn(move || {
        let _ = tx.send(harness.wait());
    });
    let Ok(Ok(status)) = rx.recv_timeout(support::scaled(Duration::from_secs(30))) else {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("the harness did not exit");
    };
    assert_eq!(status.code(), Some(2));
    assert_eq!(children, Vec::<u32>::new(), "children before validation");
}
