//! The single retry of a bodyless idempotent request whose reused pooled origin
//! connection was closed by the origin before any response byte.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// Counters of a [`closing_origin`].
#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    answered: AtomicU64,
    /// Requests read and then dropped by closing the connection without a response.
    dropped: AtomicU64,
}

/// Reads one request (head, and a `Content-Length` body); `false` at EOF.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return true;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An origin that answers the first request of every connection (keep-alive) and closes
/// the connection, unanswered, as soon as a second request arrives on it: what an origin
/// closing an idle keep-alive connection looks like to a proxy that reuses it just then.
/// With `first_too`, it drops the first request as well (every connection is useless).
async fn closing_origin(first_too: bool) -> (SocketAddr, Arc<Counts>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.connections.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                if !read_request(&mut s, &mut buf).await {
                    return;
                }
                if !first_too {
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if s.write_all(ok).await.is_err() {
                        return;
                    }
                    c.answered.fetch_add(1, Ordering::SeqCst);
                    if !read_request(&mut s, &mut buf).await {
                        return;
                    }
                }
                c.dropped.fetch_add(1, Ordering::SeqCst);
                drop(s);
            });
        }
    });
    (addr, counts)
}

/// Sends `raw` on a new client connection and reads the response.
async fn one(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut c = Client::connect(addr).await;
    c.send(raw).await;
    c.response().await
}

#[tokio::test]
async fn get_on_a_reused_connection_closed_by_the_origin_is_retried_once() {
    let (origin, counts) = closing_origin(false).await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    // Sequential GETs: as soon as one reuses a pooled connection, the origin drops it.
    // Bounded: the pool hands back an idle connection within a few requests.
    let mut caught = 0;
    for _ in 0..50 {
        let before = counts.dropped.load(Ordering::SeqCst);
        let r = one(
            addr,
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), "ok");
        if counts.dropped.load(Ordering::SeqCst) > before {
            caught += 1;
            if caught == 3 {
                break;
            }
        }
    }
    assert!(caught > 0, "no request ever reused a pooled connection");
}

#[tokio::test]
async fn a_request_with_a_body_is_not_retried() {
    let (origin, counts) = closing_origin(false).await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    let post = b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
    let mut caught = false;
    for _ in 0..50 {
        let before = counts.dropped.load(Ordering::SeqCst);
        let answered = counts.answered.load(Ordering::SeqCst);
        let r = one(addr, post).await;
        if counts.dropped.load(Ordering::SeqCst) > before {
            assert_eq!(r.status, 502, "a POST must not be sent twice");
            assert_eq!(counts.answered.load(Ordering::SeqCst), answered);
            caught = true;
            break;
        }
        assert_eq!(r.status, 200);
    }
    assert!(caught, "no request ever reused a pooled connection");
}

#[tokio::test]
async fn a_failure_on_a_fresh_connection_is_not_retried() {
    let (origin, counts) = closing_origin(true).await;
    let (_server, addr) = proxy(vec![origin], |_| {});
    let r = one(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 502);
    assert_eq!(counts.connections.load(Ordering::SeqCst), 1);
    assert_eq!(counts.dropped.load(Ordering::SeqCst), 1);
}
