//! The three-way ledger against independent counts.
//!
//! - A seed-like `reloadbench run` (refproxy; fd-pass reloads that lose nothing,
//!   naive reloads and a kill -9 that lose requests): every number of each case's
//!   ledger is recomputed here from the raw files the three parties wrote
//!   (`loadgen.json`, `origin-ledger.json`, the `counters` events in `events.jsonl`).
//! - A planted imbalance: the built-in origin answers everything, a proxy written here
//!   drops every 7th response after reading it from the origin and counts the drops;
//!   the ledger's lost-after-forwarding must be exactly that count.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reloadbench_harness::{Sides, read_origin, reconcile};
use reloadbench_model::event::{Event, EventKind};
use reloadbench_model::ledger::{OriginLedger, ProxyCounters};
use reloadbench_model::load::LoadReport;
use support::{reloadbench, scaled, scenario_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SEED_LIKE: &str = r#"
name = "ledger"

[origin]
body_bytes = 4096

[load]
concurrency = 50
duration = "2s"
keep_alive = false
timeout = "5s"

[proxy]
kind = "reference"

[[case]]
name = "fd-pass"
actions = [{ every = "400ms", start = "200ms", do = "reload", mode = "fd-pass" }]
expect = { failed = 0, ledger_balanced = 1, lost_after_forwarding = 0 }

[[case]]
name = "naive"
actions = [{ every = "400ms", start = "200ms", do = "reload", mode = "naive" }]
expect = { ledger_balanced = 1 }

[[case]]
name = "kill"
actions = [{ at = "700ms", do = "kill", restart = true }]
expect = { failed = "> 0", ledger_balanced = 1 }
"#;

/// The counters events of a case, summed, and the number of processes that reported.
fn proxy_counters(events: &Path) -> (ProxyCounters, usize) {
    let mut total = ProxyCounters::default();
    let mut n = 0;
    for line in std::fs::read_to_string(events).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(e) = v.get("event") else { continue };
        let e: Event = serde_json::from_value(e.clone()).unwrap();
        if let EventKind::Counters { counters, .. } = e.kind {
            total.add(&counters);
            n += 1;
        }
    }
    (total, n)
}

#[test]
fn heavy_ledger_reconciles_client_proxy_and_origin_exactly() {
    let dir = scenario_dir("ledger.toml", SEED_LIKE);
    let run = reloadbench(
        &dir,
        &["run", "ledger.toml", "-q"],
        Duration::from_secs(120),
    );
    run.assert_code(0);
    let r = run.results();
    assert_eq!(r.cases.len(), 3);
    for (i, case) in r.cases.iter().enumerate() {
        let case_dir = run.case_dir(i);
        let l = case.ledger.as_ref().expect("every case has a ledger");
        let name = &case.name;
        // Client: loadgen's own file.
        let load: LoadReport =
            serde_json::from_slice(&std::fs::read(case_dir.join("loadgen.json")).unwrap()).unwrap();
        assert_eq!(
            (l.client.ok, l.client.failed),
            (load.ok, load.failed),
            "{name}"
        );
        assert!(l.client.ids, "{name}: every failure carries its id");
        assert_eq!(load.failures.len() as u64, load.failed, "{name}");
        // Origin: its own file.
        let origin: OriginLedger = read_origin(&case_dir.join("origin-ledger.json")).unwrap();
        let o = l.origin.as_ref().expect("origin counts");
        assert_eq!(
            (o.received, o.answered),
            (origin.received, origin.answered),
            "{name}"
        );
        assert_eq!(o.answered_ids, origin.distinct_ids(), "{name}");
        assert_eq!(
            o.answered_per_bucket.iter().sum::<u64>() + o.answered_outside_load,
            origin.answered,
            "{name}"
        );
        // Every request the client started reached the origin at most once, and every
        // ok one did: the origin's ids are client ids.
        assert_eq!(
            (origin.duplicate_ids, origin.answered_without_id),
            (0, 0),
            "{name}"
        );
        // Lost after forwarding, recomputed: failures whose id the origin answered.
        let lost = load
            .failures
            .iter()
            .filter(|f| origin.answered_id(f.id.unwrap()))
            .count() as u64;
        assert_eq!(l.lost_after_forwarding, Some(lost), "{name}");
        assert_eq!(
            load.ok,
            origin.distinct_ids() - lost,
            "{name}: client ok = answered - lost"
        );
        let attributed: u64 = case
            .actions
            .iter()
            .map(|a| a.lost_after_forwarding.unwrap())
            .sum();
        assert!(attributed <= lost, "{name}");
        // Proxy: the counters events as printed.
        let (proxy, reports) = proxy_counters(&case_dir.join("events.jsonl"));
        let p = l.proxy.as_ref().expect("refproxy reports");
        assert_eq!(p.total, proxy, "{name}");
        match name.as_str() {
            "kill" => {
                assert_eq!(
                    p.missing,
                    vec![1],
                    "{name}: the killed process never reported"
                );
                assert!(load.failed > 0);
            }
            _ => {
                // One report per generation: the first and one per reload.
                assert_eq!(reports, 1 + case.actions.len(), "{name}");
                assert!(p.missing.is_empty(), "{name}: {:?}", p.missing);
                assert_eq!(proxy.forwarded, origin.received, "{name}");
                assert_eq!(proxy.completed, load.ok, "{name}");
                // A naive reload's lost connections were connected by the kernel
                // and never accepted by a proxy process.
                assert!(proxy.accepted <= load.connections, "{name}");
            }
        }
        if name == "fd-pass" {
            assert_eq!((load.failed, lost), (0, 0));
            assert_eq!(proxy.accepted, load.connections, "{name}");
        }
        assert!(l.balanced, "{name}: {l:#?}");
        assert!(l.checks.iter().all(|c| c.holds), "{name}");
        eprintln!("{name}: {}", l.summary());
    }
    let md = std::fs::read_to_string(run.out.join("report.md")).unwrap();
    assert!(md.contains("## Ledger"), "{md}");
    assert!(
        md.contains("failed requests that reached the origin"),
        "{md}"
    );
    run.assert_no_process_left();
}

/// The built-in origin as a child process with `--ledger`.
struct OriginProcess {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl OriginProcess {
    fn start(ledger: &Path) -> OriginProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reloadbench"))
            .args([
                "origin",
                "--listen",
                "127.0.0.1:0",
                "--body-bytes",
                "1000",
                "--ledger",
            ])
            .arg(ledger)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = match Event::parse_line(&line).unwrap().kind {
            EventKind::Ready { addrs, .. } => addrs[0].parse().unwrap(),
            other => panic!("not ready: {other:?}"),
        };
        OriginProcess { child, addr }
    }

    /// SIGTERM, then wait (bounded) for the exit.
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = std::time::Instant::now() + scaled(Duration::from_secs(10));
        while std::time::Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "{st:?}");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the origin did not exit after SIGTERM");
    }
}

impl Drop for OriginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the dropping proxy did.
#[derive(Default)]
struct DropCounts {
    relayed: AtomicU64,
    dropped: AtomicU64,
}

/// Serves one client connection: reads the request head, sends it to the origin,
/// reads the whole response (the origin closes after it: the client asked
/// `Connection: close`), then relays it, or, for every 7th request, closes the client
/// connection without a byte and counts the drop.
async fn drop_some(
    mut client: TcpStream,
    origin: std::net::SocketAddr,
    n: u64,
    c: Arc<DropCounts>,
) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(k) => req.extend_from_slice(&buf[..k]),
        }
    }
    let mut up = TcpStream::connect(origin).await.unwrap();
    up.write_all(&req).await.unwrap();
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await.unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 200"), "the origin answered");
    if n % 7 == 3 {
        c.dropped.fetch_add(1, Ordering::SeqCst);
        drop(client);
        return;
    }
    if client.write_all(&resp).await.is_ok() {
        c.relayed.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn heavy_responses_dropped_after_the_origin_answered_are_lost_after_forwarding_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger_path = tmp.path().join("origin-ledger.json");
    let origin = OriginProcess::start(&ledger_path);
    let origin_addr = origin.addr;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counts = Arc::new(DropCounts::default());
    let load = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = listener.local_addr().unwrap();
        let c = counts.clone();
        let proxy = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(drop_some(s, origin_addr, n, c.clone()));
                n += 1;
            }
        });
        let mut cfg =
            reloadbench_loadgen::LoadConfig::new(&format!("http://{proxy_addr}/")).unwrap();
        cfg.concurrency = 8;
        cfg.requests = Some(700);
        cfg.timeout = scaled(Duration::from_secs(5));
        cfg.request_ids = true;
        let report = tokio::time::timeout(scaled(Duration::from_secs(60)), async {
            reloadbench_loadgen::start(cfg)
                .unwrap()
                .finish()
                .await
                .unwrap()
        })
        .await
        .expect("the load ends");
        proxy.abort();
        report
    });
    origin.stop();
    let dropped = counts.dropped.load(Ordering::SeqCst);
    let relayed = counts.relayed.load(Ordering::SeqCst);
    assert_eq!(dropped, 100, "every 7th of 700 connections");
    assert_eq!((load.ok, load.failed), (relayed, dropped));
    let origin_counts = read_origin(&ledger_path).unwrap();
    assert_eq!(origin_counts.answered, 700);
    let mut actions = [];
    let l = reconcile(
        &load,
        Sides {
            ids: true,
            origin: Ok(origin_counts),
            proxy: None,
        },
        &mut actions,
    );
    assert_eq!(l.lost_after_forwarding, Some(dropped));
    assert!(l.balanced, "client ok = answered - lost: {l:#?}");
    // A gate on it fails, by the drop count.
    let case = reloadbench_model::run::CaseReport {
        name: "drops".into(),
        description: String::new(),
        load,
        actions: vec![],
        expectations: vec![],
        cpu: Default::default(),
        error: None,
        trial: None,
        kernel: None,
        machine: None,
        ledger: Some(l),
        diagnosis: Vec::new(),
        evidence: None,
        old_generations_max: None,
        generations: None,
    };
    let m = reloadbench_harness::Metric::from_key("lost_after_forwarding").unwrap();
    assert_eq!(m.measure(&case), Some(100.0));
    // The same run read with the answers of the dropped requests hidden from the
    // origin's file (a miscounting origin): the client equality breaks by the count.
    let mut hidden = read_origin(&ledger_path).unwrap();
    let mut ids: Vec<u64> = (0..700).filter(|id| hidden.answered_id(*id)).collect();
    let dropped_ids: BTreeMap<u64, ()> = case
        .load
        .failures
        .iter()
        .map(|f| (f.id.unwrap(), ()))
        .collect();
    ids.retain(|id| !dropped_ids.contains_key(id));
    hidden.answered_ids = OriginLedger::ranges_of(&ids);
    let l = reconcile(
        &case.load,
        Sides {
            ids: true,
            origin: Ok(hidden),
            proxy: None,
        },
        &mut [],
    );
    assert_eq!(l.lost_after_forwarding, Some(0));
    let broken: Vec<(&str, i128)> = l
        .broken()
        .map(|c| (c.name.as_str(), c.difference()))
        .collect();
    assert_eq!(broken, [("origin_repeats_within_retries", 100)]);
    assert!(!l.balanced);
}
