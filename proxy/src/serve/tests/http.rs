//! Client-side protocol handling: malformed and oversized requests, head and idle timeouts,
//! start errors.

use std::time::{Duration, Instant};

use super::*;
use crate::serve::ServeError;

#[tokio::test]
async fn malformed_request_gets_400_and_the_server_keeps_serving() {
    let origin = origin(10).await;
    let (_server, addr) = proxy(vec![origin.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GARBAGE\x01 / NOT-HTTP\r\n\r\n").await;
    let r = c.try_response().await.expect("a 400 response");
    assert_eq!(r.status, 400);
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/").await.status, 200);
    origin.shutdown().await;
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let origin = origin(10).await;
    let (_server, addr) = proxy(vec![origin.addr()], |_| {});
    let mut c = Client::connect(addr).await;
    let big = "a".repeat(40 * 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    // The server may answer and close before it read everything: ignore write errors.
    let _ = c.stream.write_all(req.as_bytes()).await;
    let r = c.try_response().await.expect("a 431 response");
    assert_eq!(r.status, 431);
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/").await.status, 200);
    origin.shutdown().await;
}

#[tokio::test]
async fn slow_request_head_is_closed_at_header_read() {
    let origin = origin(10).await;
    let (_server, addr) = proxy(vec![origin.addr()], |c| {
        c.timeouts.header_read = Duration::from_millis(300);
    });
    let mut c = Client::connect(addr).await;
    let start = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHo").await;
    c.expect_closed().await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    origin.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_at_idle_timeout() {
    let origin = origin(10).await;
    let (server, addr) = proxy(vec![origin.addr()], |c| {
        c.timeouts.idle = Duration::from_millis(300);
    });
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/").await.status, 200);
    let start = Instant::now();
    c.expect_closed().await;
    assert!(start.elapsed() >= Duration::from_millis(250));
    let mut open = server.shared.open.subscribe();
    timeout(limit(), open.wait_for(|n| *n == 0))
        .await
        .unwrap()
        .unwrap();
    origin.shutdown().await;
}

#[tokio::test]
async fn start_requires_listeners_and_a_runtime() {
    let cfg = Arc::new(Config::new(vec![dead_addr()], vec![dead_addr()]));
    let no_listeners = Server::start(Vec::new(), cfg.clone(), ID);
    assert!(matches!(no_listeners, Err(ServeError::NoListeners)));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let outside = std::thread::spawn(move || Server::start(vec![l], cfg, ID).err())
        .join()
        .unwrap();
    assert!(matches!(outside, Some(ServeError::NoRuntime)));
}

#[tokio::test]
async fn serves_on_several_listeners() {
    let origin = origin(10).await;
    let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = vec![l1.local_addr().unwrap(), l2.local_addr().unwrap()];
    let cfg = Arc::new(Config::new(addrs.clone(), vec![origin.addr()]));
    let server = Server::start(vec![l1, l2], cfg, ID).unwrap();
    assert_eq!(server.local_addrs(), addrs.as_slice());
    for a in addrs {
        assert_eq!(Client::connect(a).await.get("/").await.status, 200);
    }
    origin.shutdown().await;
}
