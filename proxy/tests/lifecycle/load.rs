//! Reloads under continuous load (heavy: run one at a time by nextest).

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;
use reloadbench_loadgen::{LoadConfig, LoadRun};
use reloadbench_model::event::EventKind;
use reloadbench_model::load::LoadReport;
use reloadbench_model::outcome::FailureClass;

use crate::master::start_master;
use crate::support::*;

/// Starts closed-loop load on `addr`: `c` clients, bounded by a duration cap.
pub(crate) fn load(addr: SocketAddr, c: u64, keep_alive: bool) -> LoadRun {
    let mut cfg = LoadConfig::new(&format!("http://{addr}/")).unwrap();
    cfg.concurrency = c;
    cfg.requests = None;
    cfg.duration = Some(scaled(90));
    cfg.keep_alive = keep_alive;
    cfg.timeout = scaled(10);
    cfg.threads = 1;
    reloadbench_loadgen::start(cfg).unwrap()
}

/// Waits until `n` more requests completed (bounded).
pub(crate) async fn progress_by(run: &LoadRun, n: u64) {
    let target = run.progress().completed + n;
    tokio::time::timeout(scaled(30), run.wait_completed(target))
        .await
        .expect("the load made no progress");
}

pub(crate) fn summary(r: &LoadReport) -> String {
    let classes: Vec<String> = r
        .classes
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| format!("{:?}={}", c.class, c.count))
        .collect();
    format!(
        "planned={} ok={} failed={} not_started={} classes=[{}]",
        r.planned,
        r.ok,
        r.failed,
        r.not_started,
        classes.join(" ")
    )
}

fn count(r: &LoadReport, class: FailureClass) -> u64 {
    r.classes
        .iter()
        .filter(|c| c.class == class)
        .map(|c| c.count)
        .sum()
}

pub(crate) async fn finish(run: LoadRun) -> LoadReport {
    run.stop();
    let r = tokio::time::timeout(scaled(30), run.finish())
        .await
        .expect("load did not finish")
        .unwrap();
    eprintln!("load: {}", summary(&r));
    assert_eq!(
        r.planned,
        r.ok + r.failed + r.not_started,
        "identity: {}",
        summary(&r)
    );
    r
}

async fn fd_pass_reloads(reloads: u64, keep_alive: bool) {
    let o = origin(1024, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut current, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let run = load(addr, 50, keep_alive);
    progress_by(&run, 200).await;
    let started = std::time::Instant::now();
    let mut gen2_fds = None;
    for i in 0..reloads {
        let generation = i + 2;
        fd_pass_reload(&s, &cfg, &mut current, generation, addr).await;
        if generation == 2 {
            gen2_fds = Some(listening_fds(current.pid));
        }
        progress_by(&run, 50).await;
    }
    let took = started.elapsed();
    // Handles do not grow with generations: the last one holds what generation 2 held,
    // 1 + T per listening address (the process's copy, kept to hand to a successor, and
    // one per serving thread).
    let fds = listening_fds(current.pid);
    assert_eq!(Some(fds), gen2_fds, "{}", current.logs());
    assert_eq!(fds, 1 + serving_threads(), "{}", current.logs());
    let r = finish(run).await;
    eprintln!("{reloads} fd-pass reloads (keep_alive={keep_alive}) in {took:?}");
    assert_eq!(r.failed, 0, "{}", summary(&r));
    assert!(r.ok > 0);
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen={} pid={}", reloads + 1, current.pid));
    current.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_fd_pass_50_reloads_lose_nothing_without_keep_alive() {
    fd_pass_reloads(50, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_fd_pass_50_reloads_lose_nothing_with_keep_alive() {
    fd_pass_reloads(50, true).await;
}

async fn master_reloads(reloads: u64, keep_alive: bool) {
    let o = origin(1024, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut m, mut worker, addr) = start_master(&s, &cfg, &[]).await;
    let run = load(addr, 50, keep_alive);
    progress_by(&run, 200).await;
    for _ in 0..reloads {
        m.signal(Signal::SIGUSR2).unwrap();
        let done = m.wait_event("reload_done", is_reload_done).await.unwrap();
        let EventKind::ReloadDone { new_pid, .. } = done.kind else {
            unreachable!()
        };
        let old = worker;
        m.wait_event("old worker exited", |e| e.pid == old && is_exited(e))
            .await
            .unwrap();
        worker = new_pid;
        progress_by(&run, 50).await;
    }
    let r = finish(run).await;
    assert_eq!(r.failed, 0, "{}", summary(&r));
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen={} pid={worker}", reloads + 1));
    assert!(m.stop().await.unwrap().success());
    assert!(!alive(worker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_master_worker_20_reloads_lose_nothing_without_keep_alive() {
    master_reloads(20, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_master_worker_20_reloads_lose_nothing_with_keep_alive() {
    master_reloads(20, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_naive_reloads_reset_queued_connections() {
    let o = origin(1024, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut current, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let run = load(addr, 100, false);
    progress_by(&run, 200).await;
    let mut reloads = 0;
    while reloads < 30 && run.progress().failed == 0 {
        reloads += 1;
        let mut new = spawn_upgrade(&s, &cfg, "naive", &[], "next.log").unwrap();
        new.ready().await.unwrap();
        current
            .wait_event("reload_done", is_reload_done)
            .await
            .unwrap();
        current.wait_exit(scaled(20)).await.unwrap();
        current = new;
        progress_by(&run, 100).await;
    }
    let r = finish(run).await;
    eprintln!("naive: first failure after {reloads} reloads");
    assert!(
        r.failed > 0,
        "no request lost in {reloads} naive reloads: {}",
        summary(&r)
    );
    current.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_restart_refuses_connects() {
    let o = origin(1024, None).await;
    let s = Scratch::new();
    let mut conf = Conf::new(o.addr());
    let (mut first, addr) = start_plain(&s, &s.config("p0.toml", &conf), "gen1.log")
        .await
        .unwrap();
    // The second process must bind the port the first one got.
    conf.listen = addr;
    let cfg = s.config("p.toml", &conf);
    let run = load(addr, 50, false);
    progress_by(&run, 200).await;
    let st = first.stop().await.unwrap();
    assert!(st.success());
    let mut second =
        Proxy::spawn(["--config".as_ref(), cfg.as_os_str()], s.path("gen2.log")).unwrap();
    second.ready().await.unwrap();
    progress_by(&run, 200).await;
    let r = finish(run).await;
    assert!(
        count(&r, FailureClass::ConnectRefused) > 0,
        "{}",
        summary(&r)
    );
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_failed_reloads_under_load_lose_nothing() {
    failed_reloads_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_failed_reloads_under_load_lose_nothing() {
    failed_reloads_under_load(true).await;
}

/// A config that does not load, and successors failing before READY (fd-pass, naive):
/// each reload is rolled back and the load loses nothing.
async fn failed_reloads_under_load(tls: bool) {
    let o = origin(1024, None).await;
    let s = Scratch::new();
    let wire = crate::wire::Wire::new(tls, &s);
    let cfg = wire.config(&s, "p.toml", &Conf::new(o.addr()));
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let run = wire.load(addr, 50, false);
    progress_by(&run, 200).await;
    let bad = s.path("bad.toml");
    std::fs::write(&bad, "listen = [\"127.0.0.1:0\"]\norigins = \"nope\"\n").unwrap();
    let mut new = spawn_upgrade(&s, &bad, "fd-pass", &[], "bad.log").unwrap();
    assert_eq!(new.wait_exit(scaled(20)).await.unwrap().code(), Some(2));
    old.wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    progress_by(&run, 200).await;
    for mode in ["fd-pass", "naive"] {
        let mut new = spawn_upgrade(&s, &cfg, mode, &["--fail-before-ready"], "fail.log").unwrap();
        assert_eq!(new.wait_exit(scaled(20)).await.unwrap().code(), Some(1));
        old.wait_event("reload_failed", is_reload_failed)
            .await
            .unwrap();
        progress_by(&run, 200).await;
    }
    let r = finish(run).await;
    assert_eq!(r.failed, 0, "{}: {}", wire.name(), summary(&r));
    let (_, by) = wire.get(addr).await;
    assert_eq!(by, format!("gen=1 pid={}", old.pid));
    old.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_process_exits_at_the_drain_deadline_with_a_stuck_request() {
    // An origin that reads the request and never answers, and says when it has it.
    let stuck_origin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_addr = stuck_origin.local_addr().unwrap();
    let (got_tx, got_rx) = tokio::sync::oneshot::channel();
    let origin_task = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut conn, _) = stuck_origin.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf).await;
        let _ = got_tx.send(());
        // Hold the connection open without answering.
        let _ = conn.read(&mut buf).await;
    });
    let s = Scratch::new();
    let mut conf = Conf::new(origin_addr);
    conf.drain_deadline = Duration::from_secs(1);
    let cfg = s.config("p.toml", &conf);
    let (mut old, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let stuck = tokio::spawn(async move { get(addr).await });
    tokio::time::timeout(scaled(10), got_rx)
        .await
        .expect("the request never reached the origin")
        .unwrap();
    let mut new = spawn_upgrade(&s, &cfg, "fd-pass", &[], "gen2.log").unwrap();
    new.ready().await.unwrap();
    let done = old.wait_event("reload_done", is_reload_done).await.unwrap();
    let exited = old.wait_event("exited", is_exited).await.unwrap();
    old.wait_exit(scaled(10)).await.unwrap();
    let took = Duration::from_nanos(exited.mono_ns - done.mono_ns);
    eprintln!("old process exited {took:?} after the commit (deadline 1s)");
    // At the 1s deadline, not before; after it only the time to close and exit.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(1) + scaled(3),
        "{took:?}"
    );
    let forced = old.all_events().await.iter().find_map(|e| match e.kind {
        EventKind::Drained { forced, .. } => Some(forced),
        _ => None,
    });
    assert_eq!(forced, Some(1));
    let _ = stuck.await;
    origin_task.abort();
    new.stop().await.unwrap();
}
