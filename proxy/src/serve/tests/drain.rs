//! The drain policy: `Connection: close` on the next response, idle close,
//! the hard deadline, prompt return, listeners never shut down.

use std::time::{Duration, Instant};

use super::*;
use crate::serve::DrainReport;

#[tokio::test]
async fn keep_alive_request_after_drain_start_gets_connection_close() {
    let origin = origin(5000).await;
    let (server, addr) = proxy(vec![origin.addr()], |_| {});
    let server = Arc::new(server);
    let mut c = Client::connect(addr).await;
    assert!(!c.get("/").await.closes());

    server.start_drain();
    server.stop_accepting().await;
    // The serving threads answer on their own: poll the drain once so it takes
    // its count of open connections before the next request can end the
    // connection (a zero timeout polls the future before looking at the clock).
    let drain = server.drain();
    tokio::pin!(drain);
    assert!(timeout(Duration::ZERO, &mut drain).await.is_err());
    let r = c.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 5000);
    assert!(r.closes(), "{:?}", r.headers);
    c.expect_closed().await;

    let report = timeout(limit(), drain).await.unwrap();
    assert_eq!(
        report,
        DrainReport {
            open_at_start: 1,
            forced: 0,
            cut: 0,
            cut_requests: 0,
            idle_closed: 0,
            raced: 0,
        }
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn drain_without_connections_returns_at_once() {
    let (server, _addr) = proxy(vec![dead_addr()], |c| {
        c.drain.deadline = Duration::from_secs(60);
    });
    let start = Instant::now();
    let report = timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(report, DrainReport::default());
    assert!(start.elapsed() < scaled(Duration::from_secs(10)));
}

#[tokio::test]
async fn drain_returns_as_soon_as_the_last_connection_closes() {
    let origin = origin(10).await;
    let (server, addr) = proxy(vec![origin.addr()], |c| {
        c.drain.deadline = Duration::from_secs(120);
        c.drain.idle_close = Duration::from_secs(120);
    });
    let server = Arc::new(server);
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/").await.status, 200);
    server.start_drain();
    let drain = spawn_drain(&server);
    let start = Instant::now();
    drop(c);
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    assert_eq!(report.forced, 0);
    assert_eq!(report.idle_closed, 0);
    assert!(start.elapsed() < scaled(Duration::from_secs(20)));
    origin.shutdown().await;
}

#[tokio::test]
async fn idle_connection_is_closed_at_idle_close() {
    let origin = origin(10).await;
    let (server, addr) = proxy(vec![origin.addr()], |c| {
        c.drain.deadline = Duration::from_secs(120);
        c.drain.idle_close = Duration::from_millis(300);
    });
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/").await.status, 200);
    let start = Instant::now();
    let report = timeout(limit(), server.drain()).await.unwrap();
    let took = start.elapsed();
    assert_eq!(
        report,
        DrainReport {
            open_at_start: 1,
            forced: 0,
            cut: 0,
            cut_requests: 0,
            idle_closed: 1,
            raced: 0,
        }
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    c.expect_closed().await;
    origin.shutdown().await;
}

#[tokio::test]
async fn deadline_force_closes_a_stuck_connection() {
    let stall = stalling_origin().await;
    let (server, addr) = proxy(vec![stall], |c| {
        c.timeouts.request = Duration::from_secs(600);
        c.drain.deadline = Duration::from_millis(500);
        c.drain.idle_close = Duration::from_millis(100);
    });
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    // Wait until the request is in flight: the connection is counted and busy.
    let mut open = server.shared.open.subscribe();
    timeout(limit(), open.wait_for(|n| *n == 1))
        .await
        .unwrap()
        .unwrap();
    let start = Instant::now();
    let report = timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(report.open_at_start, 1);
    assert_eq!(report.forced, 1);
    // Its request was read and got no response: cut with the exchange in progress.
    assert_eq!((report.cut, report.cut_requests), (1, 1));
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(start.elapsed() < scaled(Duration::from_secs(20)));
    c.expect_closed().await;
}

#[tokio::test]
async fn stop_accepting_drops_the_handle_without_shutting_the_socket_down() {
    let origin = origin(10).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Another holder of the same socket, like a process it was handed to.
    let other = listener.try_clone().unwrap();
    let cfg = Arc::new(Config::new(vec![addr], vec![origin.addr()]));
    let server = Server::start(vec![listener], cfg, ID).unwrap();
    timeout(limit(), server.stop_accepting()).await.unwrap();

    // The socket still listens: a connect succeeds and the other holder accepts it.
    let _client = Client::connect(addr).await;
    other.set_nonblocking(true).unwrap();
    let other = TcpListener::from_std(other).unwrap();
    let (_conn, _) = timeout(limit(), other.accept()).await.unwrap().unwrap();
    assert_eq!(server.connections(), 0);
    origin.shutdown().await;
}

/// Two generations share one listening socket; clients keep sending keep-alive
/// requests while the first generation drains: nothing may be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_keep_alive_clients_lose_nothing_across_a_drain() {
    const CLIENTS: usize = 16;
    const REQUESTS: usize = 200;
    let origin = origin(32_987).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let second = listener.try_clone().unwrap();
    let cfg = Arc::new(Config::new(vec![addr], vec![origin.addr()]));
    let old = Arc::new(Server::start(vec![listener], cfg.clone(), ID).unwrap());

    let (half_tx, mut half_rx) = tokio::sync::mpsc::channel::<()>(CLIENTS);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let half_tx = half_tx.clone();
        clients.push(tokio::spawn(async move {
            let (mut ok, mut closes, mut failed) = (0usize, 0usize, 0usize);
            let mut c = Client::connect(addr).await;
            for i in 0..REQUESTS {
                if i == REQUESTS / 4 {
                    let _ = half_tx.send(()).await;
                }
                c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
                match c.try_response().await {
                    Some(r) if r.status == 200 && r.body.len() == 32_987 => {
                        ok += 1;
                        if r.closes() {
                            closes += 1;
                            c = Client::connect(addr).await;
                        }
                    }
                    _ => {
                        failed += 1;
                        c = Client::connect(addr).await;
                    }
                }
            }
            (ok, closes, failed)
        }));
    }
    drop(half_tx);
    // Once every client is a quarter through, the new generation starts and the old drains.
    for _ in 0..CLIENTS {
        timeout(limit(), half_rx.recv()).await.unwrap();
    }
    let new = Server::start(
        vec![second],
        cfg,
        Identity {
            pid: 1,
            generation: 8,
        },
    )
    .unwrap();
    let report = timeout(limit(), old.drain()).await.unwrap();
    let (mut ok, mut closes, mut failed) = (0, 0, 0);
    for c in clients {
        let (o, cl, f) = timeout(limit() * 4, c).await.unwrap().unwrap();
        ok += o;
        closes += cl;
        failed += f;
    }
    assert_eq!(failed, 0, "{report:?}");
    assert_eq!(ok, CLIENTS * REQUESTS);
    assert_eq!(report.forced, 0);
    assert!((1..=CLIENTS).contains(&closes), "closes {closes}");
    drop(new);
    origin.shutdown().await;
}

#[tokio::test]
async fn connection_that_never_sent_a_request_is_closed_at_idle_close() {
    let (server, addr) = proxy(vec![dead_addr()], |c| {
        c.drain.deadline = Duration::from_secs(120);
        c.drain.idle_close = Duration::from_millis(200);
    });
    let mut c = Client::connect(addr).await;
    let mut open = server.shared.open.subscribe();
    timeout(limit(), open.wait_for(|n| *n == 1))
        .await
        .unwrap()
        .unwrap();
    let report = timeout(limit(), server.drain()).await.unwrap();
    assert_eq!(report.idle_closed, 1);
    assert_eq!(report.forced, 0);
    c.expect_closed().await;
}

#[tokio::test]
async fn request_head_in_progress_is_not_closed_as_idle() {
    let origin = origin(100).await;
    let (server, addr) = proxy(vec![origin.addr()], |c| {
        c.drain.deadline = Duration::from_secs(120);
        c.drain.idle_close = Duration::from_millis(200);
    });
    let server = Arc::new(server);
    let mut idle = Client::connect(addr).await;
    assert_eq!(idle.get("/").await.status, 200);
    let mut sending = Client::connect(addr).await;
    assert_eq!(sending.get("/").await.status, 200);
    sending.send(b"GET / HTTP/1.1\r\nHo").await;
    // On loopback the partial head reaches the proxy long before the 200 ms timers expire.
    server.start_drain();
    let drain = spawn_drain(&server);
    // Both idle timers expire together; the idle one closes...
    idle.expect_closed().await;
    // ...while the one receiving a head is kept and answered with a close.
    sending.send(b"st: t\r\n\r\n").await;
    let r = sending.response().await;
    assert_eq!(r.status, 200);
    assert!(r.closes());
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    assert_eq!(report.idle_closed, 1, "{report:?}");
    assert_eq!(report.forced, 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn deadline_forces_a_connection_lingering_after_a_whole_response_without_cutting_it() {
    let origin = origin(5000).await;
    let (server, addr) = proxy(vec![origin.addr()], |c| {
        c.drain.deadline = Duration::from_millis(500);
        c.drain.idle_close = Duration::from_secs(600);
        c.drain.linger = Duration::from_secs(600);
    });
    let server = Arc::new(server);
    let mut c = Client::connect(addr).await;
    assert!(!c.get("/").await.closes());
    server.start_drain();
    let drain = server.drain();
    tokio::pin!(drain);
    // Polled once: the drain has taken its count of open connections.
    assert!(timeout(Duration::ZERO, &mut drain).await.is_err());
    // Answered whole with `Connection: close`; the client keeps its end open, so the
    // connection lingers until the deadline closes it.
    let r = c.get("/").await;
    assert!(r.closes(), "{:?}", r.headers);
    assert_eq!(r.body.len(), 5000);
    let report = timeout(limit(), drain).await.unwrap();
    assert_eq!(
        (report.open_at_start, report.forced, report.cut),
        (1, 1, 0),
        "{report:?}"
    );
    c.expect_closed().await;
    origin.shutdown().await;
}
