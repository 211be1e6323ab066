//! A takeover that does not hold: whatever happens to one generation during a handoff,
//! the other one serves. The new process is frozen (`--freeze-at`, SIGSTOP at a chosen
//! point) or killed at every point of its takeover; the old one dies during the handoff;
//! a master's worker dies under load.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reloadbench_model::event::EventKind;

use crate::load::{finish, progress_by, summary};
use crate::master::start_master;
use crate::support::*;
use crate::wire::{Wire, plain_over};

/// A keep-alive connection that has had one response and stays idle: it keeps a draining
/// process alive until it is dropped.
pub(crate) fn idle_connection(addr: SocketAddr) -> std::net::TcpStream {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(scaled(10))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The test origin answers with a 100-byte body and a Content-Length.
    while !(got.windows(4).any(|w| w == b"\r\n\r\n")
        && got.len() - (got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4) >= 100)
    {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    c
}

/// An fd-pass successor stopped right after its takeover (the old process reported
/// `reload_done` and drains).
async fn frozen_after_takeover(s: &Scratch, cfg: &std::path::Path, old: &mut Proxy) -> Proxy {
    let new = spawn_upgrade(
        s,
        cfg,
        "fd-pass",
        &["--freeze-at", "after-takeover"],
        "new.log",
    )
    .unwrap();
    wait_stopped(new.pid, scaled(10)).await.unwrap();
    old.wait_event("reload_done", is_reload_done).await.unwrap();
    new
}

fn failed_reason(e: &reloadbench_model::event::Event) -> String {
    match &e.kind {
        EventKind::ReloadFailed { reason, .. } => reason.clone(),
        other => panic!("not reload_failed: {other:?}"),
    }
}

fn is_ready(e: &reloadbench_model::event::Event) -> bool {
    matches!(e.kind, EventKind::Ready { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_successor_frozen_or_killed_before_it_accepts_loses_nothing() {
    successor_frozen_or_killed_before_it_accepts(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_a_successor_frozen_or_killed_before_it_accepts_loses_nothing() {
    successor_frozen_or_killed_before_it_accepts(true).await;
}

async fn successor_frozen_or_killed_before_it_accepts(tls: bool) {
    let (
        Plain {
            _origin,
            s,
            cfg,
            proxy: mut old,
            addr,
        },
        wire,
    ) = plain_over(tls, |c| {
        c.ready_timeout = Duration::from_secs(1);
        c.takeover_timeout = Duration::from_millis(500);
    })
    .await;
    let me = format!("gen=1 pid={}", old.pid);
    let run = wire.load(addr, 50, false);
    progress_by(&run, 200).await;
    let mut round = 0;
    for point in ["before-commit", "after-commit", "after-committed"] {
        for killed in [true, false] {
            round += 1;
            let mut new = spawn_upgrade(
                &s,
                &cfg,
                "fd-pass",
                &["--freeze-at", point],
                &format!("new{round}.log"),
            )
            .unwrap();
            wait_stopped(new.pid, scaled(10)).await.unwrap();
            if killed {
                new.signal(Signal::SIGKILL).unwrap();
            }
            let e = old
                .wait_event("reload_failed", is_reload_failed)
                .await
                .unwrap();
            eprintln!("{point} killed={killed}: {}", failed_reason(&e));
            progress_by(&run, 100).await;
            let (status, by) = wire.get(addr).await;
            assert_eq!((status, by.as_str()), (200, me.as_str()), "{point}");
            if !killed {
                // Let it go on: it must stop by itself. Before its commit it steps back
                // having accepted nothing; after it, the confirmation it finds lets it
                // accept until it sees the SIGTERM of the old process, then it drains.
                new.signal(Signal::SIGCONT).unwrap();
            }
            new.wait_exit(scaled(20)).await.unwrap();
            if !killed && point == "before-commit" {
                assert!(
                    !new.all_events().await.iter().any(is_ready),
                    "{point}: the given-up successor never reported ready\n{}",
                    new.logs()
                );
            }
        }
    }
    let r = finish(run).await;
    assert_eq!(r.failed, 0, "{}: {}", wire.name(), summary(&r));
    assert!(r.ok > 0);
    assert!(
        old.events_seen().iter().all(|e| !is_reload_done(e)),
        "no takeover was reported"
    );

    // The control socket still leads to the old process: a real reload works.
    let mut next = spawn_upgrade(&s, &cfg, "fd-pass", &[], "next.log").unwrap();
    assert_eq!(next.ready().await.unwrap(), (2, addr));
    old.wait_event("reload_done", is_reload_done).await.unwrap();
    assert!(old.wait_exit(scaled(20)).await.unwrap().success());
    next.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_successor_frozen_after_it_took_over_is_replaced_by_the_draining_process() {
    successor_frozen_after_it_took_over(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_a_successor_frozen_after_it_took_over_is_replaced_by_the_draining_process() {
    successor_frozen_after_it_took_over(true).await;
}

async fn successor_frozen_after_it_took_over(tls: bool) {
    let (
        Plain {
            _origin,
            s,
            cfg,
            proxy: mut old,
            addr,
        },
        wire,
    ) = plain_over(tls, |c| {
        c.takeover_timeout = Duration::from_millis(500);
        c.idle_close = Duration::from_secs(20);
    })
    .await;
    let held = wire.held(addr).await;
    let run = wire.load(addr, 50, false);
    progress_by(&run, 200).await;

    let mut new = frozen_after_takeover(&s, &cfg, &mut old).await;
    let e = old
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    let reason = failed_reason(&e);
    assert!(reason.contains("did not answer the heartbeat"), "{reason}");
    assert!(reason.contains("generation 1 serves again"), "{reason}");
    // A new connection is served by the old process again. (The load itself need not
    // move here: between the takeover and the freeze only the successor accepts, and
    // every client may be waiting on a connection it accepted; waiting for the load's
    // progress then waits for their timeouts.)
    let (_, by) = wire.get(addr).await;
    assert_eq!(by, format!("gen=1 pid={}", old.pid));

    // The frozen successor was told to stop: once it goes on, it drains what it had
    // accepted (the clients it kept waiting get their answers) and exits.
    new.signal(Signal::SIGCONT).unwrap();
    let st = new.wait_exit(scaled(20)).await.unwrap();
    assert!(st.success(), "{st:?}\n{}", new.logs());
    progress_by(&run, 100).await;
    let r = finish(run).await;
    assert_eq!(r.failed, 0, "{}: {}", wire.name(), summary(&r));
    drop(held);
    old.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_killed_after_it_took_over_is_replaced_by_the_draining_process() {
    let Plain {
        _origin,
        s,
        cfg,
        proxy: mut old,
        addr,
    } = plain_with(|c| c.idle_close = Duration::from_secs(20)).await;
    let held = idle_connection(addr);

    let mut new = frozen_after_takeover(&s, &cfg, &mut old).await;
    old.wait_event("draining", |e| matches!(e.kind, EventKind::Draining { .. }))
        .await
        .unwrap();
    new.signal(Signal::SIGKILL).unwrap();
    let e = old
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    let reason = failed_reason(&e);
    assert!(reason.contains("it exited"), "{reason}");
    let (status, by) = get(addr).await.unwrap();
    assert_eq!((status, by), (200, format!("gen=1 pid={}", old.pid)));
    new.wait_exit(scaled(20)).await.unwrap();

    // The old process took the control socket path back: the next reload finds it.
    let mut next = spawn_upgrade(&s, &cfg, "fd-pass", &[], "next.log").unwrap();
    assert_eq!(next.ready().await.unwrap(), (2, addr));
    old.wait_event("reload_done", is_reload_done).await.unwrap();
    drop(held);
    assert!(old.wait_exit(scaled(20)).await.unwrap().success());
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen=2 pid={}", next.pid));
    next.stop().await.unwrap();
    assert!(!s.control().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_stopped_by_a_signal_is_not_replaced() {
    let Plain {
        _origin,
        s,
        cfg,
        proxy: mut old,
        addr,
    } = plain_with(|c| c.idle_close = Duration::from_secs(20)).await;
    let held = idle_connection(addr);
    let mut new = spawn_upgrade(&s, &cfg, "fd-pass", &[], "new.log").unwrap();
    assert_eq!(new.ready().await.unwrap(), (2, addr));
    old.wait_event("reload_done", is_reload_done).await.unwrap();
    assert!(new.stop().await.unwrap().success());
    drop(held);
    assert!(old.wait_exit(scaled(20)).await.unwrap().success());
    let kinds: Vec<_> = old
        .all_events()
        .await
        .iter()
        .map(|e| crate::fd_pass::kind(&e.kind))
        .collect();
    assert!(!kinds.contains(&"reload_failed"), "{kinds:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "both stopped: nobody listens"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_process_that_dies_during_the_handoff_leaves_the_new_one_serving() {
    let Plain {
        _origin,
        s,
        cfg,
        proxy: mut old,
        addr,
    } = plain_with(|_| {}).await;
    let mut new = spawn_upgrade(
        &s,
        &cfg,
        "fd-pass",
        &["--freeze-at", "before-commit"],
        "new.log",
    )
    .unwrap();
    wait_stopped(new.pid, scaled(10)).await.unwrap();
    // Frozen old first, so that it cannot answer the commit; then it dies.
    old.signal(Signal::SIGSTOP).unwrap();
    old.signal(Signal::SIGKILL).unwrap();
    old.wait_exit(scaled(20)).await.unwrap();
    new.signal(Signal::SIGCONT).unwrap();
    assert_eq!(new.ready().await.unwrap(), (2, addr));
    let (status, by) = get(addr).await.unwrap();
    assert_eq!((status, by), (200, format!("gen=2 pid={}", new.pid)));
    assert!(new.logs().contains("taking over"), "{}", new.logs());
    // It owns the control socket path now.
    let mut next = spawn_upgrade(&s, &cfg, "fd-pass", &[], "next.log").unwrap();
    assert_eq!(next.ready().await.unwrap(), (3, addr));
    assert!(new.wait_exit(scaled(20)).await.unwrap().success());
    next.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_master_replaces_a_worker_that_dies_under_load() {
    master_replaces_a_worker_that_dies(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_a_master_replaces_a_worker_that_dies_under_load() {
    master_replaces_a_worker_that_dies(true).await;
}

async fn master_replaces_a_worker_that_dies(tls: bool) {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let wire = Wire::new(tls, &s);
    let cfg = wire.config(&s, "p.toml", &Conf::new(o.addr()));
    let (mut m, mut worker, addr) = start_master(&s, &cfg, &[]).await;
    let run = wire.load(addr, 50, false);
    progress_by(&run, 200).await;
    let mut delays = Vec::new();
    for generation in 2..=3u64 {
        kill(Pid::from_raw(worker as i32), Signal::SIGKILL).unwrap();
        let lost = m
            .wait_event("worker_lost", |e| {
                matches!(e.kind, EventKind::WorkerLost { .. })
            })
            .await
            .unwrap();
        let EventKind::WorkerLost {
            worker_pid,
            respawn_in_ms,
            ref status,
            ..
        } = lost.kind
        else {
            unreachable!()
        };
        assert_eq!(worker_pid, worker);
        assert!(status.contains("9"), "{status}");
        delays.push(respawn_in_ms);
        let e = m
            .wait_event("worker_respawned", |e| {
                matches!(e.kind, EventKind::WorkerRespawned { .. })
            })
            .await
            .unwrap();
        let EventKind::WorkerRespawned {
            generation: g,
            new_pid,
        } = e.kind
        else {
            unreachable!()
        };
        assert_eq!(g, generation);
        worker = new_pid;
        progress_by(&run, 200).await;
    }
    // The first loss is replaced at once; a second one soon after waits (back-off).
    assert_eq!(delays, [0, 100]);
    let r = finish(run).await;
    // At most the dead workers' open requests: 50 clients, two deaths.
    assert!(r.failed <= 100, "{}: {}", wire.name(), summary(&r));
    assert!(r.ok > 0);
    let (_, by) = wire.get(addr).await;
    assert_eq!(by, format!("gen=3 pid={worker}"));
    assert!(m.stop().await.unwrap().success());
    assert!(!alive(worker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_reloads_or_a_fast_stop_never_brings_back_a_draining_generation() {
    let Plain {
        _origin,
        s,
        cfg,
        proxy: mut gen1,
        addr,
    } = plain_with(|c| c.idle_close = Duration::from_secs(20)).await;
    let held = idle_connection(addr);
    let mut gen2 = spawn_upgrade(&s, &cfg, "fd-pass", &[], "gen2.log").unwrap();
    assert_eq!(gen2.ready().await.unwrap(), (2, addr));
    gen1.wait_event("reload_done", is_reload_done)
        .await
        .unwrap();
    // gen2 hands over in turn and exits at once (no connection): gen1, still draining,
    // must not take that for a loss.
    let mut gen3 = spawn_upgrade(&s, &cfg, "fd-pass", &[], "gen3.log").unwrap();
    assert_eq!(gen3.ready().await.unwrap(), (3, addr));
    assert!(gen2.wait_exit(scaled(20)).await.unwrap().success());
    let held2 = idle_connection(addr);
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen=3 pid={}", gen3.pid));
    // A fast stop of the newest generation is a stop, not a loss, for whoever still drains.
    gen3.signal(Signal::SIGINT).unwrap();
    gen3.wait_exit(scaled(20)).await.unwrap();
    drop(held);
    drop(held2);
    assert!(gen1.wait_exit(scaled(30)).await.unwrap().success());
    let kinds: Vec<_> = gen1
        .all_events()
        .await
        .iter()
        .map(|e| crate::fd_pass::kind(&e.kind))
        .collect();
    assert!(
        !kinds.contains(&"reload_failed"),
        "{kinds:?}\n{}",
        gen1.logs()
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_a_master_replaces_a_worker_that_hangs_under_load() {
    master_replaces_a_worker_that_hangs(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_a_master_replaces_a_worker_that_hangs_under_load() {
    master_replaces_a_worker_that_hangs(true).await;
}

async fn master_replaces_a_worker_that_hangs(tls: bool) {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let wire = Wire::new(tls, &s);
    let mut conf = Conf::new(o.addr());
    conf.takeover_timeout = Duration::from_millis(500);
    let cfg = wire.config(&s, "p.toml", &conf);
    let (mut m, first, addr) = start_master(&s, &cfg, &["--freeze-at", "after-takeover"]).await;
    let run = wire.load(addr, 50, false);
    progress_by(&run, 200).await;
    // The reload's worker stops itself right after its takeover: the previous one drains
    // away, and nobody would accept if the master did not notice.
    m.signal(Signal::SIGUSR2).unwrap();
    let done = m.wait_event("reload_done", is_reload_done).await.unwrap();
    let EventKind::ReloadDone { new_pid: hung, .. } = done.kind else {
        unreachable!()
    };
    wait_stopped(hung, scaled(10)).await.unwrap();
    let lost = m
        .wait_event("worker_lost", |e| {
            matches!(e.kind, EventKind::WorkerLost { .. })
        })
        .await
        .unwrap();
    let EventKind::WorkerLost {
        worker_pid,
        generation,
        ..
    } = lost.kind
    else {
        unreachable!()
    };
    assert_eq!((worker_pid, generation), (hung, 2));
    let e = m
        .wait_event("worker_respawned", |e| {
            matches!(e.kind, EventKind::WorkerRespawned { .. })
        })
        .await
        .unwrap();
    let EventKind::WorkerRespawned { new_pid, .. } = e.kind else {
        unreachable!()
    };
    progress_by(&run, 200).await;
    let r = finish(run).await;
    // At most what the hung worker had accepted: 50 clients.
    assert!(r.failed <= 50, "{}: {}", wire.name(), summary(&r));
    let (_, by) = wire.get(addr).await;
    assert_eq!(by, format!("gen=3 pid={new_pid}"));
    assert!(!alive(first) && !alive(hung));
    assert!(m.stop().await.unwrap().success());
}
