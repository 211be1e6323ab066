//! `--ws` against servers that do not keep up: one that stops reading after
//! the handshake, one that echoes whole messages too big for the socket
//! buffers (it cannot read while it writes an echo), and one that answers no
//! message and closes long after the message timeout. The run ends in time
//! and loadgen's counts equal what the servers (written here) recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use reloadbench_loadgen::{LoadConfig, WsOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{scaled, wait};

/// How long loadgen waits for the server's answer to its close, and for the
/// end of the stream after it (`ws::client::CLOSE_WAIT`, twice).
const CLOSE_WAITS: Duration = Duration::from_secs(2);

/// What a test server did, each counted once.
#[derive(Debug, Default)]
struct Ledger {
    /// Handshakes completed.
    accepted: AtomicU64,
    /// Whole data messages read.
    received: AtomicU64,
    /// Echoes written whole.
    echoed: AtomicU64,
    /// Close frames 1001 written.
    closed_1001: AtomicU64,
    /// Close frames read from the client.
    client_closed: AtomicU64,
}

impl Ledger {
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::SeqCst)
    }
}

fn ws_config(url: &str, clients: u64, run: Duration, options: WsOptions) -> LoadConfig {
    let mut cfg = LoadConfig::new(&url.replace("ws://", "http://")).unwrap();
    cfg.concurrency = clients;
    cfg.requests = None;
    cfg.duration = Some(run);
    cfg.keep_alive = true;
    cfg.timeout = scaled(Duration::from_secs(20));
    cfg.ws = Some(options);
    cfg
}

/// Runs `cfg` and returns its report and how long it took; fails when the
/// run is not over `bound` after its time limit.
async fn run_bounded(
    cfg: LoadConfig,
    bound: Duration,
) -> (reloadbench_model::load::LoadReport, Duration) {
    let limit = cfg.duration.unwrap() + bound;
    let started = Instant::now();
    let run = reloadbench_loadgen::start(cfg).unwrap();
    let r = tokio::time::timeout(limit, run.finish())
        .await
        .unwrap_or_else(|_| panic!("the run is not over {bound:?} after its time limit"))
        .unwrap();
    (r, started.elapsed())
}

/// A server that completes the handshake and then reads nothing until
/// `drain` is set; then it reads what the client wrote and counts the whole
/// messages (`received`).
async fn noread_server(drain: watch::Receiver<bool>) -> (String, Arc<Ledger>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let ledger = Arc::new(Ledger::default());
    let ledger2 = ledger.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (ledger, mut drain) = (ledger2.clone(), drain.clone());
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                ledger.accepted.fetch_add(1, Ordering::SeqCst);
                let _ = drain.wait_for(|d| *d).await;
                // The client dropped the connection mid-message: the whole
                // messages, then an error.
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_binary() {
                        ledger.received.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (url, ledger)
}

/// A server that stops reading after the handshake: the clients' writes
/// stall once the socket buffers are full. The run still ends at its time
/// limit: every message is late (none can be echoed), each connection is
/// open at the end, and the one message each client was still writing is
/// the only one the server never got whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_ws_server_that_stops_reading_does_not_hold_the_run_past_its_end() {
    let (drain_tx, drain_rx) = watch::channel(false);
    let (url, ledger) = noread_server(drain_rx).await;
    let clients = 2;
    let run = scaled(Duration::from_secs(1));
    let options = WsOptions {
        message_interval: Duration::from_millis(10),
        message_bytes: 1 << 20,
        message_timeout: Duration::from_millis(500),
        reconnect_delay: Duration::ZERO,
    };
    let cfg = ws_config(&url, clients, run, options.clone());
    let bound = options.message_timeout + CLOSE_WAITS + scaled(Duration::from_secs(2));
    let (r, took) = run_bounded(cfg, bound).await;
    let ws = r.ws.clone().unwrap();
    assert!(took < run + bound, "{took:?}");
    drain_tx.send(true).unwrap();
    // The server reads what was written (each client's socket ends
    // mid-message), then its connections end.
    let until = Instant::now() + wait();
    while Ledger::get(&ledger.received) + clients < ws.sent {
        assert!(Instant::now() < until, "{ws:?} {ledger:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ws.opened, Ledger::get(&ledger.accepted), "{ws:?}");
    assert_eq!((ws.opened, ws.open_at_end), (clients, clients), "{ws:?}");
    assert_eq!((ws.closed_cleanly, ws.cut, ws.failed), (0, 0, 0), "{ws:?}");
    assert_eq!((ws.echoed, ws.lost, ws.late), (0, 0, ws.sent), "{ws:?}");
    // Every message sent was received whole, but the one each client was
    // writing when the run ended.
    assert_eq!(Ledger::get(&ledger.received), ws.sent - clients, "{ws:?}");
}

/// An echo server that reads a whole message, then writes its echo whole
/// (it reads nothing while it writes).
async fn whole_echo_server() -> (String, Arc<Ledger>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let ledger = Arc::new(Ledger::default());
    let ledger2 = ledger.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let ledger = ledger2.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                ledger.accepted.fetch_add(1, Ordering::SeqCst);
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Binary(_) => {}
                        Message::Close(_) => {
                            ledger.client_closed.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                        _ => continue,
                    }
                    ledger.received.fetch_add(1, Ordering::SeqCst);
                    if ws.send(msg).await.is_err() {
                        return;
                    }
                    ledger.echoed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (url, ledger)
}

/// Messages bigger than the socket buffers to a server that echoes whole
/// messages: while the server writes one echo, the client writes the next
/// message, which the server reads only after its echo is written. The
/// client reads while it writes, so neither waits for the other for ever:
/// every message comes back, and the run ends in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_ws_whole_message_echo_of_big_messages_does_not_deadlock() {
    let (url, ledger) = whole_echo_server().await;
    let run = scaled(Duration::from_millis(1500));
    let options = WsOptions {
        message_interval: Duration::from_millis(10),
        message_bytes: 8 << 20,
        message_timeout: scaled(Duration::from_secs(10)),
        reconnect_delay: Duration::ZERO,
    };
    let cfg = ws_config(&url, 1, run, options.clone());
    let bound = options.message_timeout + CLOSE_WAITS + scaled(Duration::from_secs(2));
    let (r, took) = run_bounded(cfg, bound).await;
    let ws = r.ws.clone().unwrap();
    assert!(took < run + bound, "{took:?}");
    assert_eq!(ws.opened, Ledger::get(&ledger.accepted), "{ws:?}");
    assert_eq!((ws.opened, ws.open_at_end), (1, 1), "{ws:?}");
    assert_eq!(ws.open_at_end, Ledger::get(&ledger.client_closed));
    // More than one message: the second was written while the first echo
    // was on its way.
    assert!(ws.sent >= 2, "{ws:?}");
    assert_eq!(ws.sent, Ledger::get(&ledger.received), "{ws:?} {ledger:?}");
    assert_eq!(ws.echoed, Ledger::get(&ledger.echoed), "{ws:?} {ledger:?}");
    assert_eq!((ws.echoed, ws.lost, ws.late), (ws.sent, 0, 0), "{ws:?}");
}

/// A server that reads each connection's messages, echoes none, and closes
/// it with 1001 `hold` after its handshake; it records the messages it read.
async fn silent_close_server(hold: Duration) -> (String, Arc<Ledger>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let ledger = Arc::new(Ledger::default());
    let ledger2 = ledger.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let ledger = ledger2.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                ledger.accepted.fetch_add(1, Ordering::SeqCst);
                let close_at = tokio::time::sleep(hold);
                tokio::pin!(close_at);
                loop {
                    tokio::select! {
                        () = &mut close_at => {
                            let bye = CloseFrame {
                                code: CloseCode::Away,
                                reason: "reload".into(),
                            };
                            if ws.close(Some(bye)).await.is_ok() {
                                ledger.closed_1001.fetch_add(1, Ordering::SeqCst);
                            }
                            while let Some(Ok(_)) = ws.next().await {}
                            return;
                        }
                        msg = ws.next() => match msg {
                            Some(Ok(Message::Binary(_))) => {
                                ledger.received.fetch_add(1, Ordering::SeqCst);
                            }
                            Some(Ok(Message::Close(_))) => {
                                ledger.client_closed.fetch_add(1, Ordering::SeqCst);
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => return,
                        },
                    }
                }
            });
        }
    });
    (url, ledger)
}

/// The server closes each connection four message timeouts after its one
/// message (the interval is longer than the run): that message's timeout
/// had passed when its connection ended, so it is late, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_message_whose_timeout_passed_before_the_close_is_late_not_lost() {
    let hold = scaled(Duration::from_millis(400));
    let (url, ledger) = silent_close_server(hold).await;
    let options = WsOptions {
        message_interval: Duration::from_secs(30),
        message_bytes: 32,
        message_timeout: Duration::from_millis(100),
        reconnect_delay: Duration::ZERO,
    };
    // One connection closed by the server (at `hold`), the next one open at
    // the end (it would be closed at twice `hold`).
    let run = hold + hold / 2;
    let cfg = ws_config(&url, 1, run, options.clone());
    let (r, _) = run_bounded(cfg, options.message_timeout + CLOSE_WAITS + wait()).await;
    let ws = r.ws.clone().unwrap();
    assert_eq!(ws.opened, Ledger::get(&ledger.accepted), "{ws:?}");
    assert_eq!((ws.opened, ws.closed_with(1001), ws.open_at_end), (2, 1, 1));
    assert_eq!(ws.closed_cleanly, Ledger::get(&ledger.closed_1001));
    assert_eq!(ws.open_at_end, Ledger::get(&ledger.client_closed));
    assert_eq!(ws.sent, Ledger::get(&ledger.received), "{ws:?} {ledger:?}");
    assert_eq!(ws.sent, 2, "{ws:?}");
    assert_eq!((ws.echoed, ws.lost, ws.late), (0, 0, ws.sent), "{ws:?}");
}
