//! HTTP/2 clients across reloads: connections with streams in flight while fd-pass and
//! master-worker reloads drain the old generation. Every stream is answered, or refused
//! by a GOAWAY before the proxy took it (and then sent again on a new connection, as a
//! well-behaved client does); none is lost in flight. The clients' count of answers is
//! checked against the origin's count of requests and the proxies' ledgers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use nix::sys::signal::Signal;
use reloadbench_model::event::EventKind;
use tokio::sync::watch;

use crate::master::start_master;
use crate::support::*;

/// Connections of the load, and concurrent streams on each.
const CONNECTIONS: usize = 4;
const STREAMS: usize = 10;

/// What the h2 load saw.
#[derive(Default)]
struct Counts {
    /// Streams answered 200 with the whole body.
    ok: AtomicU64,
    /// Streams refused by a GOAWAY (above its last-stream-id) or REFUSED_STREAM: sent
    /// again on a new connection.
    refused: AtomicU64,
    /// Requests not sent because the connection was going away (a GOAWAY came first):
    /// sent on a new connection.
    not_sent: AtomicU64,
    /// Anything else: a stream lost in flight, a wrong answer.
    failed: AtomicU64,
    /// Connections opened.
    connections: AtomicU64,
}

/// HTTP/2 load on `addr` until stopped.
struct H2Load {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    /// Answers so far, to wait for progress on.
    progress: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl H2Load {
    fn start(addr: SocketAddr, body: usize) -> H2Load {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, progress) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks = (0..CONNECTIONS)
            .map(|_| {
                let (counts, stop, tx, errors) =
                    (counts.clone(), stop.clone(), tx.clone(), errors.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        connection(addr, body, &counts, &stop, &tx, &errors).await;
                    }
                })
            })
            .collect();
        H2Load {
            counts,
            stop,
            progress,
            tasks,
            errors,
        }
    }

    /// Waits until `n` more streams were answered.
    async fn progress_by(&mut self, n: u64) {
        let target = *self.progress.borrow() + n;
        tokio::time::timeout(scaled(30), self.progress.wait_for(|v| *v >= target))
            .await
            .expect("the h2 load makes progress")
            .unwrap();
    }

    /// Stops and returns (ok, refused, failed, connections); prints them and the
    /// requests not sent.
    async fn finish(self) -> (u64, u64, u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            tokio::time::timeout(scaled(30), t).await.unwrap().unwrap();
        }
        let c = &self.counts;
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        eprintln!(
            "h2 load: {} requests not sent (GOAWAY first), sent on a new connection",
            c.not_sent.load(Ordering::SeqCst)
        );
        (
            c.ok.load(Ordering::SeqCst),
            c.refused.load(Ordering::SeqCst),
            c.failed.load(Ordering::SeqCst),
            c.connections.load(Ordering::SeqCst),
        )
    }
}

/// Whether a stream error says the server never took the stream.
fn refused(e: &h2::Error) -> bool {
    (e.is_go_away() && e.reason() == Some(h2::Reason::NO_ERROR))
        || e.reason() == Some(h2::Reason::REFUSED_STREAM)
}

/// One connection with `STREAMS` request loops, until it goes away or the load stops.
async fn connection(
    addr: SocketAddr,
    body: usize,
    counts: &Counts,
    stop: &AtomicBool,
    progress: &watch::Sender<u64>,
    errors: &std::sync::Mutex<Vec<String>>,
) {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        counts.failed.fetch_add(1, Ordering::SeqCst);
        errors.lock().unwrap().push("connect failed".into());
        return;
    };
    let Ok((send, conn)) = h2::client::handshake(tcp).await else {
        counts.failed.fetch_add(1, Ordering::SeqCst);
        errors.lock().unwrap().push("handshake failed".into());
        return;
    };
    counts.connections.fetch_add(1, Ordering::SeqCst);
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let fail = |what: String| {
        counts.failed.fetch_add(1, Ordering::SeqCst);
        errors.lock().unwrap().push(what);
    };
    let one_stream = |send: h2::client::SendRequest<Bytes>| async move {
        while !stop.load(Ordering::SeqCst) {
            // The connection is going away: the loop ends, a new connection takes over.
            let Ok(mut ready) = send.clone().ready().await else {
                counts.not_sent.fetch_add(1, Ordering::SeqCst);
                return;
            };
            let req = http::Request::get("http://localhost/").body(()).unwrap();
            let Ok((resp, _)) = ready.send_request(req, true) else {
                counts.not_sent.fetch_add(1, Ordering::SeqCst);
                return;
            };
            let resp = match resp.await {
                Ok(r) => r,
                Err(e) if refused(&e) => {
                    counts.refused.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Err(e) => return fail(format!("response head: {e:?}")),
            };
            let status = resp.status();
            let mut recv = resp.into_body();
            let mut got = 0;
            while let Some(data) = recv.data().await {
                match data {
                    Ok(d) => {
                        got += d.len();
                        let _ = recv.flow_control().release_capacity(d.len());
                    }
                    Err(e) => return fail(format!("body: {e:?}")),
                }
            }
            if status != 200 || got != body {
                return fail(format!("status {status}, {got} bytes"));
            }
            counts.ok.fetch_add(1, Ordering::SeqCst);
            progress.send_modify(|n| *n += 1);
        }
    };
    futures_join_all((0..STREAMS).map(|_| one_stream(send.clone()))).await;
    drop(send);
    let _ = tokio::time::timeout(scaled(30), driver).await;
}

/// Runs the futures concurrently to their ends.
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut all: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        all.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if all.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// A config with `http2 = true`.
pub(crate) fn h2_config(s: &Scratch, origin: SocketAddr) -> std::path::PathBuf {
    h2_config_with(s, Conf::new(origin))
}

/// `conf` with `http2 = true`.
fn h2_config_with(s: &Scratch, conf: Conf) -> std::path::PathBuf {
    let text = conf.toml(&s.control()).replacen(
        "generation_header = true\n",
        "generation_header = true\nhttp2 = true\n",
        1,
    );
    let path = s.path("h2.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `completed` and `forwarded` counts of a process's `counters` event.
fn ledger(events: &[reloadbench_model::event::Event]) -> (u64, u64) {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Counters { counters, .. } => Some((counters.completed, counters.forwarded)),
            _ => None,
        })
        .expect("a counters event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_h2_fd_pass_50_reloads_lose_no_stream() {
    const BODY: usize = 1024;
    let o = origin(BODY, None).await;
    let s = Scratch::new();
    let cfg = h2_config(&s, o.addr());
    let (mut current, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let mut load = H2Load::start(addr, BODY);
    load.progress_by(200).await;
    let mut completed = 0;
    for generation in 2..=51 {
        let mut new =
            spawn_upgrade(&s, &cfg, "fd-pass", &[], &format!("gen{generation}.log")).unwrap();
        assert_eq!(new.ready().await.unwrap(), (generation, addr));
        current
            .wait_event("reload_done", is_reload_done)
            .await
            .unwrap();
        let st = current.wait_exit(scaled(20)).await.unwrap();
        assert!(st.success(), "{}", current.logs());
        completed += ledger(&current.all_events().await).0;
        current = new;
        load.progress_by(100).await;
    }
    let (ok, refused, failed, conns) = load.finish().await;
    current.signal(Signal::SIGTERM).unwrap();
    assert!(current.wait_exit(scaled(20)).await.unwrap().success());
    completed += ledger(&current.all_events().await).0;
    eprintln!(
        "h2 fd-pass: {ok} ok, {refused} refused and sent again, {failed} failed, {conns} connections"
    );
    assert_eq!(failed, 0);
    assert_eq!(
        ok,
        o.requests(),
        "every answer the clients got is one the origin served"
    );
    assert_eq!(completed, ok, "the proxies' ledgers");
    assert!(
        conns > CONNECTIONS as u64,
        "the clients moved to the new generations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_h2_master_worker_20_reloads_lose_no_stream() {
    const BODY: usize = 1024;
    let o = origin(BODY, None).await;
    let s = Scratch::new();
    let cfg = h2_config(&s, o.addr());
    let (mut m, mut worker, addr) = start_master(&s, &cfg, &[]).await;
    let mut load = H2Load::start(addr, BODY);
    load.progress_by(200).await;
    for _ in 0..20 {
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
        load.progress_by(100).await;
    }
    let (ok, refused, failed, conns) = load.finish().await;
    assert!(m.stop().await.unwrap().success());
    let events = m.all_events().await;
    let completed: u64 = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Counters { counters, .. } => Some(counters.completed),
            _ => None,
        })
        .sum();
    eprintln!(
        "h2 master-worker: {ok} ok, {refused} refused and sent again, {failed} failed, {conns} connections"
    );
    assert_eq!(failed, 0);
    assert_eq!(
        ok,
        o.requests(),
        "every answer the clients got is one the origin served"
    );
    assert_eq!(completed, ok, "the workers' ledgers");
    assert!(
        conns > CONNECTIONS as u64,
        "the clients moved to the new workers"
    );
}

/// An idle h2 connection to the serving generation: one request answered (by `gen=1`),
/// then nothing; resolves when the proxy has closed the connection.
async fn idle_h2_connection(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get("http://localhost/").body(()).unwrap();
    let mut ready = send.ready().await.unwrap();
    let (resp, _) = ready.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(
        resp.headers()["x-served-by"]
            .to_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("gen=1")
    );
    let mut body = resp.into_body();
    while let Some(d) = body.data().await {
        d.unwrap();
    }
    // The connection stays open (`ready` keeps it) until the proxy closes it.
    tokio::spawn(async move {
        let _keep = ready;
        let _ = driver.await;
    })
}

/// An idle h2 connection is closed (two GOAWAYs, then the close) at the old generation's
/// drain start, long before `drain.idle_close`, in every reload mode.
async fn idle_h2_closed_at_drain_start(mode: &str) {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let mut conf = Conf::new(o.addr());
    conf.idle_close = std::time::Duration::from_secs(600);
    conf.drain_deadline = std::time::Duration::from_secs(600);
    let cfg = h2_config_with(&s, conf);
    let start_master_mode = mode == "master-worker";
    let (mut proxy, addr) = if start_master_mode {
        let (m, _, addr) = start_master(&s, &cfg, &[]).await;
        (m, addr)
    } else {
        start_plain(&s, &cfg, "gen1.log").await.unwrap()
    };
    let idle = idle_h2_connection(addr).await;
    let reloaded = std::time::Instant::now();
    let new = if start_master_mode {
        proxy.signal(Signal::SIGUSR2).unwrap();
        None
    } else {
        let mut new = spawn_upgrade(&s, &cfg, mode, &[], "gen2.log").unwrap();
        assert_eq!(new.ready().await.unwrap(), (2, addr));
        Some(new)
    };
    proxy
        .wait_event("reload_done", is_reload_done)
        .await
        .unwrap();
    tokio::time::timeout(scaled(20), idle)
        .await
        .expect("the idle h2 connection is closed at the drain start")
        .unwrap();
    let took = reloaded.elapsed();
    assert!(took < scaled(20), "{took:?}");
    match new {
        Some(mut new) => {
            // The old process is done: it had nothing else open. (Only then is a new
            // connection sure to reach generation 2: a naive reload resets what is queued
            // on the old process's own socket.)
            assert!(
                proxy.wait_exit(scaled(20)).await.unwrap().success(),
                "{}",
                proxy.logs()
            );
            let (_, by) = get(addr).await.unwrap();
            assert!(by.contains("gen=2"), "{by}");
            assert!(new.stop().await.unwrap().success());
        }
        None => {
            let (_, by) = get(addr).await.unwrap();
            assert!(by.contains("gen=2"), "{by}");
            assert!(proxy.stop().await.unwrap().success());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_idle_connection_closed_at_drain_start_fd_pass() {
    idle_h2_closed_at_drain_start("fd-pass").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_idle_connection_closed_at_drain_start_naive() {
    idle_h2_closed_at_drain_start("naive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_idle_connection_closed_at_drain_start_master_worker() {
    idle_h2_closed_at_drain_start("master-worker").await;
}
