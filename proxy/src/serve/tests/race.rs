//! The keep-alive race during a drain, seen by a client that counts what it got for each
//! POST (a complete response, with or without `Connection: close`; EOF before any byte; a
//! reset), checked against an origin that counts the POSTs it received in full.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::serve::DrainReport;

const BODY: usize = 4096;

/// An origin that reads every request body to its end, counts the POSTs whose body had
/// [`BODY`] bytes, and answers `200` with `got N`.
async fn counting_origin() -> (SocketAddr, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let posts = Arc::new(AtomicU64::new(0));
    let counted = posts.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let posts = counted.clone();
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let posts = posts.clone();
                async move {
                    let post = req.method() == hyper::Method::POST;
                    let body = req.into_body().collect().await?.to_bytes();
                    if post && body.len() == BODY {
                        posts.fetch_add(1, Ordering::SeqCst);
                    }
                    let text = format!("got {}", body.len());
                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(text))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc),
            );
        }
    });
    (addr, posts)
}

fn post() -> Vec<u8> {
    let mut req = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {BODY}\r\n\r\n"
    )
    .into_bytes();
    req.extend(pattern(BODY));
    req
}

/// What one request got, as a client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Seen {
    /// A complete `200` response; `closes`: it carried `Connection: close`.
    Complete { closes: bool },
    /// The connection ended before any byte of a response.
    EofBeforeAnyByte,
    /// The connection was reset (on the write, the read, or pending on the socket).
    Reset,
    /// Anything else (a partial response, another status).
    Other,
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Counts of [`Seen`].
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    complete_close: u64,
    complete_keep: u64,
    eof: u64,
    reset: u64,
    other: u64,
}

impl Tally {
    fn add(&mut self, seen: Seen) {
        match seen {
            Seen::Complete { closes: true } => self.complete_close += 1,
            Seen::Complete { closes: false } => self.complete_keep += 1,
            Seen::EofBeforeAnyByte => self.eof += 1,
            Seen::Reset => self.reset += 1,
            Seen::Other => self.other += 1,
        }
    }
}

/// Sends one POST on `c` and says what came back.
async fn send_post(c: &mut Client) -> Seen {
    if let Err(e) = c.stream.write_all(&post()).await {
        return if is_reset(&e) {
            Seen::Reset
        } else {
            Seen::Other
        };
    }
    read_outcome(c).await
}

/// Reads one response from `c` and says what it was.
async fn read_outcome(c: &mut Client) -> Seen {
    let mut got = Vec::new();
    loop {
        if let Some(end) = head_end(&got) {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let headers = header_lines(&head);
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(usize::MAX);
            if got.len() - end >= len {
                let closes = headers
                    .iter()
                    .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"));
                return if head.starts_with("HTTP/1.1 200 ") {
                    Seen::Complete { closes }
                } else {
                    Seen::Other
                };
            }
        }
        let mut chunk = [0u8; 16384];
        match timeout(limit(), c.stream.read(&mut chunk)).await.unwrap() {
            Ok(0) if got.is_empty() => return Seen::EofBeforeAnyByte,
            Ok(0) => return Seen::Other,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if is_reset(&e) => return Seen::Reset,
            Err(_) => return Seen::Other,
        }
    }
}

/// Ends the client's side and asserts that no reset reached it: the proxy's close was
/// an orderly one (a reset leaves an error pending on the socket).
async fn finish_without_reset(mut c: Client) {
    let _ = c.stream.shutdown().await;
    let mut chunk = [0u8; 1024];
    let last = timeout(limit(), c.stream.read(&mut chunk)).await.unwrap();
    assert!(matches!(last, Ok(0)), "{last:?}");
    let pending = c.stream.take_error().unwrap();
    assert!(pending.is_none(), "reset seen: {pending:?}");
}

#[tokio::test]
async fn requests_on_idle_keep_alive_connections_during_a_drain_get_connection_close() {
    const CLIENTS: usize = 8;
    let (origin, posts) = counting_origin().await;
    let (server, addr) = proxy(vec![origin], |c| {
        c.drain.deadline = Duration::from_secs(120);
        c.drain.idle_close = Duration::from_secs(120);
        c.drain.linger = Duration::from_secs(120);
    });
    let server = Arc::new(server);
    let mut tally = Tally::default();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = Client::connect(addr).await;
        tally.add(send_post(&mut c).await);
        clients.push(c);
    }
    server.start_drain();
    server.stop_accepting().await;
    // Poll the drain once so that it takes its count of open connections first.
    let drain = server.drain();
    tokio::pin!(drain);
    assert!(timeout(Duration::ZERO, &mut drain).await.is_err());

    // Every idle connection is still open and read from: its next POST is answered in
    // full, with `Connection: close`.
    for c in &mut clients {
        tally.add(send_post(c).await);
    }
    // Half of the clients send one more POST at once, without looking at the
    // `Connection: close` (as a client does whose request was already on its way): the
    // proxy's lingering close reads it, so the client sees EOF, never a reset.
    for c in clients.iter_mut().step_by(2) {
        tally.add(send_post(c).await);
    }
    for c in clients {
        finish_without_reset(c).await;
    }
    let report = timeout(limit(), drain).await.unwrap();
    assert_eq!(
        tally,
        Tally {
            complete_keep: CLIENTS as u64,
            complete_close: CLIENTS as u64,
            eof: CLIENTS as u64 / 2,
            ..Tally::default()
        }
    );
    // The origin got exactly the POSTs answered in full; the late ones never reached it.
    assert_eq!(posts.load(Ordering::SeqCst), 2 * CLIENTS as u64);
    assert_eq!(
        report,
        DrainReport {
            open_at_start: CLIENTS as u64,
            forced: 0,
            cut: 0,
            cut_requests: 0,
            idle_closed: 0,
            raced: 0,
        }
    );
}

#[tokio::test]
async fn idle_close_is_a_fin_and_a_request_racing_it_gets_eof_not_a_reset() {
    let (origin, posts) = counting_origin().await;
    let (server, addr) = proxy(vec![origin], |c| {
        c.drain.deadline = Duration::from_secs(120);
        c.drain.idle_close = Duration::from_millis(200);
        c.drain.linger = Duration::from_secs(120);
    });
    let server = Arc::new(server);
    let mut c = Client::connect(addr).await;
    assert_eq!(send_post(&mut c).await, Seen::Complete { closes: false });
    let start = Instant::now();
    let drain = spawn_drain(&server);
    // Idle for 200 ms: the proxy closes its side with a FIN, so the client reads EOF.
    let mut chunk = [0u8; 64];
    let fin = timeout(limit(), c.stream.read(&mut chunk)).await.unwrap();
    assert!(matches!(fin, Ok(0)), "{fin:?}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    // A POST written as the proxy closes (the client had not looked yet): the proxy is
    // lingering and reads it; the client gets EOF before any byte, not a reset.
    assert_eq!(send_post(&mut c).await, Seen::EofBeforeAnyByte);
    finish_without_reset(c).await;
    let report = timeout(limit(), drain).await.unwrap().unwrap();
    assert_eq!(
        report,
        DrainReport {
            open_at_start: 1,
            forced: 0,
            cut: 0,
            cut_requests: 0,
            idle_closed: 1,
            raced: 1,
        }
    );
    assert_eq!(posts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn drain_deadline_cuts_a_busy_connection_and_a_lingering_one() {
    let (origin, posts) = counting_origin().await;
    let (server, addr) = proxy(vec![origin], |c| {
        c.drain.deadline = Duration::from_millis(500);
        c.drain.idle_close = Duration::from_millis(100);
        c.drain.linger = Duration::from_secs(600);
    });
    // One connection never goes idle: its POST body stops half way and never ends.
    let mut busy = Client::connect(addr).await;
    let req = post();
    busy.send(&req[..req.len() - BODY / 2]).await;
    let mut open = server.shared.open.subscribe();
    timeout(limit(), open.wait_for(|n| *n == 1))
        .await
        .unwrap()
        .unwrap();
    // The other is answered and goes idle.
    let mut idle = Client::connect(addr).await;
    assert_eq!(send_post(&mut idle).await, Seen::Complete { closes: false });
    let start = Instant::now();
    let report = timeout(limit(), server.drain()).await.unwrap();
    let took = start.elapsed();
    // Both were still open at the deadline: the busy one never went idle, the idle one
    // was closed at 100 ms and lingered (its client never closes) until the deadline.
    assert_eq!(
        report,
        DrainReport {
            open_at_start: 2,
            forced: 2,
            cut: 1,
            cut_requests: 1,
            idle_closed: 1,
            raced: 0,
        }
    );
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < scaled(Duration::from_secs(20)), "{took:?}");
    assert_eq!(read_outcome(&mut busy).await, Seen::EofBeforeAnyByte);
    assert_eq!(read_outcome(&mut idle).await, Seen::EofBeforeAnyByte);
    assert_eq!(posts.load(Ordering::SeqCst), 1);
}
