//! Origin connection slots (`limits.origin_connections`), the wait for a slot bounded by
//! `timeouts.connect`, the retry of a failed connect on the other origin, and a burst of
//! simultaneous requests; every count checked against the origin's own.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpSocket;
use tokio::sync::watch;

use super::*;

/// What a [`CountingOrigin`] counted.
#[derive(Default)]
struct Counts {
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    served: AtomicUsize,
}

/// An origin with a small accept queue (`backlog`) that answers each request after
/// `work` (simulated work), counting connections, requests in flight (the most at once)
/// and responses. With `answer` false it never answers.
struct CountingOrigin {
    addr: SocketAddr,
    counts: Arc<Counts>,
    /// Requests received so far.
    received: watch::Receiver<usize>,
}

impl CountingOrigin {
    async fn start(backlog: u32, work: Duration, answer: bool) -> CountingOrigin {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let l = socket.listen(backlog).unwrap();
        let addr = l.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let (tx, received) = watch::channel(0);
        let tx = Arc::new(tx);
        let c2 = counts.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                c2.connections.fetch_add(1, Ordering::SeqCst);
                let (counts, tx) = (c2.clone(), tx.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(end) = (loop {
                            if let Some(end) = head_end(&buf) {
                                break Some(end);
                            }
                            if !fill_from(&mut s, &mut buf).await {
                                break None;
                            }
                        }) else {
                            return;
                        };
                        buf.drain(..end);
                        let now = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        counts.max_in_flight.fetch_max(now, Ordering::SeqCst);
                        tx.send_modify(|n| *n += 1);
                        if !answer {
                            let _ = timeout(limit(), std::future::pending::<()>()).await;
                            return;
                        }
                        tokio::time::sleep(work).await;
                        counts.in_flight.fetch_sub(1, Ordering::SeqCst);
                        if s.write_all(&ok(b"ok")).await.is_err() {
                            return;
                        }
                        counts.served.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        CountingOrigin {
            addr,
            counts,
            received,
        }
    }

    fn count(&self, what: impl Fn(&Counts) -> &AtomicUsize) -> usize {
        what(&self.counts).load(Ordering::SeqCst)
    }
}

/// Sends `n` simultaneous `GET /` requests (a connection each, `Connection: close`) and
/// returns how many got each status (status 0: no response).
async fn burst(addr: SocketAddr, n: usize) -> std::collections::BTreeMap<u16, usize> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(async move {
            let mut c = Client::connect(addr).await;
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await;
            c.try_response().await.map_or(0, |r| r.status)
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = timeout(limit(), tasks.join_next()).await.unwrap() {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    statuses
}

#[tokio::test]
async fn origin_connections_bound_the_requests_in_flight_at_the_origin() {
    const LIMIT_CONNS: u32 = 16;
    const N: usize = 400;
    let origin = CountingOrigin::start(16, Duration::from_millis(10), true).await;
    let (_server, addr) = proxy(vec![origin.addr], |c| {
        c.limits.origin_connections = LIMIT_CONNS;
        // The wait for a slot: long enough for the whole queue on a loaded machine.
        c.timeouts.connect = limit();
    });
    let statuses = burst(addr, N).await;
    assert_eq!(statuses.get(&200), Some(&N), "{statuses:?}");
    assert_eq!(origin.count(|c| &c.served), N);
    let max = origin.count(|c| &c.max_in_flight);
    assert!(
        max <= LIMIT_CONNS as usize,
        "{max} requests in flight at the origin at once, limit {LIMIT_CONNS}"
    );
}

#[tokio::test]
async fn request_waiting_for_a_slot_longer_than_the_connect_timeout_gets_502() {
    let origin = CountingOrigin::start(16, Duration::ZERO, false).await;
    let (_server, addr) = proxy(vec![origin.addr], |c| {
        c.limits.origin_connections = 1;
        c.timeouts.connect = Duration::from_millis(300);
    });
    // The first request holds the only slot: the origin never answers it.
    let mut first = Client::connect(addr).await;
    first.send(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let mut received = origin.received.clone();
    timeout(limit(), received.wait_for(|n| *n == 1))
        .await
        .unwrap()
        .unwrap();
    let mut second = Client::connect(addr).await;
    let started = std::time::Instant::now();
    second
        .send(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let r = second.response().await;
    assert_eq!(r.status, 502);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(origin.count(|c| &c.connections), 1, "one connection opened");
    assert_eq!(
        *origin.received.borrow(),
        1,
        "one request reached the origin"
    );
}

#[tokio::test]
async fn failed_connect_is_retried_once_on_the_other_origin() {
    let origin = CountingOrigin::start(16, Duration::ZERO, true).await;
    let (_server, addr) = proxy(vec![dead_addr(), origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(c.get("/").await.status);
    }
    assert_eq!(statuses, [200; 6]);
    assert_eq!(origin.count(|c| &c.served), 6);
}

#[tokio::test]
async fn heavy_burst_of_2500_simultaneous_requests_gets_no_502() {
    const N: usize = 2500;
    let origin = origin(100).await;
    let (_server, addr) = proxy(vec![origin.addr()], |c| {
        // The default wait (1 s) is for a fast machine; this one is shared.
        c.timeouts.connect = scaled(Duration::from_secs(10));
    });
    let statuses = burst(addr, N).await;
    assert_eq!(statuses.get(&200), Some(&N), "{statuses:?}");
    assert_eq!(origin.requests(), N as u64, "the origin's own count");
    origin.shutdown().await;
}
