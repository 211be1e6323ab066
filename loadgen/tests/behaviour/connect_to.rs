//! `connect_to`: the load goes to the given address, never to a fresh
//! resolution of the URL's host, and the host stays the `Host` header.

use std::sync::{Arc, Mutex};

use reloadbench_loadgen::LoadConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{run_load, scaled};

#[tokio::test]
async fn connect_to_sends_to_the_given_address_with_the_url_host() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    // What the server saw: the Host line of every request.
    let hosts = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = hosts.clone();
    let server = tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(h) = text.lines().find(|l| l.starts_with("Host:")) {
                seen.lock().unwrap().push(h.to_owned());
            }
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    // A name that never resolves (RFC 6761): only `connect_to` reaches the server.
    let mut cfg = LoadConfig::new("http://reloadbench-test.invalid:4321/x").unwrap();
    cfg.requests = Some(5);
    cfg.timeout = scaled(std::time::Duration::from_secs(20));
    cfg.connect_to = Some(addr);
    let r = run_load(cfg).await;
    server.abort();
    assert_eq!(r.ok, 5, "{r:#?}");
    let hosts = hosts.lock().unwrap().clone();
    assert_eq!(hosts.len(), 5);
    assert!(
        hosts
            .iter()
            .all(|h| h == "Host: reloadbench-test.invalid:4321"),
        "{hosts:?}"
    );
}
