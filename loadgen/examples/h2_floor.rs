//! The `h2` crate's own cost per request: a bare HTTP/2 client with nothing of
//! loadgen around it (no outcome, no clock per request, no histogram, no
//! read-ahead), for `scripts/bench-loadgen` to measure side by side with
//! `loadgen --h2` and `h2load`: what is left between this and loadgen is
//! loadgen's, what is between this and h2load is the crate's.
//!
//! Same settings as `loadgen --h2`: one current-thread runtime per thread,
//! connections spread over the threads, `streams` request loops per
//! connection, windows of 1 MiB per stream and 16 MiB per connection.
//!
//!   h2_floor ADDR PATH CONNECTIONS STREAMS SECONDS THREADS
//!
//! Prints `requests N` (complete 2xx responses), `failed N` and `seconds S`
//! (from the first connect to the last response).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

struct Plan {
    addr: SocketAddr,
    uri: http::Uri,
    streams: usize,
    until: Instant,
    ok: AtomicU64,
    failed: AtomicU64,
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        eprintln!("h2_floor ADDR PATH CONNECTIONS STREAMS SECONDS THREADS: bad or missing {what}");
        std::process::exit(2)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = arg(&args, 0, "ADDR");
    let path: String = arg(&args, 1, "PATH");
    let connections: usize = arg(&args, 2, "CONNECTIONS");
    let streams: usize = arg(&args, 3, "STREAMS");
    let seconds: f64 = arg(&args, 4, "SECONDS");
    let threads: usize = arg(&args, 5, "THREADS");
    let started = Instant::now();
    let uri = format!("http://{addr}{path}")
        .parse()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let plan = Arc::new(Plan {
        addr,
        uri,
        streams,
        until: Instant::now() + Duration::from_secs_f64(seconds),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let workers: Vec<_> = (0..threads.max(1))
        .map(|t| {
            let plan = plan.clone();
            let mine = (t..connections).step_by(threads.max(1)).count();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async {
                    let conns: Vec<_> = (0..mine)
                        .map(|_| tokio::task::spawn_local(connection(plan.clone())))
                        .collect();
                    for c in conns {
                        let _ = c.await;
                    }
                });
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    println!("requests {}", plan.ok.load(Ordering::Relaxed));
    println!("failed {}", plan.failed.load(Ordering::Relaxed));
    println!("seconds {:.3}", started.elapsed().as_secs_f64());
}

/// One connection and its request loops, until the plan's end.
async fn connection(plan: Arc<Plan>) {
    let Ok(tcp) = tokio::net::TcpStream::connect(plan.addr).await else {
        plan.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let _ = tcp.set_nodelay(true);
    let Ok((send, conn)) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 24)
        .handshake::<_, Bytes>(tcp)
        .await
    else {
        plan.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let loops: Vec<_> = (0..plan.streams)
        .map(|_| tokio::task::spawn_local(request_loop(plan.clone(), send.clone())))
        .collect();
    for l in loops {
        let _ = l.await;
    }
}

async fn request_loop(plan: Arc<Plan>, send: h2::client::SendRequest<Bytes>) {
    while Instant::now() < plan.until {
        if exchange(&plan, send.clone()).await.is_some() {
            plan.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            plan.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

async fn exchange(plan: &Plan, send: h2::client::SendRequest<Bytes>) -> Option<()> {
    let mut send = send.ready().await.ok()?;
    let mut req = http::Request::new(());
    *req.uri_mut() = plan.uri.clone();
    let (response, _) = send.send_request(req, true).ok()?;
    let resp = response.await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut body = resp.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    Some(())
}
