//! Request mixes, retryable labels, retries and think time against a server
//! written here that records, per method, what it received and what it did:
//! every request's method, path and body (checked byte for byte), which
//! requests it closed before answering (on a fresh or a reused connection),
//! which responses it cut, and the idle gaps between requests on each
//! connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reloadbench_loadgen::{LoadConfig, RequestKind, RetryPolicy};
use reloadbench_model::load::LoadReport;
use reloadbench_model::outcome::FailureClass;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::run_load as run;

/// What the server does with the requests of a connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plan {
    /// Answer this many requests per connection, then close the next one
    /// unanswered (after reading all of it): the keep-alive race.
    pub(crate) close_after: Option<u64>,
    /// Answer this many requests per connection, then send the next one
    /// half a response and close.
    pub(crate) cut_after: Option<u64>,
    /// Close the first request of every n-th connection unanswered.
    pub(crate) close_first_every: Option<u64>,
}

/// What the server saw and did, per method.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    pub(crate) requests: u64,
    pub(crate) answered: u64,
    closed_fresh: u64,
    pub(crate) closed_reused: u64,
    cut: u64,
    /// Bodies equal, byte for byte, to the expected body of the method.
    bodies_ok: u64,
    pub(crate) bodies_wrong: u64,
    paths: HashMap<String, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Record {
    by_method: Mutex<HashMap<String, Seen>>,
    /// Shortest gap between a response and the next request on one connection, ns.
    min_gap_ns: AtomicU64,
    accepted: AtomicU64,
}

impl Record {
    pub(crate) fn seen(&self, method: &str) -> Seen {
        self.by_method
            .lock()
            .unwrap()
            .get(method)
            .cloned()
            .unwrap_or_default()
    }

    fn update(&self, method: &str, f: impl FnOnce(&mut Seen)) {
        f(self
            .by_method
            .lock()
            .unwrap()
            .entry(method.to_owned())
            .or_default());
    }
}

pub(crate) struct MixServer {
    pub(crate) url: String,
    pub(crate) record: Arc<Record>,
    task: JoinHandle<()>,
}

impl Drop for MixServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body a request of `method` must carry (none for GET).
pub(crate) type Bodies = Arc<HashMap<String, Vec<u8>>>;

impl MixServer {
    pub(crate) async fn start(plan: Plan, bodies: Bodies) -> MixServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let record = Arc::new(Record {
            min_gap_ns: AtomicU64::new(u64::MAX),
            ..Record::default()
        });
        let rec = record.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let n = rec.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, n, plan, bodies.clone(), rec.clone()));
            }
        });
        MixServer { url, record, task }
    }
}

/// One request: method, path, body.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Reads one request (head, then a `Content-Length` body); `None` at EOF.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut words = head.split(' ');
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Request { method, path, body })
}

async fn serve(mut stream: TcpStream, conn: u64, plan: Plan, bodies: Bodies, rec: Arc<Record>) {
    let mut buf = Vec::new();
    let mut last_response: Option<Instant> = None;
    for index in 0u64.. {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        if let Some(t) = last_response {
            rec.min_gap_ns
                .fetch_min(t.elapsed().as_nanos() as u64, Ordering::SeqCst);
        }
        let expected = bodies.get(&req.method).map_or(&[][..], Vec::as_slice);
        rec.update(&req.method, |s| {
            s.requests += 1;
            *s.paths.entry(req.path.clone()).or_default() += 1;
            if req.body == expected {
                s.bodies_ok += 1;
            } else {
                s.bodies_wrong += 1;
            }
        });
        let close_first = plan
            .close_first_every
            .is_some_and(|n| index == 0 && conn % n == n - 1);
        if close_first || plan.close_after == Some(index) {
            // Everything of the request was read: a plain close is a FIN.
            rec.update(&req.method, |s| {
                if index == 0 {
                    s.closed_fresh += 1;
                } else {
                    s.closed_reused += 1;
                }
            });
            return;
        }
        if plan.cut_after == Some(index) {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
                .await;
            rec.update(&req.method, |s| s.cut += 1);
            return;
        }
        // Stamped before the write: the client cannot see the response earlier.
        last_response = Some(Instant::now());
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await
            .is_err()
        {
            return;
        }
        rec.update(&req.method, |s| s.answered += 1);
    }
}

/// [`crate::support::config`] with keep-alive.
fn config(url: &str, n: u64, c: u64) -> LoadConfig {
    let mut cfg = crate::support::config(url, n, c);
    cfg.keep_alive = true;
    cfg
}

/// `planned = ok + failed`, the retryable split, methods and buckets agree.
fn assert_sums(r: &LoadReport) {
    assert_eq!(r.planned, r.ok + r.failed + r.not_started);
    assert_eq!(r.failed, r.failed_retryable + r.failed_not_retryable);
    let (ok, failed): (u64, u64) = r
        .methods
        .iter()
        .fold((0, 0), |(o, f), m| (o + m.ok, f + m.failed));
    assert_eq!((ok, failed), (r.ok, r.failed), "{:?}", r.methods);
    let retryable: u64 = r.buckets.iter().map(|b| b.failed_retryable).sum();
    assert_eq!(retryable, r.failed_retryable, "buckets");
    let records = r.failures.iter().filter(|f| f.retryable).count() as u64;
    assert_eq!(records, r.failed_retryable, "failure records");
    assert_eq!(r.retries, r.methods.iter().map(|m| m.retries).sum::<u64>());
}

fn no_bodies() -> Bodies {
    Arc::new(HashMap::new())
}

fn post_kind(weight: u32, body: &[u8]) -> RequestKind {
    RequestKind {
        weight,
        body: Some(body.to_vec()),
        content_type: Some("application/octet-stream".to_owned()),
        path: Some("/post?x=1".to_owned()),
        headers: vec![("X-Kind".to_owned(), "post".to_owned())],
        ..RequestKind::new("POST")
    }
}

#[tokio::test]
async fn a_get_closed_on_a_reused_connection_is_retryable_a_post_or_a_fresh_one_is_not() {
    let plan = Plan {
        close_after: Some(2),
        close_first_every: Some(5),
        ..Plan::default()
    };
    let server = MixServer::start(plan, no_bodies()).await;
    let r = run(config(&server.url, 300, 3)).await;
    assert_sums(&r);
    let get = server.record.seen("GET");
    assert!(get.closed_reused > 0 && get.closed_fresh > 0, "{get:?}");
    assert_eq!(r.failed_retryable, get.closed_reused, "{:?}", r.classes);
    assert_eq!(r.failed_not_retryable, get.closed_fresh);
    assert_eq!(r.ok, get.answered);
    assert_eq!(r.retries, 0, "no retry by default");
    for f in &r.failures {
        assert_eq!(f.class, FailureClass::Closed);
        assert_eq!(f.retryable, f.reused, "{f:?}");
        assert_eq!(r.failure_method(f), "GET");
    }

    // The same race for a POST: nobody retries it.
    let bodies: Bodies = Arc::new(HashMap::from([("POST".to_owned(), b"data".to_vec())]));
    let server = MixServer::start(plan, bodies).await;
    let mut cfg = config(&server.url, 300, 3);
    cfg.method = "POST".to_owned();
    cfg.body = Some(b"data".to_vec());
    let r = run(cfg).await;
    assert_sums(&r);
    let post = server.record.seen("POST");
    assert!(post.closed_reused > 0, "{post:?}");
    assert_eq!(r.failed_retryable, 0);
    assert_eq!(
        r.failed_not_retryable,
        post.closed_reused + post.closed_fresh
    );
    let m = r.method("POST").unwrap();
    assert_eq!(
        (m.ok, m.failed, m.failed_not_retryable),
        (
            post.answered,
            post.closed_reused + post.closed_fresh,
            m.failed
        )
    );
    assert_eq!(m.failed_by_class[&FailureClass::Closed], m.failed);
    assert_eq!(post.bodies_wrong, 0);
}

#[tokio::test]
async fn a_response_cut_midway_is_not_retryable_and_not_retried() {
    let plan = Plan {
        cut_after: Some(1),
        ..Plan::default()
    };
    let server = MixServer::start(plan, no_bodies()).await;
    let mut cfg = config(&server.url, 120, 2);
    cfg.retry = RetryPolicy::Safe;
    let r = run(cfg).await;
    assert_sums(&r);
    let get = server.record.seen("GET");
    assert!(get.cut > 0);
    let truncated = r
        .classes
        .iter()
        .find(|c| c.class == FailureClass::Truncated)
        .map_or(0, |c| c.count);
    assert_eq!(truncated, get.cut);
    assert_eq!((r.failed, r.failed_retryable, r.retries), (get.cut, 0, 0));
    assert_eq!(get.requests, 120, "nothing was sent twice");
}

#[tokio::test]
async fn retry_safe_retries_exactly_the_gets_closed_on_reused_connections() {
    let plan = Plan {
        close_after: Some(2),
        ..Plan::default()
    };
    let body = vec![7u8; 300];
    let bodies: Bodies = Arc::new(HashMap::from([("POST".to_owned(), body.clone())]));
    let server = MixServer::start(plan, bodies).await;
    let mut cfg = config(&server.url, 400, 4);
    cfg.mix = vec![
        RequestKind {
            weight: 3,
            ..RequestKind::new("GET")
        },
        post_kind(1, &body),
    ];
    cfg.retry = RetryPolicy::Safe;
    let r = run(cfg).await;
    assert_sums(&r);
    let (get, post) = (server.record.seen("GET"), server.record.seen("POST"));
    assert!(
        get.closed_reused > 0 && post.closed_reused > 0,
        "{get:?} {post:?}"
    );
    assert_eq!(r.retries, get.closed_reused);
    let g = r.method("GET").unwrap();
    assert_eq!((g.ok, g.failed, g.retries), (300, 0, get.closed_reused));
    // The server saw each GET once more per retry; all of them were answered in the end.
    assert_eq!(get.requests, 300 + r.retries);
    assert_eq!(get.answered, 300);
    let p = r.method("POST").unwrap();
    assert_eq!(
        (p.failed, p.failed_not_retryable, p.retries),
        (post.closed_reused, p.failed, 0)
    );
    assert_eq!((r.failed, r.failed_retryable), (post.closed_reused, 0));
    assert!(r.after_retry.is_none());
    assert_eq!(post.bodies_wrong, 0);
}

#[tokio::test]
async fn retry_both_reports_the_raw_outcome_and_the_outcome_after_retry() {
    let plan = Plan {
        close_after: Some(2),
        ..Plan::default()
    };
    let body = vec![9u8; 50];
    let bodies: Bodies = Arc::new(HashMap::from([("POST".to_owned(), body.clone())]));
    let server = MixServer::start(plan, bodies).await;
    let mut cfg = config(&server.url, 400, 4);
    cfg.mix = vec![RequestKind::new("GET"), post_kind(1, &body)];
    cfg.retry = RetryPolicy::Both;
    let r = run(cfg).await;
    assert_sums(&r);
    let (get, post) = (server.record.seen("GET"), server.record.seen("POST"));
    // Raw: every close the server made is a failure, the GETs' retryable.
    assert_eq!(r.failed, get.closed_reused + post.closed_reused);
    assert_eq!(r.failed_retryable, get.closed_reused);
    assert_eq!(r.retries, get.closed_reused);
    // After retry: only the POSTs are lost.
    let after = r.after_retry.clone().unwrap();
    assert_eq!(
        (after.ok, after.failed),
        (400 - post.closed_reused, post.closed_reused)
    );
    let g = r.method("GET").unwrap().after_retry.clone().unwrap();
    assert_eq!((g.ok, g.failed), (200, 0));
    assert_eq!(get.answered, 200);
}

#[tokio::test]
async fn a_mix_sends_its_proportions_and_every_body_byte_for_byte() {
    let body: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    let bodies: Bodies = Arc::new(HashMap::from([("POST".to_owned(), body.clone())]));
    let server = MixServer::start(Plan::default(), bodies).await;
    let mut cfg = config(&server.url, 10_000, 4);
    cfg.headers = vec![("X-All".to_owned(), "1".to_owned())];
    cfg.mix = vec![
        RequestKind {
            weight: 80,
            path: Some("/get".to_owned()),
            ..RequestKind::new("GET")
        },
        post_kind(20, &body),
    ];
    let r = run(cfg).await;
    assert_sums(&r);
    assert_eq!((r.ok, r.failed), (10_000, 0));
    let (get, post) = (server.record.seen("GET"), server.record.seen("POST"));
    assert_eq!(get.requests + post.requests, 10_000);
    for (seen, share) in [(&get, 0.8), (&post, 0.2)] {
        let want = 10_000.0 * share;
        assert!(
            (seen.requests as f64 - want).abs() <= 100.0,
            "{} vs {want}",
            seen.requests
        );
    }
    assert_eq!((post.bodies_ok, post.bodies_wrong), (post.requests, 0));
    assert_eq!(
        (get.bodies_ok, get.bodies_wrong),
        (get.requests, 0),
        "no GET body"
    );
    assert_eq!(get.paths.get("/get"), Some(&get.requests));
    assert_eq!(post.paths.get("/post?x=1"), Some(&post.requests));
    assert_eq!(r.method("GET").unwrap().ok, get.answered);
    assert_eq!(r.method("POST").unwrap().ok, post.answered);
    assert_eq!(r.config.method, "GET+POST");
    assert_eq!(r.config.mix.len(), 2);
    assert_eq!(r.config.mix[1].body_bytes, 4096);
}

#[tokio::test]
async fn think_time_leaves_connections_idle_and_stays_out_of_latency() {
    let think = Duration::from_millis(100);
    let server = MixServer::start(Plan::default(), no_bodies()).await;
    let mut cfg = config(&server.url, 12, 2);
    cfg.think_time = Some(think);
    let started = Instant::now();
    let r = run(cfg).await;
    assert_sums(&r);
    assert_eq!(r.ok, 12);
    assert_eq!(
        server.record.accepted.load(Ordering::SeqCst),
        2,
        "kept alive"
    );
    let gap = server.record.min_gap_ns.load(Ordering::SeqCst);
    assert!(gap >= think.as_nanos() as u64, "shortest idle gap {gap} ns");
    // 6 requests per client, 5 pauses between them.
    assert!(started.elapsed() >= 5 * think);
    // Were the pause counted, every latency would be at least 100 ms.
    let p50 = r.latency.at(50.0).unwrap();
    assert!(p50 < 25_000, "median {p50} µs");
    assert!(
        r.latency.mean_us < 25_000.0,
        "mean {} µs",
        r.latency.mean_us
    );
    assert_eq!(r.config.think_time_ms, Some(100));
}

#[tokio::test]
async fn a_think_time_never_outlasts_the_run() {
    let server = MixServer::start(Plan::default(), no_bodies()).await;
    // -n: once every request is taken, no client pauses.
    let mut cfg = config(&server.url, 2, 2);
    cfg.think_time = Some(Duration::from_secs(60));
    let started = Instant::now();
    let r = run(cfg).await;
    assert_eq!(r.ok, 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // -t: a pause that would end after the time limit ends the client at once.
    let mut cfg = config(&server.url, 1, 2);
    cfg.requests = None;
    cfg.duration = Some(Duration::from_millis(300));
    cfg.think_time = Some(Duration::from_secs(60));
    let started = Instant::now();
    let r = run(cfg).await;
    assert_eq!(r.ok, 2, "one request per client");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_holds_one_descriptor_per_client() {
    // 1,000 clients within an open-file limit of 1,000 + 256 + a few: a retry that
    // opened its connection before closing the failed one would run out.
    reloadbench_model::fd_limit::raise().unwrap();
    let plan = Plan {
        close_after: Some(1),
        ..Plan::default()
    };
    let server = MixServer::start(plan, no_bodies()).await;
    let out = crate::cli::run(tokio::process::Command::new("sh").args([
        "-c",
        r#"ulimit -n 1270 && exec "$0" -q -k -c 1000 -n 3000 --retry-safe --json - "$1""#,
        env!("CARGO_BIN_EXE_loadgen"),
        &server.url,
    ]))
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r: LoadReport = serde_json::from_str(&out.stdout).unwrap();
    assert_sums(&r);
    let get = server.record.seen("GET");
    assert!(get.closed_reused > 0, "{get:?}");
    assert_eq!((r.ok, r.failed, r.retries), (3000, 0, get.closed_reused));
}

#[tokio::test]
async fn bodies_with_request_ids_arrive_byte_for_byte() {
    // The id goes into the head; the body follows it from the prebuilt request.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let bodies: Bodies = Arc::new(HashMap::from([("POST".to_owned(), body.clone())]));
    let server = MixServer::start(Plan::default(), bodies).await;
    let mut cfg = config(&server.url, 200, 4);
    cfg.request_ids = true;
    cfg.mix = vec![RequestKind::new("GET"), post_kind(1, &body)];
    let r = run(cfg).await;
    assert_sums(&r);
    assert_eq!((r.ok, r.failed), (200, 0));
    let post = server.record.seen("POST");
    assert_eq!(
        (post.requests, post.bodies_ok, post.bodies_wrong),
        (100, 100, 0)
    );
}
