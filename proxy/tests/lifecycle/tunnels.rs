//! Tunnels (WebSockets) through refproxy and across reloads: relayed both ways, kept
//! until the drain deadline or closed with 1001 at the drain's start, and the cap on old
//! generations. Counts are checked against the test's own client and echo origin.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reloadbench_model::event::{Event, EventKind};

use crate::master::start_master;
use crate::support::*;
use crate::ws::{EchoOrigin, Reply, WsClient, WsEnd, refused_upgrade};

/// Waits long enough for any one message or close on loopback.
fn step() -> Duration {
    scaled(10)
}

fn tunnels_of(pid: Option<u32>) -> impl Fn(&Event) -> bool {
    move |e| matches!(e.kind, EventKind::Tunnels { .. }) && pid.is_none_or(|p| e.pid == p)
}

fn counts(e: &Event) -> (u64, u64, u64) {
    match e.kind {
        EventKind::Tunnels {
            open,
            going_away,
            cut,
            ..
        } => (open, going_away, cut),
        ref k => panic!("{k:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_relays_websocket_messages_both_ways() {
    let o = EchoOrigin::start().await;
    let s = Scratch::new();
    let cfg = s.config("p.toml", &Conf::new(o.addr));
    let (mut p, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let mut echoed = 0u64;

    // Frames sent with the handshake, before the 101 came back, are relayed too.
    let mut early = WsClient::connect_with(addr, &[b"early-1", b"early-2"])
        .await
        .unwrap();
    assert_eq!(early.generation(), 1, "{}", early.served_by);
    for m in [&b"early-1"[..], b"early-2"] {
        assert_eq!(early.next(step()).await.unwrap().unwrap(), m);
        echoed += 1;
    }
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(WsClient::connect(addr).await.unwrap());
    }
    for i in 0..20 {
        for (c, client) in clients.iter_mut().enumerate() {
            let msg = format!("message {i} of client {c}");
            let r = client.round_trip(msg.as_bytes(), step()).await.unwrap();
            assert_eq!(r, Reply::Echo);
            echoed += 1;
        }
    }
    // Lengths with 16- and 64-bit length fields.
    for n in [300, 70_000] {
        let big = vec![b'z'; n];
        assert_eq!(
            clients[0].round_trip(&big, step()).await.unwrap(),
            Reply::Echo
        );
        echoed += 1;
    }
    // A close handshake from the client passes through: the origin answers it.
    early.send_close(1000).await.unwrap();
    assert_eq!(early.wait_end(step()).await.unwrap(), WsEnd::Closed(1000));

    // An upgrade the origin refuses is an ordinary response.
    let answer = refused_upgrade(addr, "/refuse").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.ends_with("no"), "{answer}");

    assert_eq!(o.echoed(), echoed, "the origin echoed what the clients got");
    let c = &o.counts;
    assert_eq!(c.upgraded.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert_eq!(c.refused.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The clients close their ends: nothing holds the drain.
    drop((clients, early));
    let stopping = Instant::now();
    assert!(p.stop().await.unwrap().success());
    assert!(
        stopping.elapsed() < scaled(5),
        "a tunnel outlived both its ends"
    );
}

/// How a test replaces generation 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    FdPass,
    Master,
}

/// A started refproxy (plain or master) and what a reload needs.
struct Running {
    s: Scratch,
    cfg: std::path::PathBuf,
    proxy: Proxy,
    /// The process whose events tell about generation 1's drain: itself (fd-pass) or
    /// the master (which relays its workers' events).
    gen1_pid: u32,
    addr: std::net::SocketAddr,
    mode: Mode,
    /// The next generation after fd-pass reloads.
    next: Option<Proxy>,
}

async fn start(mode: Mode, conf: impl FnOnce(&mut Conf), origin: &EchoOrigin) -> Running {
    let s = Scratch::new();
    let mut c = Conf::new(origin.addr);
    conf(&mut c);
    let cfg = s.config("p.toml", &c);
    match mode {
        Mode::FdPass => {
            let (proxy, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
            let gen1_pid = proxy.pid;
            Running {
                s,
                cfg,
                proxy,
                gen1_pid,
                addr,
                mode,
                next: None,
            }
        }
        Mode::Master => {
            let (proxy, w1, addr) = start_master(&s, &cfg, &[]).await;
            Running {
                s,
                cfg,
                proxy,
                gen1_pid: w1,
                addr,
                mode,
                next: None,
            }
        }
    }
}

impl Running {
    /// Reloads once and returns when generation 1 reports its tunnels at the drain's
    /// start (their counts).
    async fn reload_and_wait_drain(&mut self) -> (u64, u64, u64) {
        match self.mode {
            Mode::FdPass => {
                let mut new =
                    spawn_upgrade(&self.s, &self.cfg, "fd-pass", &[], "gen2.log").unwrap();
                assert_eq!(new.ready().await.unwrap().0, 2);
                self.next = Some(new);
            }
            Mode::Master => self.proxy.signal(Signal::SIGUSR2).unwrap(),
        }
        self.proxy
            .wait_event("reload_done", is_reload_done)
            .await
            .unwrap();
        let e = self
            .proxy
            .wait_event("tunnels at drain start", tunnels_of(Some(self.gen1_pid)))
            .await
            .unwrap();
        counts(&e)
    }

    /// Generation 1's tunnel counts at the end of its drain, and its `drained.forced`.
    async fn drained(&mut self) -> ((u64, u64, u64), u64) {
        let pid = self.gen1_pid;
        let e = self
            .proxy
            .wait_event("tunnels at drain end", tunnels_of(Some(pid)))
            .await
            .unwrap();
        let d = self
            .proxy
            .wait_event("drained", |e| {
                e.pid == pid && matches!(e.kind, EventKind::Drained { .. })
            })
            .await
            .unwrap();
        let EventKind::Drained { forced, .. } = d.kind else {
            unreachable!()
        };
        (counts(&e), forced)
    }

    async fn stop(mut self) {
        if let Some(mut n) = self.next.take() {
            assert!(n.stop().await.unwrap().success());
        }
        if self.mode == Mode::Master {
            assert!(self.proxy.stop().await.unwrap().success());
        } else {
            self.proxy.wait_exit(scaled(20)).await.unwrap();
        }
    }
}

const TUNNELS: usize = 4;

async fn keep_until_the_deadline(mode: Mode) {
    let o = EchoOrigin::start().await;
    let deadline = scaled(3);
    let mut r = start(
        mode,
        |c| {
            c.tunnels = Some("keep");
            c.drain_deadline = deadline;
        },
        &o,
    )
    .await;
    let mut clients = Vec::new();
    let mut echoed = 0u64;
    for i in 0..TUNNELS {
        let mut c = WsClient::connect(r.addr).await.unwrap();
        assert_eq!(c.generation(), 1);
        assert_eq!(
            c.round_trip(format!("hello {i}").as_bytes(), step())
                .await
                .unwrap(),
            Reply::Echo
        );
        echoed += 1;
        clients.push(c);
    }
    let at_start = r.reload_and_wait_drain().await;
    let drain_seen = Instant::now();
    assert_eq!(at_start, (TUNNELS as u64, 0, 0));
    // The tunnels keep working through the drain: every message echoed, none lost.
    for round in 0..10 {
        for (i, c) in clients.iter_mut().enumerate() {
            let msg = format!("drain {round} of {i}");
            assert_eq!(
                c.round_trip(msg.as_bytes(), step()).await.unwrap(),
                Reply::Echo
            );
            echoed += 1;
        }
    }
    assert!(
        drain_seen.elapsed() < deadline,
        "the rounds ran past the deadline: inconclusive"
    );
    // New tunnels go to generation 2.
    let mut fresh = WsClient::connect(r.addr).await.unwrap();
    assert_eq!(fresh.generation(), 2, "{}", fresh.served_by);
    assert_eq!(fresh.round_trip(b"new", step()).await.unwrap(), Reply::Echo);
    echoed += 1;
    // Then the deadline cuts them: no close frame.
    for c in &mut clients {
        assert_eq!(c.wait_end(deadline + step()).await.unwrap(), WsEnd::Cut);
    }
    // Event lines are read after the drain's start was seen: the cut is at the deadline
    // (less a margin for that delay).
    let cut_after = drain_seen.elapsed();
    assert!(
        cut_after + Duration::from_millis(500) >= deadline,
        "cut after {cut_after:?}, before the deadline {deadline:?}"
    );
    let (at_end, forced) = r.drained().await;
    assert_eq!(at_end, (0, 0, TUNNELS as u64), "(open, going_away, cut)");
    assert_eq!(forced, TUNNELS as u64);
    assert_eq!(
        o.echoed(),
        echoed,
        "0 messages lost: the origin echoed what the clients got"
    );
    drop(fresh);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_tunnels_run_through_an_fd_pass_drain_until_the_deadline() {
    keep_until_the_deadline(Mode::FdPass).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_tunnels_run_through_a_master_worker_drain_until_the_deadline() {
    keep_until_the_deadline(Mode::Master).await;
}

async fn close_with_1001_at_drain_start(mode: Mode) {
    let o = EchoOrigin::start().await;
    let deadline = scaled(30);
    let mut r = start(
        mode,
        |c| {
            c.tunnels = Some("close");
            c.drain_deadline = deadline;
        },
        &o,
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..TUNNELS {
        let mut c = WsClient::connect(r.addr).await.unwrap();
        assert_eq!(c.round_trip(b"hi", step()).await.unwrap(), Reply::Echo);
        clients.push(c);
    }
    let started = Instant::now();
    r.reload_and_wait_drain().await;
    for c in &mut clients {
        assert_eq!(c.wait_end(step()).await.unwrap(), WsEnd::Closed(1001));
    }
    assert!(
        started.elapsed() < deadline,
        "closed at the drain's start, not at its deadline"
    );
    let (at_end, forced) = r.drained().await;
    assert_eq!(at_end, (0, TUNNELS as u64, 0), "(open, going_away, cut)");
    assert_eq!(forced, 0);
    // The clients reconnect, to generation 2.
    for c in &mut clients {
        *c = WsClient::connect(r.addr).await.unwrap();
        assert_eq!(c.generation(), 2);
        assert_eq!(c.round_trip(b"again", step()).await.unwrap(), Reply::Echo);
    }
    assert_eq!(o.echoed(), 2 * TUNNELS as u64);
    drop(clients);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_tunnel_with_1001_at_an_fd_pass_drain_start() {
    close_with_1001_at_drain_start(Mode::FdPass).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_tunnel_with_1001_at_a_master_worker_drain_start() {
    close_with_1001_at_drain_start(Mode::Master).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_on_old_generations_closes_the_oldest_generations_tunnels() {
    let o = EchoOrigin::start().await;
    let mut r = start(
        Mode::Master,
        |c| {
            c.tunnels = Some("keep");
            c.max_old = 1;
            // Far beyond the test: only the cap can end generation 1's tunnels.
            c.drain_deadline = scaled(120);
        },
        &o,
    )
    .await;
    let w1 = r.gen1_pid;
    let mut first = Vec::new();
    for _ in 0..2 {
        let mut c = WsClient::connect(r.addr).await.unwrap();
        // An echo proves the tunnel is counted (the 101 goes out just before).
        assert_eq!(c.round_trip(b"gen1", step()).await.unwrap(), Reply::Echo);
        first.push(c);
    }
    assert_eq!(r.reload_and_wait_drain().await, (2, 0, 0));
    let mut second = Vec::new();
    for _ in 0..2 {
        let mut c = WsClient::connect(r.addr).await.unwrap();
        assert_eq!(c.generation(), 2);
        assert_eq!(c.round_trip(b"gen2", step()).await.unwrap(), Reply::Echo);
        second.push(c);
    }
    // One old generation is the cap: this reload first has generation 1 close its tunnels.
    r.proxy.signal(Signal::SIGUSR2).unwrap();
    for c in &mut first {
        assert_eq!(c.wait_end(step()).await.unwrap(), WsEnd::Closed(1001));
    }
    let (at_end, forced) = r.drained().await;
    assert_eq!(at_end, (0, 2, 0), "(open, going_away, cut) of generation 1");
    assert_eq!(forced, 0);
    r.proxy
        .wait_event("worker 1 exited", |e| e.pid == w1 && is_exited(e))
        .await
        .unwrap();
    let done = r
        .proxy
        .wait_event("reload_done", is_reload_done)
        .await
        .unwrap();
    assert!(
        matches!(done.kind, EventKind::ReloadDone { generation: 3, .. }),
        "{done:?}"
    );
    // Generation 2, now the one old generation, keeps its tunnels.
    for c in &mut second {
        assert_eq!(c.round_trip(b"still", step()).await.unwrap(), Reply::Echo);
    }
    assert_eq!(o.echoed(), 6);
    // Generation 2's tunnels would hold it for the whole deadline: a fast stop.
    r.proxy.signal(Signal::SIGINT).unwrap();
    r.proxy.wait_exit(scaled(20)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_after_the_linger_and_the_capped_reload_proceeds() {
    let o = EchoOrigin::start().await;
    let mut r = start(
        Mode::Master,
        |c| {
            c.tunnels = Some("keep");
            c.max_old = 1;
            // Far beyond the test: only the cut after drain.linger ends the tunnel.
            c.drain_deadline = scaled(120);
        },
        &o,
    )
    .await;
    let w1 = r.gen1_pid;
    // A message larger than what the loopback buffers hold, whose echo the client never
    // reads: refproxy's write to it stays stuck in the middle of the echo frame, so the
    // 1001 can never be written.
    let mut stuck = WsClient::connect(r.addr).await.unwrap();
    assert_eq!(
        stuck.round_trip(b"gen1", step()).await.unwrap(),
        Reply::Echo
    );
    stuck.send(&vec![b's'; 32 << 20]).await.unwrap();
    // The echo's frame header and a little of its payload: the echo is under way.
    stuck.read_raw(16, step()).await.unwrap();
    assert_eq!(r.reload_and_wait_drain().await, (1, 0, 0));
    // At the cap: generation 1 is told to close its tunnels, cannot write the close frame,
    // cuts the tunnel after drain.linger and exits; the reload goes on.
    r.proxy.signal(Signal::SIGUSR2).unwrap();
    let (at_end, forced) = r.drained().await;
    assert_eq!(at_end, (0, 0, 1), "(open, going_away, cut) of generation 1");
    assert_eq!(forced, 0);
    r.proxy
        .wait_event("worker 1 exited", |e| e.pid == w1 && is_exited(e))
        .await
        .unwrap();
    let next = r
        .proxy
        .wait_event("the reload's end", |e| {
            is_reload_done(e) || is_reload_failed(e)
        })
        .await
        .unwrap();
    assert!(
        matches!(next.kind, EventKind::ReloadDone { generation: 3, .. }),
        "{next:?}"
    );
    // The origin saw its connection end (the cut), independently of the proxy's count.
    let ended = tokio::time::timeout(step(), async {
        while o.counts.ended.load(std::sync::atomic::Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(ended.is_ok(), "the origin's connection is still open");
    drop(stuck);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_on_old_generations_closes_the_oldest_generations_tunnels_in_fd_pass() {
    let o = EchoOrigin::start().await;
    let mut r = start(
        Mode::FdPass,
        |c| {
            c.tunnels = Some("keep");
            c.max_old = 1;
            // Far beyond the test: only the cap can end generation 1's tunnels.
            c.drain_deadline = scaled(120);
        },
        &o,
    )
    .await;
    let mut first = Vec::new();
    for _ in 0..2 {
        let mut c = WsClient::connect(r.addr).await.unwrap();
        // An echo proves the tunnel is counted (the 101 goes out just before).
        assert_eq!(c.round_trip(b"gen1", step()).await.unwrap(), Reply::Echo);
        first.push(c);
    }
    assert_eq!(r.reload_and_wait_drain().await, (2, 0, 0));
    let mut second = Vec::new();
    for _ in 0..2 {
        let mut c = WsClient::connect(r.addr).await.unwrap();
        assert_eq!(c.generation(), 2);
        assert_eq!(c.round_trip(b"gen2", step()).await.unwrap(), Reply::Echo);
        second.push(c);
    }
    // Generation 2 is replaced while generation 1 still drains: one old generation is the
    // cap, so generation 1 first closes its tunnels.
    let mut third = spawn_upgrade(&r.s, &r.cfg, "fd-pass", &[], "gen3.log").unwrap();
    for c in &mut first {
        assert_eq!(c.wait_end(step()).await.unwrap(), WsEnd::Closed(1001));
    }
    let (at_end, forced) = r.drained().await;
    assert_eq!(at_end, (0, 2, 0), "(open, going_away, cut) of generation 1");
    assert_eq!(forced, 0);
    assert!(r.proxy.wait_exit(scaled(20)).await.unwrap().success());
    assert_eq!(third.ready().await.unwrap(), (3, r.addr));
    // Generation 2, now the one old generation, keeps its tunnels.
    for c in &mut second {
        assert_eq!(c.round_trip(b"still", step()).await.unwrap(), Reply::Echo);
    }
    assert_eq!(o.echoed(), 6);
    let mut second_gen = r.next.take().unwrap();
    second_gen
        .wait_event("reload_done", is_reload_done)
        .await
        .unwrap();
    // `reload_done` goes out before generation 2 stops accepting on the socket it shares
    // with generation 3; `draining` after its accept loops have ended: from then on only
    // generation 3 accepts.
    second_gen
        .wait_event("draining", |e| matches!(e.kind, EventKind::Draining { .. }))
        .await
        .unwrap();
    let fresh = WsClient::connect(r.addr).await.unwrap();
    assert_eq!(fresh.generation(), 3);
    drop(fresh);
    // Generation 2's tunnels would hold it for the whole deadline: a fast stop.
    second_gen.signal(Signal::SIGINT).unwrap();
    second_gen.wait_exit(scaled(20)).await.unwrap();
    assert!(third.stop().await.unwrap().success());
}
