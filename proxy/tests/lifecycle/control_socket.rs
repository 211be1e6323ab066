//! The control socket file and who may use it: only a stale socket is ever replaced, and
//! only the same uid gets an answer, whatever the file mode says.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reloadbench_model::event::EventKind;

use crate::support::*;

/// The uid (and gid) of the foreign client: `nobody`.
const OTHER_UID: u32 = 65534;

fn run_check(config: &std::path::Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_start_refuse_a_control_socket_path_that_is_not_a_socket() {
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new("127.0.0.1:9".parse().unwrap()));
    let ctl = s.control();

    // Nothing there, or a stale socket: fine for `check`.
    assert_eq!(run_check(&cfg).status.code(), Some(0));
    drop(std::os::unix::net::UnixListener::bind(&ctl).unwrap());
    assert_eq!(run_check(&cfg).status.code(), Some(0));
    std::fs::remove_file(&ctl).unwrap();

    for (make, kind) in [
        (
            (|p: &std::path::Path| std::fs::write(p, "precious").unwrap()) as fn(&std::path::Path),
            "a regular file",
        ),
        (|p| std::fs::create_dir(p).unwrap(), "a directory"),
    ] {
        make(&ctl);
        let out = run_check(&cfg);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            err.contains(&*ctl.to_string_lossy()) && err.contains(kind),
            "names the path and what it is: {err}"
        );

        let mut p = Proxy::spawn(
            [std::ffi::OsStr::new("--config"), cfg.as_os_str()],
            s.path("start.log"),
        )
        .unwrap();
        let st = p.wait_exit(scaled(20)).await.unwrap();
        assert_eq!(st.code(), Some(2), "{}", p.logs());
        assert!(p.logs().contains(kind), "{}", p.logs());
        let kept = std::fs::symlink_metadata(&ctl).unwrap();
        if kind == "a regular file" {
            assert_eq!(std::fs::read_to_string(&ctl).unwrap(), "precious");
            std::fs::remove_file(&ctl).unwrap();
        } else {
            assert!(kept.is_dir());
            std::fs::remove_dir(&ctl).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_uid_gets_no_handoff_even_when_the_socket_mode_is_widened() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: running a client as another uid needs root");
        return;
    }
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let ctl = s.control();
    let mode = std::fs::metadata(&ctl).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "created 0600");

    // Widen everything by hand: the directory, the socket, the foreign client's config
    // (without a control socket of its own, so nothing but the handoff could stop it).
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o666)).unwrap();
    let foreign_cfg = s.path("foreign.toml");
    std::fs::write(
        &foreign_cfg,
        format!("listen = [\"{addr}\"]\norigins = [\"{}\"]\n", o.addr()),
    )
    .unwrap();
    std::fs::set_permissions(&foreign_cfg, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut foreign = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&foreign_cfg)
        .arg("--upgrade-from")
        .arg(&ctl)
        .args(["--mode", "fd-pass"])
        .uid(OTHER_UID)
        .gid(OTHER_UID)
        .process_group(0)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.path("foreign.log")).unwrap())
        .spawn()
        .unwrap();
    let foreign_pid = foreign.id().unwrap();
    let st = tokio::time::timeout(scaled(20), foreign.wait())
        .await
        .unwrap_or_else(|_| {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(foreign_pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("the foreign client was not refused\n{}", old.logs())
        })
        .unwrap();
    let foreign_log = std::fs::read_to_string(s.path("foreign.log")).unwrap();
    assert_eq!(
        st.code(),
        Some(1),
        "the handoff fails for uid {OTHER_UID}: {foreign_log}"
    );
    let logs = old.logs();
    assert!(
        logs.contains("WARN")
            && logs.contains(&format!("uid {OTHER_UID}"))
            && logs.contains(&format!("pid {foreign_pid}")),
        "a WARN names the uid and pid: {logs}"
    );
    assert!(
        !old.events_seen()
            .iter()
            .any(|e| matches!(e.kind, EventKind::ReloadStarted { .. })),
        "no handoff started: {:?}",
        old.events_seen()
    );
    let (status, by) = get(addr).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        by.contains(&format!("pid={}", old.pid)) && by.contains("gen=1"),
        "{by}"
    );

    // The same uid still gets its handoff.
    let mut new = spawn_upgrade(&s, &cfg, "fd-pass", &[], "gen2.log").unwrap();
    assert_eq!(new.ready().await.unwrap(), (2, addr));
    old.wait_event("reload_done", is_reload_done).await.unwrap();
    assert!(old.wait_exit(scaled(20)).await.unwrap().success());
    assert!(new.stop().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_another_uid_are_logged_once_a_second_with_a_count() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: running a client as another uid needs root");
        return;
    }
    const FLOOD: u64 = 20;
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let mut p = Proxy::spawn_with(
        [std::ffi::OsStr::new("--config"), cfg.as_os_str()],
        s.path("gen1.log"),
        Spawn {
            stderr_lines: true,
            ..Spawn::default()
        },
    )
    .unwrap();
    p.ready().await.unwrap();
    let ctl = s.control();
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o666)).unwrap();
    let foreign_cfg = s.path("foreign.toml");
    std::fs::write(
        &foreign_cfg,
        format!("listen = [\"127.0.0.1:0\"]\norigins = [\"{}\"]\n", o.addr()),
    )
    .unwrap();
    std::fs::set_permissions(&foreign_cfg, std::fs::Permissions::from_mode(0o644)).unwrap();

    // A client of another uid, one after the other: each is refused and exits 1.
    let start = Instant::now();
    for _ in 0..FLOOD {
        let mut foreign = tokio::process::Command::new(BIN)
            .arg("--config")
            .arg(&foreign_cfg)
            .arg("--upgrade-from")
            .arg(&ctl)
            .args(["--mode", "fd-pass"])
            .uid(OTHER_UID)
            .gid(OTHER_UID)
            .process_group(0)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let st = tokio::time::timeout(scaled(20), foreign.wait())
            .await
            .expect("the foreign client was refused in time")
            .unwrap();
        assert_eq!(st.code(), Some(1));
    }
    let flood = start.elapsed();

    // Connections of our uid, until the count still unreported is logged (once a line
    // is due again).
    let lines = p.log_lines();
    let mut refused = Vec::new();
    let rest = tokio::time::timeout(scaled(20), async {
        let mut next = tokio::time::interval(Duration::from_millis(200));
        let mut ours = Vec::new();
        loop {
            tokio::select! {
                l = lines.recv() => match l {
                    Some(l) if l.contains("control connection refused") => refused.push(l),
                    Some(l) if l.contains("control connections of other uids were refused") => {
                        return l;
                    }
                    Some(_) => {}
                    None => panic!("stderr closed"),
                },
                _ = next.tick() => ours.push(tokio::net::UnixStream::connect(&ctl).await.unwrap()),
            }
        }
    })
    .await
    .expect("the refusals not logged are reported");

    assert!(
        refused.len() as u64 <= flood.as_secs() + 1,
        "{} refusal lines for {FLOOD} refusals in {flood:?}:\n{}",
        refused.len(),
        refused.join("\n")
    );
    assert!(
        refused[0].contains("WARN") && refused[0].contains(&format!("uid {OTHER_UID}")),
        "{}",
        refused[0]
    );
    // Every refusal is accounted for: logged, or counted in a later line.
    let counted: u64 = refused
        .iter()
        .chain([&rest])
        .map(|l| suppressed(l).expect("a count"))
        .sum();
    assert_eq!(
        refused.len() as u64 + counted,
        FLOOD,
        "{}\n{rest}",
        refused.join("\n")
    );
    assert!(p.stop().await.unwrap().success());
}
