//! Master-worker: the master keeps the sockets and replaces its worker.

use std::ffi::OsStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use reloadbench_model::event::{EventKind, ReloadMode};
use reloadbench_proxy::control::protocol::Message;
use reloadbench_proxy::fdpass::Channel;

use crate::support::*;

pub(crate) async fn start_master(
    s: &Scratch,
    cfg: &std::path::Path,
    extra: &[&str],
) -> (Proxy, u32, std::net::SocketAddr) {
    let mut args = vec![
        OsStr::new("--config"),
        cfg.as_os_str(),
        OsStr::new("--master"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let mut m = Proxy::spawn(args, s.path("master.log")).unwrap();
    let e = m
        .wait_event("worker ready", |e| {
            matches!(e.kind, EventKind::Ready { .. })
        })
        .await
        .unwrap();
    let EventKind::Ready { generation, addrs } = &e.kind else {
        unreachable!()
    };
    assert_eq!(*generation, 1);
    assert_ne!(e.pid, m.pid, "the worker reports ready, not the master");
    (m, e.pid, addrs[0].parse().unwrap())
}

fn worker_pid(done: &reloadbench_model::event::Event) -> u32 {
    match done.kind {
        EventKind::ReloadDone {
            new_pid,
            mode: ReloadMode::MasterWorker,
            ..
        } => new_pid,
        ref k => panic!("not a master-worker reload_done: {k:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_replaces_workers_on_sigusr2_and_reload_and_stops_them_on_sigterm() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut m, w1, addr) = start_master(&s, &cfg, &[]).await;
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen=1 pid={w1}"));

    m.signal(Signal::SIGUSR2).unwrap();
    let w2 = worker_pid(&m.wait_event("reload_done", is_reload_done).await.unwrap());
    m.wait_event("worker 1 exited", |e| e.pid == w1 && is_exited(e))
        .await
        .unwrap();
    wait_gone(w1, scaled(10)).await.unwrap();
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen=2 pid={w2}"));

    // The `reload` command on the control socket.
    let stream = tokio::net::UnixStream::connect(s.control()).await.unwrap();
    let mut chan = Channel::new(stream, scaled(20));
    chan.send(&Message::Reload).await.unwrap();
    let reply: Message = chan.recv().await.unwrap();
    let Message::Reloaded {
        generation: 3,
        pid: w3,
    } = reply
    else {
        panic!("{reply:?}")
    };
    m.wait_event("worker 2 exited", |e| e.pid == w2 && is_exited(e))
        .await
        .unwrap();
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen=3 pid={w3}"));

    // SIGHUP with a broken config: rollback.
    std::fs::write(&cfg, "listen = 3\n").unwrap();
    m.signal(Signal::SIGHUP).unwrap();
    let e = m
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    assert!(
        matches!(&e.kind, EventKind::ReloadFailed { generation: 3, reason } if reason.contains("invalid config")),
        "{e:?}"
    );
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen=3 pid={w3}"));

    let st = m.stop().await.unwrap();
    assert!(st.success(), "{}", m.logs());
    assert!(!alive(w3), "the worker is gone with the master");
    assert!(!s.control().exists());
    let last = m.all_events().await.pop().unwrap();
    assert_eq!(last.pid, m.pid);
    assert!(is_exited(&last));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_failing_before_ready_is_rolled_back() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut m, w1, addr) = start_master(&s, &cfg, &["--fail-before-ready"]).await;
    m.signal(Signal::SIGUSR2).unwrap();
    let e = m
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    assert!(
        matches!(&e.kind, EventKind::ReloadFailed { generation: 1, .. }),
        "{e:?}"
    );
    let (_, by) = get(addr).await.unwrap();
    assert_eq!(by, format!("gen=1 pid={w1}"));
    m.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_stop_when_the_master_is_killed() {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr()));
    let (mut m, w1, _addr) = start_master(&s, &cfg, &[]).await;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(m.pid as i32), Signal::SIGKILL).unwrap();
    m.wait_exit(scaled(10)).await.unwrap();
    wait_gone(w1, scaled(20)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_beyond_max_old_generations_are_refused() {
    // An origin that holds every request: a replaced worker keeps draining.
    let stuck = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_addr = stuck.local_addr().unwrap();
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut c, _)) = stuck.accept().await {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf).await;
            let _ = got_tx.send(());
            held.push(c);
        }
    });
    let s = Scratch::new();
    let mut conf = Conf::new(origin_addr);
    conf.max_old = 1;
    // Long enough that worker 1 is surely still draining at the second SIGUSR2 on a slow
    // machine; the test ends its drain early by releasing the stuck request.
    conf.drain_deadline = Duration::from_secs(60);
    let cfg = s.config("p.toml", &conf);
    let (mut m, _w1, addr) = start_master(&s, &cfg, &[]).await;
    let request = tokio::spawn(async move { get(addr).await });
    tokio::time::timeout(scaled(10), got_rx.recv())
        .await
        .unwrap()
        .unwrap();

    m.signal(Signal::SIGUSR2).unwrap();
    m.wait_event("reload_done", is_reload_done).await.unwrap();
    // Worker 1 drains (its request is stuck): one old generation, the cap.
    m.signal(Signal::SIGUSR2).unwrap();
    let e = m
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    assert!(
        matches!(&e.kind, EventKind::ReloadFailed { generation: 2, reason } if reason.contains("max_old_generations")),
        "{e:?}"
    );
    // The origin goes away: the stuck request gets its 502 and worker 1 finishes draining.
    holder.abort();
    let (status, _) = request.await.unwrap().unwrap();
    assert_eq!(status, 502);
    let st = m.stop().await.unwrap();
    assert!(st.success(), "{}", m.logs());
}
