//! `--ws` and `--stream` against servers written here that script what they
//! do and record it: a WebSocket server that closes some connections with
//! 1001, cuts others and drops some echoes; an HTTP server that cuts its
//! streamed responses after a number of body bytes. loadgen's counts must
//! equal the servers' records.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use reloadbench_loadgen::{LoadConfig, WsOptions};
use reloadbench_model::outcome::{AbView, FailureClass};
use reloadbench_model::ws::WsBuckets;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{run_load, scaled, wait};

/// What the scripted WebSocket server did, each counted once.
#[derive(Debug, Default)]
struct WsRecord {
    /// Handshakes completed.
    accepted: AtomicU64,
    /// Data messages read.
    received: AtomicU64,
    /// Echoes written.
    echoed: AtomicU64,
    /// Connections ended with a close frame 1001.
    closed_1001: AtomicU64,
    /// Connections dropped without a close frame.
    cut: AtomicU64,
    /// Messages read and never echoed on a connection the server then ended.
    unanswered: AtomicU64,
    /// Echoes left out on purpose (the connection stayed open).
    dropped: AtomicU64,
    /// Connections the client closed (close frame from the client).
    client_closed: AtomicU64,
}

/// The script: by accept order, the first `close` connections are closed
/// with 1001 and the next `cut` ones cut, each on its second message (not
/// echoed); later connections echo everything except the first message of
/// the first `drop` of them.
#[derive(Debug, Clone, Copy)]
struct Script {
    close: u64,
    cut: u64,
    drop: u64,
}

async fn ws_server(script: Script) -> (String, Arc<WsRecord>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let rec = Arc::new(WsRecord::default());
    let rec2 = rec.clone();
    tokio::spawn(async move {
        let order = Arc::new(AtomicU64::new(0));
        let drops = Arc::new(AtomicU64::new(0));
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (rec, order, drops) = (rec2.clone(), order.clone(), drops.clone());
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let n = order.fetch_add(1, Ordering::SeqCst);
                rec.accepted.fetch_add(1, Ordering::SeqCst);
                let ends = n < script.close + script.cut;
                let mut drop_first = false;
                if !ends {
                    drop_first = drops
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                            (d < script.drop).then_some(d + 1)
                        })
                        .is_ok();
                }
                let mut seen = 0u64;
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Binary(_) | Message::Text(_) => {}
                        Message::Close(_) => {
                            rec.client_closed.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                        _ => continue,
                    }
                    seen += 1;
                    rec.received.fetch_add(1, Ordering::SeqCst);
                    if ends && seen == 2 {
                        rec.unanswered.fetch_add(1, Ordering::SeqCst);
                        if n < script.close {
                            let bye = CloseFrame {
                                code: CloseCode::Away,
                                reason: "reload".into(),
                            };
                            rec.closed_1001.fetch_add(1, Ordering::SeqCst);
                            let _ = ws.close(Some(bye)).await;
                            while let Some(Ok(_)) = ws.next().await {}
                        } else {
                            rec.cut.fetch_add(1, Ordering::SeqCst);
                            drop(ws);
                        }
                        return;
                    }
                    if drop_first && seen == 1 {
                        rec.dropped.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    if ws.send(msg).await.is_err() {
                        return;
                    }
                    rec.echoed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (url, rec)
}

fn ws_config(url: &str, clients: u64, seconds: f64) -> LoadConfig {
    let url = url.replace("ws://", "http://");
    let mut cfg = LoadConfig::new(&url).unwrap();
    cfg.concurrency = clients;
    cfg.requests = None;
    cfg.duration = Some(scaled(Duration::from_secs_f64(seconds)));
    cfg.keep_alive = true;
    cfg.timeout = scaled(Duration::from_secs(20));
    cfg.ws = Some(WsOptions {
        message_interval: Duration::from_millis(200),
        message_bytes: 32,
        message_timeout: scaled(Duration::from_secs(2)),
        reconnect_delay: Duration::ZERO,
    });
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_counts_equal_what_the_server_did() {
    let script = Script {
        close: 2,
        cut: 2,
        drop: 3,
    };
    let (url, rec) = ws_server(script).await;
    let r = run_load(ws_config(&url, 4, 2.0)).await;
    let ws = r.ws.clone().expect("a --ws run has a ws report");
    let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
    // Per connection.
    assert_eq!(ws.opened, get(&rec.accepted), "{ws:?}");
    assert_eq!(ws.opened, 4 + script.close + script.cut);
    assert_eq!(ws.failed, 0);
    assert_eq!(ws.closed_cleanly, get(&rec.closed_1001));
    assert_eq!(ws.closed_with(1001), script.close);
    assert_eq!(ws.cut, get(&rec.cut));
    assert_eq!(ws.cut, script.cut);
    assert_eq!(ws.open_at_end, 4);
    assert_eq!(ws.open_at_end, get(&rec.client_closed));
    assert_eq!(ws.opened, ws.closed_cleanly + ws.cut + ws.open_at_end);
    // Per message.
    assert_eq!(ws.sent, get(&rec.received));
    assert_eq!(ws.echoed, get(&rec.echoed));
    assert_eq!(ws.lost, get(&rec.unanswered));
    assert_eq!(ws.late, get(&rec.dropped));
    assert_eq!(ws.late, script.drop);
    assert_eq!(ws.sent, ws.echoed + ws.lost + ws.late);
    // Every ended connection was reopened.
    assert_eq!(ws.reconnect_time.count, script.close + script.cut);
    // The same counts per bucket.
    let sum = |c: &[(usize, u64)]| c.iter().map(|(_, n)| n).sum::<u64>();
    assert_eq!(sum(&ws.buckets.opened), ws.opened);
    assert_eq!(sum(&ws.buckets.closed_cleanly), ws.closed_cleanly);
    assert_eq!(sum(&ws.buckets.cut), ws.cut);
    assert_eq!(sum(&ws.buckets.sent), ws.sent);
    assert_eq!(sum(&ws.buckets.echoed), ws.echoed);
    assert_eq!(sum(&ws.buckets.lost), ws.lost);
    assert_eq!(sum(&ws.buckets.late), ws.late);
    assert_eq!(sum(&ws.buckets.failed), ws.failed);
    // `opened = closed_cleanly + cut + open_at_end` over the bucket sums, and
    // the open gauge is the running count, ending at the connections open at
    // the end, in the bucket the run ended in.
    let b = &ws.buckets;
    assert_eq!(
        sum(&b.opened),
        sum(&b.closed_cleanly) + sum(&b.cut) + ws.open_at_end
    );
    let mut now_open = 0;
    let last = b.open.last().expect("an open gauge").0;
    for i in 0..=last {
        now_open += WsBuckets::at(&b.opened, i);
        now_open -= WsBuckets::at(&b.closed_cleanly, i) + WsBuckets::at(&b.cut, i);
        assert_eq!(WsBuckets::at(&b.open, i), now_open, "bucket {i}: {b:?}");
    }
    assert_eq!(now_open, ws.open_at_end);
    let duration_ns = scaled(Duration::from_secs(2)).as_nanos() as u64;
    assert!(last as u64 >= duration_ns / b.width_ns, "{last}: {b:?}");
    // Reconnect time per bucket: each reconnect in the bucket of its reopen.
    assert_eq!(sum(&b.reconnects), ws.reconnect_time.count);
    assert_eq!(sum(&b.reconnects), get(&rec.accepted) - 4);
    let at = |c: &[(usize, u64)]| c.iter().map(|(i, _)| *i).collect::<Vec<_>>();
    assert_eq!(at(&b.reconnect_p50_us), at(&b.reconnects));
    assert_eq!(at(&b.reconnect_p99_us), at(&b.reconnects));
    assert_eq!(at(&b.reconnect_max_us), at(&b.reconnects));
    for &(i, n) in &b.reconnects {
        assert!(WsBuckets::at(&b.opened, i) >= n, "bucket {i}: {b:?}");
        let (p50, p99, max) = (
            WsBuckets::at(&b.reconnect_p50_us, i),
            WsBuckets::at(&b.reconnect_p99_us, i),
            WsBuckets::at(&b.reconnect_max_us, i),
        );
        assert!(p50 <= p99 && p99 <= max, "bucket {i}: {b:?}");
    }
    let max = b.reconnect_max_us.iter().map(|(_, us)| *us).max();
    assert_eq!(max, Some(ws.reconnect_time.max_us));
    // The handshakes in ab's counters: none failed; the cuts and lost
    // messages are not ab failures.
    assert_eq!(ws.ab, AbView::default());
    // No request was made.
    assert_eq!((r.planned, r.ok, r.failed), (0, 0, 0));
    let text = reloadbench_loadgen::output::text(&r);
    assert!(
        text.contains(
            "WebSocket connections: opened 8, failed 0, closed cleanly 2 (1001: 2), cut 2, \
             open at end 4"
        ),
        "{text}"
    );
    assert!(text.contains(&ws.messages_line()), "{text}");
    assert!(
        text.contains(
            "Complete requests:      8 (opening handshakes: 8 answered 101)\n\
             Failed requests:        0\n   \
             (Connect: 0, Receive: 0, Length: 0, Exceptions: 0)\n\
             Write errors:           0\n\
             Non-2xx responses:      0\n"
        ),
        "{text}"
    );
    assert!(text.contains("Reconnect time (ms)"), "{text}");
    let json =
        reloadbench_model::json_layout::to_vec(&r, reloadbench_model::json_layout::Layout::LOAD)
            .unwrap();
    let back: reloadbench_model::load::LoadReport = serde_json::from_slice(&json).unwrap();
    assert_eq!(back.ws, r.ws);
}

#[tokio::test]
async fn ws_attempts_on_a_closed_port_fail_by_class_and_open_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    drop(listener);
    let mut cfg = ws_config(&url, 2, 0.3);
    cfg.ws.as_mut().unwrap().reconnect_delay = Duration::from_millis(10);
    let r = run_load(cfg).await;
    let ws = r.ws.clone().unwrap();
    assert_eq!(ws.opened, 0);
    assert!(ws.failed > 0);
    assert_eq!(ws.failed_classes.len(), 1, "{ws:?}");
    assert_eq!(ws.failed_classes[0].class, FailureClass::ConnectRefused);
    assert_eq!(ws.failed_classes[0].count, ws.failed);
    assert_eq!(ws.sent, 0);
    // ab's view: every refused attempt is a failed request under Connect.
    assert_eq!(
        ws.ab,
        AbView {
            connect: ws.failed,
            ..AbView::default()
        }
    );
    let text = reloadbench_loadgen::output::text(&r);
    let line = format!(
        "Failed requests:        {}\n   (Connect: {}, ",
        ws.failed, ws.failed
    );
    assert!(text.contains(&line), "{text}");
}

#[tokio::test]
async fn ws_upgrade_answered_with_503_fails_as_http_5xx() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicU64::new(0));
    let answered2 = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let answered = answered2.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\
                             connection: close\r\n\r\n";
                if tcp.write_all(resp).await.is_ok() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    let mut cfg = ws_config(&url, 1, 0.3);
    cfg.ws.as_mut().unwrap().reconnect_delay = Duration::from_millis(20);
    let r = run_load(cfg).await;
    let ws = r.ws.clone().unwrap();
    assert_eq!(ws.opened, 0);
    assert_eq!(ws.failed_classes.len(), 1, "{ws:?}");
    assert_eq!(ws.failed_classes[0].class, FailureClass::Http5xx);
    assert_eq!(ws.failed, answered.load(Ordering::SeqCst));
    // ab's view: each 503 is a non-2xx response (the handshake wants 101).
    assert_eq!(
        ws.ab,
        AbView {
            non_2xx: ws.failed,
            ..AbView::default()
        }
    );
    let text = reloadbench_loadgen::output::text(&r);
    let line = format!("Non-2xx responses:      {}\n", ws.failed);
    assert!(text.contains(&line), "{text}");
}

/// An HTTP server whose responses stream a chunked body and, on every
/// `cut_every`-th connection (from the first), are cut after `cut_after`
/// body bytes; it records the bytes it wrote on the cut ones.
async fn stream_server(cut_every: u64, cut_after: usize) -> (String, Arc<[AtomicU64; 3]>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stream", listener.local_addr().unwrap());
    // complete, cut, bytes written on the cut ones
    let rec: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let rec2 = rec.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((mut tcp, _)) = listener.accept().await {
            let cut = n.is_multiple_of(cut_every);
            n += 1;
            let rec = rec2.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head =
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                let mut written = head.len() as u64;
                if tcp.write_all(head).await.is_err() {
                    return;
                }
                // Ten chunks of 100 bytes, 5 ms apart.
                let chunk = format!("64\r\n{}\r\n", "x".repeat(100));
                let mut body = 0usize;
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if cut && body + 100 > cut_after {
                        // The part of the chunk before the cut.
                        let part = &chunk.as_bytes()[..4 + (cut_after - body)];
                        if tcp.write_all(part).await.is_ok() {
                            written += part.len() as u64;
                        }
                        let _ = tcp.shutdown().await;
                        rec[1].fetch_add(1, Ordering::SeqCst);
                        rec[2].fetch_add(written, Ordering::SeqCst);
                        return;
                    }
                    if tcp.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    written += chunk.len() as u64;
                    body += 100;
                }
                if tcp.write_all(b"0\r\n\r\n").await.is_ok() {
                    rec[0].fetch_add(1, Ordering::SeqCst);
                }
                let _ = tcp.shutdown().await;
            });
        }
    });
    (url, rec)
}

#[tokio::test]
async fn stream_cut_mid_body_is_truncated_with_the_bytes_received() {
    let (url, rec) = stream_server(3, 250).await;
    let mut cfg = crate::support::config(&url, 30, 2);
    cfg.stream = true;
    let r = tokio::time::timeout(wait(), run_load(cfg)).await.unwrap();
    let s = r
        .stream
        .clone()
        .expect("a --stream run has a stream report");
    let get = |i: usize| rec[i].load(Ordering::SeqCst);
    assert_eq!(s.complete, get(0), "{s:?}");
    assert_eq!(s.truncated, get(1));
    assert_eq!(s.truncated, 10, "every third of 30");
    assert_eq!(s.truncated_bytes, get(2));
    assert_eq!(r.ok, s.complete);
    assert_eq!(
        crate::support::class(&r, FailureClass::Truncated),
        s.truncated
    );
    assert!(reloadbench_loadgen::output::text(&r).contains(&s.line()));
}

/// Against the built-in origin: its `/ws` echoes every message; when it stops
/// mid-run, every connection is closed cleanly with 1001 and the clients'
/// attempts to reconnect are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_ws_against_the_origin_then_its_shutdown_closes_every_connection_with_1001() {
    let origin = reloadbench_origin::Origin::bind(reloadbench_origin::OriginConfig::default())
        .await
        .unwrap();
    let url = format!("ws://{}/ws", origin.addr());
    let clients = 200;
    let mut cfg = ws_config(&url, clients, 30.0);
    cfg.ws.as_mut().unwrap().message_interval = Duration::from_millis(50);
    cfg.ws.as_mut().unwrap().reconnect_delay = Duration::from_millis(20);
    let run = reloadbench_loadgen::start(cfg).unwrap();
    // Every client opened.
    wait_for(&run, |p| p.opened >= clients).await;
    let ledger = tokio::time::timeout(wait(), origin.ledger_after_shutdown())
        .await
        .unwrap();
    // Every connection ended, and a client's attempt to reconnect failed.
    wait_for(&run, |p| p.ended >= clients && p.failed > 0).await;
    run.stop();
    let r = tokio::time::timeout(wait(), run.finish())
        .await
        .unwrap()
        .unwrap();
    let ws = r.ws.unwrap();
    assert_eq!(ws.opened, clients, "{ws:?}");
    assert_eq!(ws.closed_cleanly, clients);
    assert_eq!(ws.closed_with(1001), clients);
    assert_eq!((ws.cut, ws.open_at_end), (0, 0));
    assert!(ws.failed > 0);
    assert!(
        ws.failed_classes
            .iter()
            .all(|c| c.class == FailureClass::ConnectRefused),
        "{ws:?}"
    );
    // Messages in flight when the 1001 came are lost with their connection
    // (the origin was stopped as soon as every client had opened).
    assert_eq!(ws.late, 0);
    assert_eq!(ws.sent, ws.echoed + ws.lost + ws.late);
    // The origin's ledger: it closed every connection with 1001, and every
    // echo it wrote came back before its close frame.
    let o = ledger.ws.expect("the origin counts /ws");
    assert_eq!(
        (o.opened, o.closed_by_server, o.cut),
        (clients, clients, 0),
        "{o:?}"
    );
    assert_eq!(o.server_close_codes.len(), 1);
    assert_eq!(o.server_close_codes[0].code, 1001);
    assert_eq!(o.messages_echoed, ws.echoed);
}

/// Against the built-in origin, its ledger and loadgen count the same: every
/// connection loadgen opened the origin opened, the ones open at the end
/// are the ones the client closed (1000 at the run's end), every message
/// sent was received, every echo written came back in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_counts_equal_the_origins_ledger() {
    let origin = reloadbench_origin::Origin::bind(reloadbench_origin::OriginConfig::default())
        .await
        .unwrap();
    let url = format!("ws://{}/ws", origin.addr());
    let mut cfg = ws_config(&url, 5, 0.6);
    cfg.ws.as_mut().unwrap().message_interval = Duration::from_millis(50);
    let r = run_load(cfg).await;
    let ws = r.ws.clone().unwrap();
    let ledger = tokio::time::timeout(wait(), origin.ledger_after_shutdown())
        .await
        .unwrap();
    let o = ledger.ws.expect("the origin counts /ws");
    assert_eq!((ws.opened, ws.open_at_end, ws.failed), (5, 5, 0), "{ws:?}");
    assert_eq!(o.opened, ws.opened, "{o:?}");
    assert_eq!(o.closed_by_client, ws.open_at_end);
    assert_eq!((o.closed_by_server, o.cut, o.open), (0, 0, 0));
    assert_eq!(o.messages_received, ws.sent);
    assert_eq!(o.messages_echoed, ws.echoed + ws.late);
    assert_eq!((ws.lost, ws.late), (0, 0));
    assert!(ws.sent >= 5 * 5, "{ws:?}");
    // The open gauge holds the five through the bucket the run ended in,
    // though nothing else happened there (no message is sent after the end).
    let b = &ws.buckets;
    let end = (scaled(Duration::from_secs_f64(0.6)).as_nanos() as u64 / b.width_ns) as usize;
    let last = b.open.last().expect("an open gauge").0;
    assert!(last >= end, "{end}: {b:?}");
    assert_eq!(b.open.len(), last + 1, "{b:?}");
    assert!(b.open.iter().all(|&(_, n)| n == 5), "{b:?}");
}

/// `--stream` against the origin with a timeout shorter than the stream:
/// loadgen's timed-out responses are the origin's cut ones, its complete
/// ones the origin's complete ones.
#[tokio::test]
async fn stream_counts_equal_the_origins_ledger() {
    let origin = reloadbench_origin::Origin::bind(reloadbench_origin::OriginConfig::default())
        .await
        .unwrap();
    let long = format!("http://{}/stream?seconds=30&interval=10", origin.addr());
    let mut cfg = crate::support::config(&long, 3, 1);
    cfg.stream = true;
    cfg.timeout = Duration::from_millis(100);
    let r = run_load(cfg).await;
    let cut = crate::support::class(&r, FailureClass::Timeout);
    assert_eq!((r.ok, cut), (0, 3), "{:?}", r.classes);
    let short = format!("http://{}/stream?seconds=0.05&interval=10", origin.addr());
    let mut cfg = crate::support::config(&short, 4, 2);
    cfg.stream = true;
    let r = run_load(cfg).await;
    assert_eq!(r.ok, 4, "{:?}", r.classes);
    let ledger = tokio::time::timeout(wait(), origin.ledger_after_shutdown())
        .await
        .unwrap();
    let s = ledger.streams.expect("the origin counts /stream");
    assert_eq!(
        (s.started, s.complete, s.cut, s.open),
        (3 + 4, 4, 3, 0),
        "{s:?}"
    );
}

/// Waits (polling, bounded by [`wait`]) until the run's WebSocket progress
/// satisfies `done`.
async fn wait_for(
    run: &reloadbench_loadgen::LoadRun,
    done: impl Fn(reloadbench_loadgen::WsProgress) -> bool,
) {
    let until = tokio::time::Instant::now() + wait();
    while !done(run.ws_progress()) {
        assert!(
            tokio::time::Instant::now() < until,
            "{:?}",
            run.ws_progress()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `wss://`: the WebSocket runs over loadgen's TLS client; one handshake
/// per connection, and the echoes the TLS server wrote all come back.
#[tokio::test]
async fn wss_runs_over_tls_and_counts_its_handshakes() {
    let pki = crate::tls_support::Pki::new();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.chain.clone(),
            rustls::pki_types::PrivateKeyDer::Pkcs8(pki.key.clone_key()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("wss://{}/ws", listener.local_addr().unwrap());
    // handshakes, echoes
    let rec: Arc<[AtomicU64; 2]> = Arc::new(Default::default());
    let rec2 = rec.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, rec) = (acceptor.clone(), rec2.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                rec[0].fetch_add(1, Ordering::SeqCst);
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                        rec[1].fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let mut cfg = ws_config(&url.replace("wss://", "https://"), 3, 0.5);
    cfg.tls.ca_file = Some(pki.ca_file.clone());
    let r = run_load(cfg).await;
    let ws = r.ws.clone().unwrap();
    let tls = r.tls.clone().expect("a wss run has a TLS report");
    assert_eq!((ws.opened, ws.open_at_end, ws.failed), (3, 3, 0), "{ws:?}");
    assert_eq!(tls.handshakes, rec[0].load(Ordering::SeqCst));
    assert_eq!(tls.full + tls.resumed, 3);
    assert_eq!(ws.echoed, rec[1].load(Ordering::SeqCst));
    assert_eq!(ws.sent, ws.echoed);
}

/// `--stream` against the origin's `/stream`: every response lasts its
/// seconds and is read whole; none is truncated.
#[tokio::test]
async fn stream_against_the_origin_is_complete() {
    let origin = reloadbench_origin::Origin::bind(reloadbench_origin::OriginConfig::default())
        .await
        .unwrap();
    let url = format!("http://{}/stream?seconds=0.2&interval=20", origin.addr());
    let mut cfg = crate::support::config(&url, 4, 2);
    cfg.stream = true;
    let r = run_load(cfg).await;
    let s = r.stream.clone().unwrap();
    assert_eq!(
        (s.complete, s.truncated, s.truncated_bytes),
        (4, 0, 0),
        "{s:?}"
    );
    // 11 chunks of 9 bytes each (0, 20, ..., 200 ms).
    assert_eq!(r.body_bytes, 4 * 11 * 9);
    assert!(r.latency.min_us >= 200_000, "{:?}", r.latency);
    origin.shutdown().await;
}
