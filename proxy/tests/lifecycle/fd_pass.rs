//! fd-passing reloads without load: the sockets, the control socket and the generation move
//! to the new process; the old one drains and exits.

use nix::sys::signal::Signal;
use reloadbench_model::event::{EventKind, ReloadMode};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fd_pass_moves_sockets_and_control_socket_to_the_new_generation() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let (status, by) = get(addr).await.unwrap();
    assert_eq!(status, 200);
    assert!(by.contains("gen=1"), "{by}");

    let mut new = spawn_upgrade(&s, &cfg, "fd-pass", &[], "gen2.log").unwrap();
    let (g, a) = new.ready().await.unwrap();
    assert_eq!((g, a), (2, addr), "same address, next generation");
    let done = old.wait_event("reload_done", is_reload_done).await.unwrap();
    assert_eq!(
        done.kind,
        EventKind::ReloadDone {
            generation: 2,
            new_pid: new.pid,
            mode: ReloadMode::FdPass
        }
    );
    let st = old.wait_exit(scaled(20)).await.unwrap();
    assert!(st.success(), "{st:?}\n{}", old.logs());
    let kinds: Vec<&'static str> = old
        .all_events()
        .await
        .iter()
        .map(|e| kind(&e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            "ready",
            "reload_started",
            "handoff_done",
            "reload_done",
            "draining",
            "drained",
            "counters",
            "exited"
        ]
    );
    let (_, by) = get(addr).await.unwrap();
    assert!(
        by.contains("gen=2") && by.contains(&format!("pid={}", new.pid)),
        "{by}"
    );

    let listening = listening_fds(new.pid);
    assert!(listening > 0);

    // The control socket now belongs to generation 2: a second reload finds it.
    let mut third = spawn_upgrade(&s, &cfg, "fd-pass", &[], "gen3.log").unwrap();
    assert_eq!(third.ready().await.unwrap(), (3, addr));
    new.wait_exit(scaled(20)).await.unwrap();
    assert_eq!(
        listening_fds(third.pid),
        listening,
        "no listening socket leaks from one generation to the next"
    );
    let (_, by) = get(addr).await.unwrap();
    assert!(by.contains("gen=3"), "{by}");

    third.signal(Signal::SIGTERM).unwrap();
    let st = third.wait_exit(scaled(20)).await.unwrap();
    assert!(st.success());
    assert!(!s.control().exists(), "control socket removed on exit");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nobody listens any more"
    );
}

pub(crate) fn kind(k: &EventKind) -> &'static str {
    match k {
        EventKind::Ready { .. } => "ready",
        EventKind::ReloadStarted { .. } => "reload_started",
        EventKind::HandoffDone { .. } => "handoff_done",
        EventKind::ReloadDone { .. } => "reload_done",
        EventKind::ReloadFailed { .. } => "reload_failed",
        EventKind::Draining { .. } => "draining",
        EventKind::Drained { .. } => "drained",
        EventKind::Counters { .. } => "counters",
        EventKind::Exited { .. } => "exited",
        EventKind::WorkerLost { .. } => "worker_lost",
        EventKind::WorkerRespawned { .. } => "worker_respawned",
        EventKind::Tunnels { .. } => "tunnels",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handed_over_sockets_are_matched_to_the_new_config_by_address() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let (mut old, addr) = start_plain(&s, &s.config("p.toml", &Conf::new(o.addr())), "gen1.log")
        .await
        .unwrap();
    // The new config keeps the old address (port 0 matches it) and adds 127.0.0.2:0.
    let two = Conf::new(o.addr()).toml(&s.control()).replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\", \"127.0.0.2:0\"]",
    );
    let cfg2 = s.path("two.toml");
    std::fs::write(&cfg2, two).unwrap();
    let mut new = spawn_upgrade(&s, &cfg2, "fd-pass", &[], "gen2.log").unwrap();
    let ready = new
        .wait_event("ready", |e| matches!(e.kind, EventKind::Ready { .. }))
        .await
        .unwrap();
    let EventKind::Ready {
        generation: 2,
        addrs,
    } = ready.kind
    else {
        panic!("{ready:?}")
    };
    assert_eq!(addrs[0], addr.to_string());
    let fresh: std::net::SocketAddr = addrs[1].parse().unwrap();
    assert_eq!(fresh.ip().to_string(), "127.0.0.2");
    old.wait_exit(scaled(20)).await.unwrap();
    for a in [addr, fresh] {
        let (_, by) = get(a).await.unwrap();
        assert!(by.contains("gen=2"), "{a}: {by}");
    }

    // Generation 3 only wants the fresh address: the other handed-over socket is closed.
    let only = Conf::new(o.addr())
        .toml(&s.control())
        .replace("127.0.0.1:0", &fresh.to_string());
    let cfg3 = s.path("only.toml");
    std::fs::write(&cfg3, only).unwrap();
    let mut third = spawn_upgrade(&s, &cfg3, "fd-pass", &[], "gen3.log").unwrap();
    assert_eq!(third.ready().await.unwrap(), (3, fresh));
    new.wait_exit(scaled(20)).await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "{addr} was closed"
    );
    let (_, by) = get(fresh).await.unwrap();
    assert!(by.contains("gen=3"), "{by}");
    third.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_without_control_socket_leaves_no_stale_socket_file() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("control_socket"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg2 = s.path("no-control.toml");
    std::fs::write(&cfg2, without).unwrap();
    let mut new = spawn_upgrade(&s, &cfg2, "fd-pass", &[], "gen2.log").unwrap();
    assert_eq!(new.ready().await.unwrap(), (2, addr));
    old.wait_exit(scaled(20)).await.unwrap();
    assert!(
        !s.control().exists(),
        "the old owner removed its socket file"
    );
    new.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_stop_of_the_new_generation_removes_the_control_socket_it_took_over() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let mut new = spawn_upgrade(&s, &cfg, "fd-pass", &[], "gen2.log").unwrap();
    assert_eq!(new.ready().await.unwrap(), (2, addr));
    old.wait_exit(scaled(20)).await.unwrap();
    // The renamed socket is the new process's, mode 0600, and no temporary file is left.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.control()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let tmp_left = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"));
    assert!(!tmp_left);
    new.signal(Signal::SIGINT).unwrap();
    assert!(new.wait_exit(scaled(20)).await.unwrap().success());
    assert!(!s.control().exists(), "control socket removed on SIGINT");
}
