//! HTTP/2 across reloads as loadgen counts it: two `--h2 --streams 10`
//! loads at once on the same proxy, one retrying refused streams
//! (`--retry-refused`) and one not, through 50 fd-pass or 20 master-worker
//! reloads. loadgen's own classes are checked: with retries nothing fails
//! (no stream refused for good), without them no stream is lost in flight
//! or reset (a refused stream, which the server never processed, is the only
//! failure allowed). The answers both loads got are exactly the requests the
//! origin served: a refused stream never reached it, and no request it
//! answered was lost on the way back.

use std::net::SocketAddr;

use nix::sys::signal::Signal;
use reloadbench_loadgen::{LoadConfig, LoadRun};
use reloadbench_model::event::EventKind;
use reloadbench_model::load::LoadReport;
use reloadbench_model::outcome::FailureClass;

use crate::h2::h2_config;
use crate::load::{finish, progress_by, summary};
use crate::master::start_master;
use crate::support::*;

/// Starts `--h2 -c 2 --streams 10` on `addr`, bounded by a duration cap.
fn h2_load(addr: SocketAddr, retry_refused: bool) -> LoadRun {
    let mut cfg = LoadConfig::new(&format!("http://{addr}/")).unwrap();
    cfg.h2 = true;
    cfg.concurrency = 2;
    cfg.streams = 10;
    cfg.retry_refused = retry_refused;
    cfg.requests = None;
    cfg.duration = Some(scaled(90));
    cfg.timeout = scaled(10);
    cfg.threads = 1;
    reloadbench_loadgen::start(cfg).unwrap()
}

/// The two loads, the one with retries first.
struct Loads {
    retrying: LoadRun,
    counting: LoadRun,
}

impl Loads {
    async fn start(addr: SocketAddr) -> Loads {
        let l = Loads {
            retrying: h2_load(addr, true),
            counting: h2_load(addr, false),
        };
        l.progress_by(200).await;
        l
    }

    async fn progress_by(&self, n: u64) {
        progress_by(&self.retrying, n).await;
        progress_by(&self.counting, n).await;
    }

    async fn finish(self) -> (LoadReport, LoadReport) {
        (finish(self.retrying).await, finish(self.counting).await)
    }
}

fn count(r: &LoadReport, class: FailureClass) -> u64 {
    r.classes
        .iter()
        .filter(|c| c.class == class)
        .map(|c| c.count)
        .sum()
}

/// The checks of both loads against each other and the origin's count.
fn check(mode: &str, retrying: &LoadReport, counting: &LoadReport, origin_requests: u64) {
    for (r, name) in [(retrying, "--retry-refused"), (counting, "no retries")] {
        let h = r.h2.as_ref().expect("an HTTP/2 report");
        eprintln!(
            "h2 {mode} ({name}): {}; goaway={} refused={} reset={} lost={} retries={} reconnects={}",
            summary(r),
            h.goaway,
            h.refused,
            h.reset,
            h.lost,
            r.retries,
            h.reconnects
        );
        assert!(h.goaway > 0, "{name}: the reloads drained with GOAWAYs");
        assert_eq!(h.goaway_error, 0, "{name}");
        assert_eq!((h.lost, h.reset, h.protocol_errors), (0, 0, 0), "{name}");
        assert!(
            h.reconnects > 0,
            "{name}: the clients moved to the new generations"
        );
    }
    assert_eq!(retrying.failed, 0, "{}", summary(retrying));
    let h = retrying.h2.as_ref().unwrap();
    assert_eq!(
        retrying.retries, h.refused,
        "every refused stream sent once more"
    );
    // Without retries, a refused stream is the only failure.
    let refused = count(counting, FailureClass::GoawayRefused);
    assert_eq!(counting.failed, refused, "{}", summary(counting));
    assert_eq!(refused, counting.h2.as_ref().unwrap().refused);
    assert_eq!(
        retrying.ok + counting.ok,
        origin_requests,
        "every answer the clients got is one the origin served, and nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_h2_loadgen_fd_pass_50_reloads_lose_no_stream() {
    let o = origin(1024, None).await;
    let s = Scratch::new();
    let cfg = h2_config(&s, o.addr());
    let (mut current, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let loads = Loads::start(addr).await;
    for generation in 2..=51 {
        fd_pass_reload(&s, &cfg, &mut current, generation, addr).await;
        loads.progress_by(50).await;
    }
    let (retrying, counting) = loads.finish().await;
    current.signal(Signal::SIGTERM).unwrap();
    assert!(current.wait_exit(scaled(20)).await.unwrap().success());
    check("fd-pass", &retrying, &counting, o.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_h2_loadgen_master_worker_20_reloads_lose_no_stream() {
    let o = origin(1024, None).await;
    let s = Scratch::new();
    let cfg = h2_config(&s, o.addr());
    let (mut m, mut worker, addr) = start_master(&s, &cfg, &[]).await;
    let loads = Loads::start(addr).await;
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
        loads.progress_by(50).await;
    }
    let (retrying, counting) = loads.finish().await;
    assert!(m.stop().await.unwrap().success());
    assert!(!alive(worker));
    check("master-worker", &retrying, &counting, o.requests());
}
