//! TLS listeners: handshakes and resumption on one generation and across fd-pass and
//! master-worker reloads (with and without shared ticket keys), bad clients, `check`,
//! a rolled-back reload with a bad certificate, and reloads under TLS load.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::master::start_master;
use crate::support::*;
use crate::tls_client::*;

/// An origin, a scratch dir, certificates and a TLS config (`extra` lines in `[tls]`).
struct Setup {
    origin: reloadbench_origin::Origin,
    s: Scratch,
    pki: Pki,
    cfg: std::path::PathBuf,
}

async fn setup(extra: &str) -> Setup {
    let origin = origin(100, None).await;
    let s = Scratch::new();
    let pki = Pki::new(s.dir.path());
    let cfg = tls_config(&s, "p.toml", &Conf::new(origin.addr()), &pki, extra);
    Setup {
        origin,
        s,
        pki,
        cfg,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_full_then_resumed_on_one_generation_with_keep_alive_and_tls12_session_ids() {
    let t = setup("").await;
    let (mut proxy, addr) = start_plain(&t.s, &t.cfg, "gen1.log").await.unwrap();
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    let first = client.visit(addr, 3).await.unwrap();
    assert!(!first.resumed, "the first handshake is full");
    assert_eq!(first.served_by.len(), 3, "keep-alive over TLS");
    assert!(first.served_by.iter().all(|b| b.starts_with("gen=1 ")));
    let second = client.visit(addr, 1).await.unwrap();
    assert!(second.resumed, "the saved ticket resumes");
    // TLS 1.2 with session ids only: the process's session cache resumes it.
    let tls12 = TlsClient::new(&t.pki, Flavor::Tls12SessionIds);
    assert!(!tls12.visit(addr, 1).await.unwrap().resumed);
    assert!(tls12.visit(addr, 2).await.unwrap().resumed);
    assert_eq!(client.counts.get(), (1, 1, 4, 0));
    assert_eq!(tls12.counts.get(), (1, 1, 3, 0));
    assert_eq!(t.origin.requests(), 7, "the origin saw every request once");
    proxy.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_cleartext_listeners_side_by_side() {
    let origin = origin(100, None).await;
    let s = Scratch::new();
    let pki = Pki::new(s.dir.path());
    let mut conf = Conf::new(origin.addr());
    conf.listen = "127.0.0.1:0".parse().unwrap();
    // Two listeners: the first (127.0.0.1) cleartext, the second (127.0.0.2) TLS.
    let text = conf.toml(&s.control()).replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\", \"127.0.0.2:0\"]",
    );
    // A TLS client on the cleartext port is closed at the header timeout.
    let text = format!(
        "{text}[timeouts]\nheader_read = \"500ms\"\n{}",
        pki.table("listen = [\"127.0.0.2:0\"]\n")
    );
    let cfg = s.path("p.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut p = Proxy::spawn(
        [OsStr::new("--config"), cfg.as_os_str()],
        s.path("gen1.log"),
    )
    .unwrap();
    let e = p
        .wait_event("ready", |e| {
            matches!(e.kind, reloadbench_model::event::EventKind::Ready { .. })
        })
        .await
        .unwrap();
    let reloadbench_model::event::EventKind::Ready { addrs, .. } = &e.kind else {
        unreachable!()
    };
    let plain: SocketAddr = addrs[0].parse().unwrap();
    let tls: SocketAddr = addrs[1].parse().unwrap();
    assert_eq!(get(plain).await.unwrap().0, 200);
    let client = TlsClient::new(&pki, Flavor::Tickets);
    client.visit(tls, 1).await.unwrap();
    assert!(
        client.visit(plain, 1).await.is_err(),
        "no TLS on the cleartext one"
    );
    p.stop().await.unwrap();
}

/// A ticket saved from generation 1 is offered to generation 2 after an fd-pass reload:
/// it resumes when the keys were handed over, and does not when they were not.
async fn fd_pass_resumption(share: bool) {
    let extra = if share {
        ""
    } else {
        "share_ticket_keys = false\n"
    };
    let t = setup(extra).await;
    let (mut old, addr) = start_plain(&t.s, &t.cfg, "gen1.log").await.unwrap();
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    assert!(!client.visit(addr, 1).await.unwrap().resumed);
    assert!(client.visit(addr, 1).await.unwrap().resumed);
    let tls12 = TlsClient::new(&t.pki, Flavor::Tls12Tickets);
    assert!(!tls12.visit(addr, 1).await.unwrap().resumed);
    let mut new = spawn_upgrade(&t.s, &t.cfg, "fd-pass", &[], "gen2.log").unwrap();
    assert_eq!(new.ready().await.unwrap(), (2, addr));
    old.wait_event("reload_done", is_reload_done).await.unwrap();
    assert!(old.wait_exit(scaled(20)).await.unwrap().success());
    let after = client.visit(addr, 1).await.unwrap();
    assert!(after.served_by[0].starts_with("gen=2 "), "{after:?}");
    assert_eq!(after.resumed, share, "shared keys: {share}");
    // The same for a TLS 1.2 ticket (RFC 5077).
    assert_eq!(
        tls12.visit(addr, 1).await.unwrap().resumed,
        share,
        "TLS 1.2"
    );
    // Either way generation 2 resumes its own tickets.
    assert!(client.visit(addr, 1).await.unwrap().resumed);
    let (full, resumed, ok, failed) = client.counts.get();
    assert_eq!((full + resumed, ok, failed), (4, 4, 0));
    assert_eq!(tls12.counts.get().3, 0);
    assert_eq!(t.origin.requests(), 6);
    new.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ticket_resumes_after_an_fd_pass_reload() {
    fd_pass_resumption(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ticket_does_not_resume_after_an_fd_pass_reload_without_shared_keys() {
    fd_pass_resumption(false).await;
}

async fn master_resumption(share: bool) {
    let extra = if share {
        ""
    } else {
        "share_ticket_keys = false\n"
    };
    let t = setup(extra).await;
    let (mut m, w1, addr) = start_master(&t.s, &t.cfg, &[]).await;
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    let first = client.visit(addr, 1).await.unwrap();
    assert_eq!(first.served_by[0], format!("gen=1 pid={w1}"));
    assert!(!first.resumed);
    m.signal(Signal::SIGUSR2).unwrap();
    m.wait_event("reload_done", is_reload_done).await.unwrap();
    wait_gone(w1, scaled(20)).await.unwrap();
    let after = client.visit(addr, 1).await.unwrap();
    assert!(after.served_by[0].starts_with("gen=2 "), "{after:?}");
    assert_eq!(after.resumed, share, "shared keys: {share}");
    // A second reload: the keys go on from the master again.
    let w2 = after.served_by[0]
        .rsplit("pid=")
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap();
    m.signal(Signal::SIGUSR2).unwrap();
    m.wait_event("second reload_done", |e| {
        matches!(
            e.kind,
            reloadbench_model::event::EventKind::ReloadDone { generation: 3, .. }
        )
    })
    .await
    .unwrap();
    wait_gone(w2, scaled(20)).await.unwrap();
    let third = client.visit(addr, 1).await.unwrap();
    assert!(third.served_by[0].starts_with("gen=3 "), "{third:?}");
    assert_eq!(third.resumed, share, "shared keys: {share}");
    assert_eq!(client.counts.get().3, 0);
    assert_eq!(t.origin.requests(), 3);
    m.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ticket_resumes_after_master_worker_reloads() {
    master_resumption(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ticket_does_not_resume_after_master_worker_reloads_without_shared_keys() {
    master_resumption(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_garbage_stalled_and_oversized_hellos_are_closed_while_a_good_client_is_served() {
    let t = setup("handshake_timeout = \"1s\"\n").await;
    let (mut proxy, addr) = start_plain(&t.s, &t.cfg, "gen1.log").await.unwrap();
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    // A good client keeps going the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client.visit(addr, 2).await.unwrap();
            }
        })
    };
    // Garbage: a cleartext request on the TLS port.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A stall: half a ClientHello record header, then nothing.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    // A ClientHello of 64 KiB: a handshake header announcing 65,536 bytes, sent in full
    // 16 KiB records.
    let mut oversized = TcpStream::connect(addr).await.unwrap();
    let sender = tokio::spawn(async move {
        let total = 4 + 65_536usize;
        let mut hello = vec![0u8; total];
        hello[..4].copy_from_slice(&[0x01, 0x01, 0x00, 0x00]);
        for chunk in hello.chunks(16_384) {
            let len = chunk.len() as u16;
            let mut record = vec![0x16, 0x03, 0x01];
            record.extend_from_slice(&len.to_be_bytes());
            record.extend_from_slice(chunk);
            if oversized.write_all(&record).await.is_err() {
                break;
            }
        }
        oversized
    });
    let took = closed_within(&mut garbage, scaled(10)).await.unwrap();
    assert!(
        took < Duration::from_millis(900),
        "garbage closed at once: {took:?}"
    );
    let mut oversized = sender.await.unwrap();
    closed_within(&mut oversized, scaled(10)).await.unwrap();
    let took = closed_within(&mut stalled, scaled(10)).await.unwrap();
    assert!(
        took >= Duration::from_millis(800),
        "the stall is closed at the handshake timeout: {took:?}"
    );
    // The good client made progress through all of it, and keeps doing so.
    let before = client.counts.get().2;
    client.visit(addr, 1).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    good.await.unwrap();
    let (full, resumed, ok, failed) = client.counts.get();
    assert_eq!(failed, 0);
    assert!(
        before > 0 && ok > before && full == 1 && resumed > 0,
        "{:?}",
        client.counts
    );
    assert_eq!(
        t.origin.requests(),
        ok,
        "the origin saw every request of the good client"
    );
    proxy.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_bad_certificate_fails_check_with_exit_2_and_a_reload_rolls_back() {
    let t = setup("").await;
    let (mut old, addr) = start_plain(&t.s, &t.cfg, "gen1.log").await.unwrap();
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    client.visit(addr, 1).await.unwrap();
    // The key of another certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let bad_key = t.s.path("other.key");
    std::fs::write(&bad_key, other.signing_key.serialize_pem()).unwrap();
    let text = std::fs::read_to_string(&t.cfg).unwrap().replace(
        &t.pki.key.display().to_string(),
        &bad_key.display().to_string(),
    );
    let bad = t.s.path("bad.toml");
    std::fs::write(&bad, &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("key = ")).unwrap() + 1;
    let out = std::process::Command::new(BIN)
        .args([OsStr::new("check"), OsStr::new("--config"), bad.as_os_str()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:{line}:7: tls.key: the private key does not match the certificate",
            bad.display()
        )),
        "{err}"
    );
    // A reload to it fails before READY: the old generation keeps serving.
    let mut new = spawn_upgrade(&t.s, &bad, "fd-pass", &[], "gen2.log").unwrap();
    assert_eq!(new.wait_exit(scaled(20)).await.unwrap().code(), Some(2));
    let visit = client.visit(addr, 1).await.unwrap();
    assert_eq!(visit.served_by[0], format!("gen=1 pid={}", old.pid));
    assert!(visit.resumed);
    old.stop().await.unwrap();
}

/// Closed-loop TLS clients: half keep-alive (4 requests a connection), half one request
/// per connection, all sharing one session store; they run until told to stop.
struct TlsLoad {
    client: TlsClient,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TlsLoad {
    fn start(client: &TlsClient, addr: SocketAddr, clients: usize) -> TlsLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|i| {
                let (client, stop) = (client.clone(), stop.clone());
                let per_conn = if i % 2 == 0 { 4 } else { 1 };
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = client.visit(addr, per_conn).await {
                            eprintln!("TLS load: {e:#}");
                        }
                    }
                })
            })
            .collect();
        TlsLoad {
            client: client.clone(),
            stop,
            tasks,
        }
    }

    async fn progress_by(&self, n: u64) {
        let target = self.client.counts.get().2 + n;
        tokio::time::timeout(scaled(30), async {
            while self.client.counts.get().2 < target {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the TLS load made no progress");
    }

    async fn finish(self) -> (u64, u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.client.counts.get()
    }

    /// Ends the load and checks what every reload under TLS load must keep: no
    /// request failed, the origin counted what the client counted, and only each
    /// client's first handshake was full (they share one store but start together;
    /// after that the tickets handed down from generation to generation resume).
    async fn finish_lossless(self, origin: &reloadbench_origin::Origin, what: &str) {
        let (full, resumed, ok, failed) = self.finish().await;
        eprintln!(
            "{what} under TLS load: {ok} requests ok, {failed} failed; handshakes full {full}, resumed {resumed}"
        );
        assert_eq!(failed, 0);
        assert_eq!(
            origin.requests(),
            ok,
            "the origin counted what the client counted"
        );
        assert!(full <= 8, "full handshakes {full} (resumed {resumed})");
    }
}

/// How many reloads the heavy TLS tests make: `RELOADBENCH_TLS_RELOADS`, else `default`.
fn reloads(default: u64) -> u64 {
    std::env::var("RELOADBENCH_TLS_RELOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_fd_pass_reloads_under_load_lose_nothing_and_keep_resuming() {
    let n = reloads(10);
    let t = setup("").await;
    let (mut current, addr) = start_plain(&t.s, &t.cfg, "gen1.log").await.unwrap();
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    let load = TlsLoad::start(&client, addr, 8);
    load.progress_by(100).await;
    for i in 0..n {
        let generation = i + 2;
        fd_pass_reload(&t.s, &t.cfg, &mut current, generation, addr).await;
        load.progress_by(50).await;
    }
    load.finish_lossless(&t.origin, &format!("{n} fd-pass reloads"))
        .await;
    let (_, by) = get_tls(&client, addr).await;
    assert!(by.starts_with(&format!("gen={} ", n + 1)), "{by}");
    current.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_master_worker_reloads_under_load_lose_nothing_and_keep_resuming() {
    let n = reloads(5);
    let t = setup("").await;
    let (mut m, _w1, addr) = start_master(&t.s, &t.cfg, &[]).await;
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    let load = TlsLoad::start(&client, addr, 8);
    load.progress_by(100).await;
    for i in 0..n {
        let generation = i + 2;
        m.signal(Signal::SIGUSR2).unwrap();
        m.wait_event("reload_done", |e| {
            matches!(
                e.kind,
                reloadbench_model::event::EventKind::ReloadDone { generation: g, .. } if g == generation
            )
        })
        .await
        .unwrap();
        load.progress_by(50).await;
    }
    load.finish_lossless(&t.origin, &format!("{n} master-worker reloads"))
        .await;
    m.stop().await.unwrap();
}

/// One TLS request; its status line is 200 (checked) and its `X-Served-By`.
async fn get_tls(client: &TlsClient, addr: SocketAddr) -> (bool, String) {
    let v = client.visit(addr, 1).await.unwrap();
    (v.resumed, v.served_by[0].clone())
}

/// A restart shares nothing with the old process: only a ticket key file (read by both)
/// lets the old tickets resume.
async fn restart_resumption(key_file: bool) {
    let o = origin(100, None).await;
    let s = Scratch::new();
    let pki = Pki::new(s.dir.path());
    std::fs::write(s.path("ticket.key"), [0x5au8; 80]).unwrap();
    let extra = if key_file {
        format!(
            "ticket_keys_file = \"{}\"\n",
            s.path("ticket.key").display()
        )
    } else {
        String::new()
    };
    let cfg = tls_config(&s, "p.toml", &Conf::new(o.addr()), &pki, &extra);
    let (mut first, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let client = TlsClient::new(&pki, Flavor::Tickets);
    assert!(!client.visit(addr, 1).await.unwrap().resumed);
    first.stop().await.unwrap();
    // The same address again, in a new process.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!("listen = [\"{addr}\"]"),
    );
    std::fs::write(&cfg, text).unwrap();
    let (mut second, again) = start_plain(&s, &cfg, "gen1b.log").await.unwrap();
    assert_eq!(again, addr);
    let after = client.visit(addr, 1).await.unwrap();
    assert_eq!(after.resumed, key_file, "key file: {key_file}");
    assert_eq!(client.counts.get().3, 0);
    assert_eq!(o.requests(), 2);
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_restart_resumes_with_a_ticket_keys_file() {
    restart_resumption(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_restart_does_not_resume_without_a_ticket_keys_file() {
    restart_resumption(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_master_refuses_a_reload_to_a_bad_certificate_and_the_worker_keeps_serving() {
    let t = setup("").await;
    let (mut m, w1, addr) = start_master(&t.s, &t.cfg, &[]).await;
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    assert!(!client.visit(addr, 1).await.unwrap().resumed);
    // An expired certificate (with its own key) replaces the good one in the config.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    std::fs::write(&t.pki.cert, params.self_signed(&key).unwrap().pem()).unwrap();
    std::fs::write(&t.pki.key, key.serialize_pem()).unwrap();
    m.signal(Signal::SIGHUP).unwrap();
    let failed = m
        .wait_event("reload_failed", is_reload_failed)
        .await
        .unwrap();
    let reloadbench_model::event::EventKind::ReloadFailed { reason, generation } = &failed.kind
    else {
        unreachable!()
    };
    assert_eq!(*generation, 1);
    assert!(
        reason.contains("tls.cert: the certificate expired"),
        "{reason}"
    );
    let visit = client.visit(addr, 1).await.unwrap();
    assert_eq!(visit.served_by[0], format!("gen=1 pid={w1}"));
    assert!(visit.resumed);
    m.stop().await.unwrap();
}

/// Visits `addr` every 400 ms for `span`: every visit resumes with the ticket of the
/// visit before, whatever rotations happen meanwhile (the worker's keys follow the
/// master's), and each takes home a ticket sealed with the newest key.
async fn visit_through_rotations(client: &TlsClient, addr: SocketAddr, span: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < span {
        // Waits on the wall clock on purpose: rotations are due on it (every second).
        tokio::time::sleep(Duration::from_millis(400)).await;
        let v = client.visit(addr, 1).await.unwrap();
        assert!(v.resumed, "{v:?} after {:?}", start.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_master_pushes_rotated_keys_so_tickets_resume_on_the_next_worker() {
    let t = setup("ticket_key_rotation = \"1s\"\n").await;
    let (mut m, w1, addr) = start_master(&t.s, &t.cfg, &[]).await;
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    let first = client.visit(addr, 1).await.unwrap();
    assert!(!first.resumed);
    assert_eq!(first.served_by[0], format!("gen=1 pid={w1}"));
    let mut worker = w1;
    for generation in 2..=3u64 {
        // At least two rotations on one worker: a worker that kept its first key (no
        // push) would hand out tickets that the next worker, started from the master's
        // current keys, cannot open.
        visit_through_rotations(&client, addr, Duration::from_millis(2_500)).await;
        m.signal(Signal::SIGUSR2).unwrap();
        m.wait_event("reload_done", |e| {
            matches!(
                e.kind,
                reloadbench_model::event::EventKind::ReloadDone { generation: g, .. } if g == generation
            )
        })
        .await
        .unwrap();
        // The replaced worker may still accept what was queued: wait until it is gone.
        wait_gone(worker, scaled(20)).await.unwrap();
        let after = client.visit(addr, 1).await.unwrap();
        assert!(
            after.served_by[0].starts_with(&format!("gen={generation} ")),
            "{after:?}"
        );
        worker = after.served_by[0]
            .rsplit("pid=")
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap();
        assert!(
            after.resumed,
            "the previous worker's ticket resumes: {after:?}"
        );
    }
    let (full, resumed, ok, failed) = client.counts.get();
    assert_eq!((full, failed), (1, 0), "resumed {resumed}");
    // (That a ticket does not resume after two rotations is tested on the keys: a rustls
    // client drops a ticket older than its lifetime hint, one rotation, by itself.)
    assert_eq!(t.origin.requests(), ok);
    m.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_tls_fd_pass_successors_go_on_rotating_from_the_handed_keys() {
    let t = setup("ticket_key_rotation = \"1s\"\n").await;
    let (mut current, addr) = start_plain(&t.s, &t.cfg, "gen1.log").await.unwrap();
    let client = TlsClient::new(&t.pki, Flavor::Tickets);
    assert!(!client.visit(addr, 1).await.unwrap().resumed);
    for generation in 2..=3u64 {
        // Each generation rotates on its own (at least twice here); the tickets it
        // hands out after its rotations resume on its successor, which was handed its
        // current and previous keys.
        visit_through_rotations(&client, addr, Duration::from_millis(2_500)).await;
        fd_pass_reload(&t.s, &t.cfg, &mut current, generation, addr).await;
        let after = client.visit(addr, 1).await.unwrap();
        assert!(
            after.served_by[0].starts_with(&format!("gen={generation} ")),
            "{after:?}"
        );
        assert!(after.resumed, "the predecessor's ticket resumes: {after:?}");
    }
    let (full, _, ok, failed) = client.counts.get();
    assert_eq!((full, failed), (1, 0));
    assert_eq!(t.origin.requests(), ok);
    current.stop().await.unwrap();
}
