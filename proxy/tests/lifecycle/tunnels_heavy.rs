//! Many WebSocket tunnels across many fd-pass and master-worker reloads, with
//! `drain.tunnels = "close"` and `"keep"`. Each client sends a message every
//! [`INTERVAL`], waits for its echo, and reconnects when its connection ends; the test
//! waits until every client is on the newest generation before each reload. Sizes:
//! `RELOADBENCH_WS_CONNS` connections (default 250) and `RELOADBENCH_WS_RELOADS`
//! reloads of each kind (default 5), small enough for the suite; the size
//! runs outside it: `RELOADBENCH_WS_CONNS=1000 RELOADBENCH_WS_RELOADS=20 cargo nextest
//! run -p reloadbench-proxy -E 'test(heavy_websockets)'`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reloadbench_model::event::{Event, EventKind};
use tokio::sync::watch;

use crate::master::start_master;
use crate::support::*;
use crate::ws::{EchoOrigin, Reply, WsClient, WsEnd};

/// Pause between one echo and the next message of a client.
const INTERVAL: Duration = Duration::from_millis(250);

/// The drain deadline with `keep`: tunnels are cut then.
const KEEP_DEADLINE: Duration = Duration::from_secs(2);

/// With `keep`, a client stops sending this long before its generation's deadline, so
/// that no message is in flight at the cut (a lost message would be the cut's, by design).
const QUIET: Duration = Duration::from_millis(400);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the clients counted.
#[derive(Default)]
struct Counts {
    opened: AtomicU64,
    failed_open: AtomicU64,
    echoed: AtomicU64,
    /// Sent, and the connection ended before the echo.
    unanswered: AtomicU64,
    closed_1001: AtomicU64,
    closed_other: AtomicU64,
    cut: AtomicU64,
    /// Cut before the generation's drain deadline.
    cut_early: AtomicU64,
}

struct Clients {
    counts: Counts,
    stop: AtomicBool,
    /// Open connections per generation.
    open: watch::Sender<HashMap<u64, u64>>,
    /// When each generation was seen draining.
    draining: std::sync::Mutex<HashMap<u64, Instant>>,
    keep: bool,
}

impl Clients {
    fn drain_seen(&self, generation: u64) -> Option<Instant> {
        self.draining.lock().unwrap().get(&generation).copied()
    }

    fn add_open(&self, generation: u64, delta: i64) {
        self.open.send_modify(|m| {
            let n = m.entry(generation).or_default();
            *n = n.checked_add_signed(delta).unwrap();
        });
    }
}

async fn client(addr: SocketAddr, id: usize, c: Arc<Clients>) {
    let step = scaled(10);
    let mut seq = 0u64;
    while !c.stop.load(Ordering::SeqCst) {
        let mut ws = match WsClient::connect(addr).await {
            Ok(ws) => ws,
            Err(e) => {
                if c.counts.failed_open.fetch_add(1, Ordering::SeqCst) < 5 {
                    eprintln!("client {id}: connect failed: {e:#}");
                }
                // Not a sync: a pause so that a failing connect does not spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        c.counts.opened.fetch_add(1, Ordering::SeqCst);
        let g = ws.generation();
        // Counted on its generation after its first echo: the proxy counts a tunnel once
        // its relay runs, just after the 101 went out.
        let mut counted = false;
        let end = loop {
            if c.stop.load(Ordering::SeqCst) {
                break None;
            }
            let quiet = c.keep
                && c.drain_seen(g)
                    .is_some_and(|at| at.elapsed() + QUIET >= KEEP_DEADLINE);
            if quiet {
                break Some(ws.wait_end(KEEP_DEADLINE + step).await.unwrap());
            }
            seq += 1;
            let msg = format!("client {id} message {seq}");
            match ws.round_trip(msg.as_bytes(), step).await.unwrap() {
                Reply::Echo => {
                    if !counted {
                        counted = true;
                        c.add_open(g, 1);
                    }
                    c.counts.echoed.fetch_add(1, Ordering::SeqCst)
                }
                Reply::End(e) => {
                    c.counts.unanswered.fetch_add(1, Ordering::SeqCst);
                    break Some(e);
                }
            };
            // Waits for the next message's time, or for the end of the connection.
            match ws.next(INTERVAL).await {
                Err(_) => {}
                Ok(Err(e)) => break Some(e),
                Ok(Ok(p)) => panic!("unasked data {p:?}"),
            }
        };
        if counted {
            c.add_open(g, -1);
        }
        match end {
            None => break,
            Some(WsEnd::Closed(1001)) => c.counts.closed_1001.fetch_add(1, Ordering::SeqCst),
            Some(WsEnd::Closed(_)) => c.counts.closed_other.fetch_add(1, Ordering::SeqCst),
            Some(WsEnd::Cut) => {
                // The drain's start is seen a little after it happened: a margin.
                let early = c
                    .drain_seen(g)
                    .is_none_or(|at| at.elapsed() + Duration::from_millis(300) < KEEP_DEADLINE);
                if early {
                    c.counts.cut_early.fetch_add(1, Ordering::SeqCst);
                }
                c.counts.cut.fetch_add(1, Ordering::SeqCst)
            }
        };
    }
}

/// Over the `tunnels` events of the replaced generations (`pids`): the tunnels open at
/// the drain starts, and (from the last event of each) those closed with 1001 and cut.
fn tunnel_totals(events: &[Event], pids: &std::collections::HashSet<u32>) -> (u64, u64, u64) {
    let mut last: HashMap<u32, (u64, u64)> = HashMap::new();
    let mut at_start = 0;
    let mut seen: HashMap<u32, bool> = HashMap::new();
    for e in events.iter().filter(|e| pids.contains(&e.pid)) {
        if let EventKind::Tunnels {
            open,
            going_away,
            cut,
            ..
        } = e.kind
        {
            if !seen.insert(e.pid, true).unwrap_or(false) {
                at_start += open;
            }
            last.insert(e.pid, (going_away, cut));
        }
    }
    let (g, c) = last.values().fold((0, 0), |(a, b), (g, c)| (a + g, b + c));
    (at_start, g, c)
}

async fn many_tunnels(master: bool, keep: bool) {
    let conns = env("RELOADBENCH_WS_CONNS", 250) as usize;
    let reloads = env("RELOADBENCH_WS_RELOADS", 5);
    let started = Instant::now();
    let o = EchoOrigin::start().await;
    let s = Scratch::new();
    let mut conf = Conf::new(o.addr);
    conf.tunnels = Some(if keep { "keep" } else { "close" });
    conf.drain_deadline = if keep { KEEP_DEADLINE } else { scaled(30) };
    let cfg = s.config("p.toml", &conf);
    let (mut proxy, mut worker, addr) = if master {
        start_master(&s, &cfg, &[]).await
    } else {
        let (p, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
        let pid = p.pid;
        (p, pid, addr)
    };
    let clients = Arc::new(Clients {
        counts: Counts::default(),
        stop: AtomicBool::new(false),
        open: watch::Sender::new(HashMap::new()),
        draining: std::sync::Mutex::new(HashMap::new()),
        keep,
    });
    let tasks: Vec<_> = (0..conns)
        .map(|i| tokio::spawn(client(addr, i, clients.clone())))
        .collect();
    let mut events: Vec<Event> = Vec::new();
    let mut replaced = std::collections::HashSet::new();
    let all_on = |g: u64| {
        let mut rx = clients.open.subscribe();
        async move {
            let within = scaled(120);
            tokio::time::timeout(within, rx.wait_for(|m| m.get(&g) == Some(&(conns as u64))))
                .await
                .unwrap_or_else(|_| panic!("not every client on generation {g} within {within:?}"))
                .unwrap();
        }
    };
    for g in 1..=reloads {
        all_on(g).await;
        replaced.insert(worker);
        if master {
            proxy.signal(Signal::SIGUSR2).unwrap();
            let done = proxy
                .wait_event("reload_done", is_reload_done)
                .await
                .unwrap();
            let EventKind::ReloadDone { new_pid, .. } = done.kind else {
                unreachable!()
            };
            let old = worker;
            proxy
                .wait_event("draining", |e| {
                    e.pid == old && matches!(e.kind, EventKind::Draining { .. })
                })
                .await
                .unwrap();
            clients.draining.lock().unwrap().insert(g, Instant::now());
            proxy
                .wait_event("old worker exited", |e| e.pid == old && is_exited(e))
                .await
                .unwrap();
            worker = new_pid;
        } else {
            let mut new =
                spawn_upgrade(&s, &cfg, "fd-pass", &[], &format!("gen{}.log", g + 1)).unwrap();
            assert_eq!(new.ready().await.unwrap(), (g + 1, addr));
            proxy
                .wait_event("draining", |e| matches!(e.kind, EventKind::Draining { .. }))
                .await
                .unwrap();
            clients.draining.lock().unwrap().insert(g, Instant::now());
            let st = proxy
                .wait_exit(conf.drain_deadline + scaled(20))
                .await
                .unwrap();
            assert!(st.success(), "{}", proxy.logs());
            events.extend(proxy.all_events().await);
            proxy = new;
            worker = proxy.pid;
        }
    }
    all_on(reloads + 1).await;
    clients.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(proxy.stop().await.unwrap().success(), "{}", proxy.logs());
    events.extend(proxy.all_events().await);

    let c = &clients.counts;
    let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
    let (at_start, going_away, cut_by_proxy) = tunnel_totals(&events, &replaced);
    let total = conns as u64 * reloads;
    eprintln!(
        "{} {}: {conns} connections, {reloads} reloads in {:?}: opened {}, failed {}, echoed {} \
         (origin {}), unanswered {}, closed 1001 {}, other closes {}, cut {} (early {}); \
         proxy: tunnels at drain starts {at_start}, 1001 {going_away}, cut {cut_by_proxy}",
        if master { "master-worker" } else { "fd-pass" },
        if keep { "keep" } else { "close" },
        started.elapsed(),
        get(&c.opened),
        get(&c.failed_open),
        get(&c.echoed),
        o.echoed(),
        get(&c.unanswered),
        get(&c.closed_1001),
        get(&c.closed_other),
        get(&c.cut),
        get(&c.cut_early),
    );
    assert_eq!(get(&c.failed_open), 0);
    assert_eq!(
        get(&c.opened),
        conns as u64 * (reloads + 1),
        "every client reconnected once per reload"
    );
    assert_eq!(
        get(&o.counts.upgraded),
        get(&c.opened),
        "the origin switched every opened tunnel"
    );
    assert_eq!(get(&c.closed_other), 0);
    // Every tunnel was on the old generation at each drain start.
    assert_eq!(at_start, total);
    if keep {
        assert_eq!(
            get(&c.cut),
            total,
            "each reload's tunnels cut at the deadline"
        );
        assert_eq!(get(&c.cut_early), 0, "0 cut before the deadline");
        assert_eq!(get(&c.closed_1001), 0);
        assert_eq!(get(&c.unanswered), 0, "0 messages lost");
        assert_eq!(o.echoed(), get(&c.echoed));
        assert_eq!((going_away, cut_by_proxy), (0, total));
    } else {
        assert_eq!(get(&c.closed_1001), total, "every closed tunnel got 1001");
        assert_eq!(get(&c.cut), 0, "0 cut");
        assert_eq!((going_away, cut_by_proxy), (total, 0));
        // A message in flight at the close may have been echoed by the origin after the
        // proxy wrote the close frame: the origin counts it, the client does not.
        let extra = o.echoed() - get(&c.echoed);
        assert!(
            extra <= get(&c.unanswered),
            "origin echoed {extra} more than the clients got"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_websockets_close_with_1001_across_fd_pass_reloads() {
    many_tunnels(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_websockets_close_with_1001_across_master_worker_reloads() {
    many_tunnels(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_websockets_kept_until_the_deadline_across_fd_pass_reloads() {
    many_tunnels(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_websockets_kept_until_the_deadline_across_master_worker_reloads() {
    many_tunnels(true, true).await;
}
