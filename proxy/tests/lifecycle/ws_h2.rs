//! WebSockets over HTTP/2 (RFC 8441) through refproxy across fd-pass reloads, as
//! `loadgen --ws --h2` counts them: each client on its own extended CONNECT stream to
//! the test's HTTP/1.1 echo origin. With `drain.tunnels = "close"` every WebSocket of a
//! draining generation ends with the proxy's 1001 on its stream, none is cut, and every
//! client reopens on the new generation; loadgen's opens equal the upgrades the origin
//! answered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reloadbench_loadgen::{LoadConfig, LoadRun, WsOptions};

use crate::support::*;
use crate::ws::EchoOrigin;

/// WebSocket clients of the load.
const CLIENTS: u64 = 20;
/// fd-pass reloads.
const RELOADS: u64 = 5;

/// `conf` with `http2 = true`, written to the scratch directory.
fn h2_config(s: &Scratch, conf: &Conf) -> std::path::PathBuf {
    let text = conf.toml(&s.control()).replacen(
        "generation_header = true\n",
        "generation_header = true\nhttp2 = true\n",
        1,
    );
    let path = s.path("ws-h2.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ws_h2_load(addr: SocketAddr) -> LoadRun {
    let mut cfg = LoadConfig::new(&format!("http://{addr}/ws")).unwrap();
    cfg.h2 = true;
    cfg.concurrency = CLIENTS;
    cfg.requests = None;
    cfg.duration = Some(scaled(90));
    cfg.timeout = scaled(10);
    cfg.keep_alive = true;
    cfg.threads = 1;
    cfg.ws = Some(WsOptions {
        message_interval: Duration::from_millis(50),
        message_bytes: 64,
        message_timeout: scaled(5),
        reconnect_delay: Duration::ZERO,
    });
    reloadbench_loadgen::start(cfg).unwrap()
}

/// Waits until `n` WebSockets were opened in all.
async fn opened_by(run: &LoadRun, n: u64) {
    let until = Instant::now() + scaled(30);
    while run.ws_progress().opened < n {
        assert!(
            Instant::now() < until,
            "the clients did not reopen: {:?}",
            run.ws_progress()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_ws_h2_fd_pass_reloads_with_close_end_every_websocket_with_1001() {
    let o = EchoOrigin::start().await;
    let s = Scratch::new();
    let mut conf = Conf::new(o.addr);
    conf.tunnels = Some("close");
    let cfg = h2_config(&s, &conf);
    let (mut current, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let run = ws_h2_load(addr);
    opened_by(&run, CLIENTS).await;
    for generation in 2..=RELOADS + 1 {
        fd_pass_reload(&s, &cfg, &mut current, generation, addr).await;
        // Every client reopened on the new generation.
        opened_by(&run, CLIENTS * generation).await;
    }
    run.stop();
    let r = tokio::time::timeout(scaled(30), run.finish())
        .await
        .expect("load did not finish")
        .unwrap();
    current.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(current.wait_exit(scaled(20)).await.unwrap().success());
    let ws = r.ws.expect("a ws report");
    eprintln!(
        "ws over h2 across {RELOADS} fd-pass reloads: {}; {}",
        ws.connections_line(),
        ws.messages_line()
    );
    assert_eq!(ws.failed, 0, "{ws:?}");
    assert_eq!(ws.cut, 0, "{ws:?}");
    assert_eq!(ws.closed_cleanly, CLIENTS * RELOADS, "{ws:?}");
    assert_eq!(ws.closed_with(1001), ws.closed_cleanly, "{ws:?}");
    assert_eq!(ws.opened, CLIENTS * (RELOADS + 1), "{ws:?}");
    assert_eq!(ws.open_at_end, CLIENTS, "{ws:?}");
    assert_eq!(
        ws.opened,
        o.counts.upgraded.load(std::sync::atomic::Ordering::SeqCst),
        "every WebSocket loadgen opened is an upgrade the origin answered"
    );
    assert_eq!(ws.sent, ws.echoed + ws.lost + ws.late, "{ws:?}");
    assert_eq!(ws.late, 0, "{ws:?}");
}
