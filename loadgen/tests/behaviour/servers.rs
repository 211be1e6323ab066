//! One misbehaving server per failure class: the load generator must count
//! exactly what the server did, and `planned = ok + failed + not_started`.

use std::time::Duration;

use reloadbench_loadgen::start;
use reloadbench_model::load::LoadReport;
use reloadbench_model::outcome::FailureClass;

use crate::support::{Behaviour, Counters, TestServer, class, config, run_load as run, wait};

fn assert_identity(r: &LoadReport) {
    let opened_in_buckets: u64 = r.buckets.iter().map(|b| b.connections).sum();
    assert_eq!(
        opened_in_buckets, r.connections,
        "every connection opened is in one bucket"
    );
    assert_eq!(
        r.planned,
        r.ok + r.failed + r.not_started,
        "identity: {r:#?}"
    );
    let by_class: u64 = r.classes.iter().map(|c| c.count).sum();
    assert_eq!(by_class, r.failed);
    assert_eq!(r.ab.total(), r.failed);
    let in_buckets: u64 = r.buckets.iter().map(|b| b.ok).sum();
    assert_eq!(in_buckets, r.ok);
    let failed_in_buckets: u64 = r.buckets.iter().map(|b| b.failed_total()).sum();
    assert_eq!(failed_in_buckets, r.failed);
    assert_eq!(r.failures.len() as u64 + r.failures_dropped, r.failed);
}

#[tokio::test]
async fn healthy_server_all_ok_with_and_without_keep_alive() {
    let server = TestServer::start(Behaviour::Respond { body: 1000 });
    let r = run(config(&server.url(), 300, 4)).await;
    assert_identity(&r);
    assert_eq!((r.ok, r.failed, r.planned), (300, 0, 300));
    assert_eq!(r.connections, 300);
    assert_eq!(r.body_bytes, 300 * 1000);
    assert_eq!(r.document_length, Some(1000));
    assert_eq!(r.server_software.as_deref(), Some("test"));
    assert_eq!(Counters::get(&server.counters.ok), 300);
    let mut cfg = config(&server.url(), 300, 4);
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!((r.ok, r.failed), (300, 0));
    assert_eq!(r.connections, 4);
    assert_eq!(r.latency.count, 300);
}

#[tokio::test]
async fn chunked_bodies_are_read_to_the_end_on_kept_alive_connections() {
    // Bare LF line endings are read too (loadgen scans with `LineEndings::CrlfOrLf`).
    for bare_lf in [false, true] {
        let server = TestServer::start(Behaviour::Chunked { chunks: 7, bare_lf });
        let mut cfg = config(&server.url(), 100, 2);
        cfg.keep_alive = true;
        let r = run(cfg).await;
        assert_identity(&r);
        let summary = format!(
            "bare_lf {bare_lf}: {:?} {:?}",
            r.classes,
            r.failures.first()
        );
        assert_eq!((r.ok, r.failed), (100, 0), "{summary}");
        // Kept alive: one connection per client at most (the second worker thread may
        // start after the first client took every ticket), as the server counted.
        assert!((1..=2).contains(&r.connections), "{summary}");
        assert_eq!(
            Counters::get(&server.counters.accepted),
            r.connections,
            "{summary}"
        );
        assert_eq!(Counters::get(&server.counters.ok), 100, "{summary}");
        assert_eq!(r.document_length, Some(700), "{summary}");
        assert_eq!(r.body_bytes, 100 * 700, "{summary}");
    }
}

#[tokio::test]
async fn source_ips_spread_client_addresses() {
    let server = TestServer::start(Behaviour::Respond { body: 10 });
    let mut cfg = config(&server.url(), 40, 4);
    cfg.source_ips = 4;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(r.ok, 40);
    let peers = server.counters.peers.lock().unwrap().clone();
    let expected: std::collections::HashSet<std::net::IpAddr> = (1..=4)
        .map(|i| std::net::IpAddr::from([127, 0, 0, i]))
        .collect();
    assert_eq!(peers, expected);
}

#[tokio::test]
async fn refused_connects_are_counted_once_and_backed_off() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let r = run(config(&url, 40, 2)).await;
    assert_identity(&r);
    assert_eq!(class(&r, FailureClass::ConnectRefused), 40);
    assert_eq!((r.ok, r.failed, r.ab.connect), (0, 40, 40));
    assert!(r.refused_backoff_ns > 0);
    assert_eq!(r.failed_on_reused, 0);
}

#[tokio::test]
async fn full_accept_queue_gives_connect_timeouts() {
    // A listener that never accepts: once its queue is full, SYNs are dropped.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let mut cfg = config(&url, 8, 4);
    cfg.timeout = Duration::from_millis(300);
    let r = run(cfg).await;
    assert_identity(&r);
    let (connect_timeouts, timeouts) = (
        class(&r, FailureClass::ConnectTimeout),
        class(&r, FailureClass::Timeout),
    );
    assert!(connect_timeouts > 0, "{:?}", r.classes);
    // Connections that made it into the queue time out waiting for a response.
    assert_eq!(connect_timeouts + timeouts, 8, "{:?}", r.classes);
    drop(listener);
}

#[tokio::test]
async fn reset_before_response_is_reset() {
    let server = TestServer::start(Behaviour::ResetAfterRequest);
    let r = run(config(&server.url(), 50, 3)).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.resets), 50);
    assert_eq!(class(&r, FailureClass::Reset), 50);
    assert_eq!(r.ab.receive, 50);
}

/// Connections waiting in the accept queue of the listener on `port`
/// (`rx_queue` of its LISTEN line in /proc/net/tcp).
fn accept_queue_len(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok())
            .flatten()
    })
}

#[tokio::test]
async fn queued_connections_reset_by_a_closing_listener_are_resets() {
    // The naive reload's loss: the listener closes with connections in its
    // accept queue. The client may see that reset in connect, in the write or
    // in the first read; each is counted as `reset`.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let run = start(config(&format!("http://{addr}/"), 4, 4)).unwrap();
    let queued = async {
        while accept_queue_len(addr.port()) != Some(4) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(wait(), queued)
        .await
        .expect("4 connections queued");
    drop(listener);
    let r = tokio::time::timeout(wait(), run.finish())
        .await
        .unwrap()
        .unwrap();
    assert_identity(&r);
    assert_eq!(class(&r, FailureClass::Reset), 4, "{:?}", r.classes);
    assert_eq!((r.ab.receive, r.failed_on_reused), (4, 0));
}

#[tokio::test]
async fn short_body_is_truncated() {
    let server = TestServer::start(Behaviour::ShortBody {
        promised: 5000,
        sent: 100,
    });
    let r = run(config(&server.url(), 50, 3)).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.short_bodies), 50);
    assert_eq!(class(&r, FailureClass::Truncated), 50);
    assert_eq!(r.ab.length, 50);
    assert_eq!(r.ok, 0);
}

#[tokio::test]
async fn reset_after_part_of_the_head_is_truncated() {
    let server = TestServer::start(Behaviour::ResetMidHead);
    let r = run(config(&server.url(), 40, 2)).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.resets), 40);
    assert_eq!(class(&r, FailureClass::Truncated), 40, "{:?}", r.classes);
    assert_eq!(r.ab.length, 40);
}

#[tokio::test]
async fn request_left_unread_and_reset_is_a_write_error() {
    // A body larger than both socket buffers: the write is still going on
    // when the server closes (FIN, then a reset as the request is unread).
    let server = TestServer::start(Behaviour::CloseUnread);
    let mut cfg = config(&server.url(), 6, 2);
    cfg.method = "POST".to_owned();
    cfg.body = Some(vec![b'p'; 32 << 20]);
    cfg.content_type = Some("text/plain".to_owned());
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.unread_closes), 6);
    assert_eq!(class(&r, FailureClass::WriteError), 6, "{:?}", r.classes);
    assert_eq!((r.ab.write_errors, r.failed_on_reused), (6, 0));
}

#[tokio::test]
async fn bad_gateway_is_http_5xx() {
    let server = TestServer::start(Behaviour::BadGateway);
    let mut cfg = config(&server.url(), 60, 3);
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.bad_gateway), 60);
    assert_eq!(class(&r, FailureClass::Http5xx), 60);
    assert_eq!(r.ab.non_2xx, 60);
    // A 502 is a complete response: the keep-alive connection stays usable.
    assert_eq!(r.connections, 3);
}

#[tokio::test]
async fn not_found_is_http_other_and_garbage_is_bad_response() {
    let server = TestServer::start(Behaviour::NotFound);
    let mut cfg = config(&server.url(), 30, 2);
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.not_found), 30);
    assert_eq!((class(&r, FailureClass::HttpOther), r.ab.non_2xx), (30, 30));
    let server = TestServer::start(Behaviour::Garbage);
    let r = run(config(&server.url(), 30, 2)).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.garbage), 30);
    assert_eq!(
        (class(&r, FailureClass::BadResponse), r.ab.exceptions),
        (30, 30)
    );
}

#[tokio::test]
async fn stalled_responses_time_out() {
    let server = TestServer::start(Behaviour::Stall);
    let mut cfg = config(&server.url(), 6, 3);
    cfg.timeout = Duration::from_millis(300);
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.stalled), 6);
    assert_eq!(class(&r, FailureClass::Timeout), 6);
    assert!(
        r.failures
            .iter()
            .all(|f| f.t_ns - f.start_ns >= 300_000_000)
    );
}

#[tokio::test]
async fn idle_keep_alive_close_fails_next_request_on_reused_connection() {
    let server = TestServer::start(Behaviour::CloseIdleAfter(3));
    let mut cfg = config(&server.url(), 10, 1);
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    // Connection 1: requests 1-3 ok, 4 fails; connection 2: 5-7 ok, 8 fails; connection 3: 9-10 ok.
    assert_eq!((r.ok, r.failed, r.failed_on_reused), (8, 2, 2));
    assert_eq!(Counters::get(&server.counters.ok), 8);
    assert_eq!(Counters::get(&server.counters.idle_closes), 2);
    for c in &r.classes {
        assert!(
            matches!(
                c.class,
                FailureClass::Closed | FailureClass::Reset | FailureClass::WriteError
            ),
            "{c:?}"
        );
        assert_eq!(c.on_reused, c.count);
    }
    assert!(r.failures.iter().all(|f| f.reused));
}

#[tokio::test]
async fn stop_counts_the_rest_as_not_started() {
    let server = TestServer::start(Behaviour::Respond { body: 10 });
    let run = start(config(&server.url(), 1_000_000, 2)).unwrap();
    tokio::time::timeout(wait(), run.wait_completed(100))
        .await
        .unwrap();
    assert!(run.progress().completed >= 100);
    run.stop();
    let r = tokio::time::timeout(wait(), run.finish())
        .await
        .unwrap()
        .unwrap();
    assert_identity(&r);
    assert_eq!(r.planned, 1_000_000);
    assert!(r.ok >= 100 && r.not_started > 0);
}

#[tokio::test]
async fn duration_limit_ends_the_run() {
    let server = TestServer::start(Behaviour::Respond { body: 10 });
    let mut cfg = config(&server.url(), 1, 2);
    cfg.requests = None;
    cfg.duration = Some(Duration::from_millis(300));
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(r.planned, r.ok);
    assert!(r.ok > 0);
    assert!(r.buckets.len() >= 3, "{} buckets", r.buckets.len());
}

#[tokio::test]
async fn rate_mode_keeps_schedule_and_counts_planned() {
    let server = TestServer::start(Behaviour::Respond { body: 10 });
    let mut cfg = config(&server.url(), 1, 4);
    cfg.requests = None;
    cfg.duration = Some(Duration::from_millis(500));
    cfg.rate = Some(200.0);
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(r.planned, 100);
    assert!(r.schedule.is_some());
}

#[tokio::test]
async fn rate_mode_reports_falling_behind() {
    let server = TestServer::start(Behaviour::Slow {
        delay: Duration::from_millis(50),
    });
    let mut cfg = config(&server.url(), 1, 1);
    cfg.requests = None;
    cfg.duration = Some(Duration::from_millis(500));
    cfg.rate = Some(100.0);
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(r.planned, 50);
    let s = r.schedule.clone().unwrap();
    assert!(
        s.fell_behind && s.late_starts > 0 && r.not_started > 0,
        "{s:?} {}",
        r.not_started
    );
    // Latency counts from the intended start: the queueing shows up.
    assert!(r.latency.max_us > 100_000, "{}", r.latency.max_us);
}

#[tokio::test]
async fn hdr_log_has_one_histogram_per_bucket() {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let server = TestServer::start(Behaviour::Respond { body: 10 });
    let mut cfg = config(&server.url(), 200, 2);
    cfg.bucket = Duration::from_millis(10);
    let run = start(cfg).unwrap();
    let outcome = tokio::time::timeout(wait(), run.finish_with_histograms())
        .await
        .unwrap()
        .unwrap();
    let mut log = Vec::new();
    reloadbench_loadgen::output::write_hdr_log(&outcome, &mut log).unwrap();
    let mut total = 0;
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&log) {
        if let LogEntry::Interval(h) = entry.unwrap() {
            let bytes = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> = Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .unwrap();
            total += hist.len();
            intervals += 1;
        }
    }
    assert_eq!(intervals, outcome.report.buckets.len());
    assert_eq!(total, 200);
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for b in s.bytes().filter(|b| *b != b'=') {
        let v = ALPHABET.iter().position(|a| *a == b).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test]
async fn interim_1xx_responses_are_skipped_before_the_final_one() {
    for keep_alive in [true, false] {
        let server = TestServer::start(Behaviour::Interim {
            codes: &[100, 103, 102],
        });
        let mut cfg = config(&server.url(), 200, 4);
        cfg.keep_alive = keep_alive;
        let r = run(cfg).await;
        assert_identity(&r);
        let summary = format!(
            "keep-alive {keep_alive}: {:?} {:?}",
            r.classes,
            r.failures.first()
        );
        assert_eq!((r.ok, r.failed), (200, 0), "{summary}");
        assert_eq!(r.ok, Counters::get(&server.counters.ok), "{summary}");
        assert_eq!(Counters::get(&server.counters.interim), 3 * 200);
        assert_eq!(r.body_bytes, 2 * 200, "only the final bodies: {summary}");
        assert_eq!(
            r.total_bytes,
            Counters::get(&server.counters.written),
            "every byte the server wrote, interim heads included: {summary}"
        );
        let connections = if keep_alive { 4 } else { 200 };
        assert_eq!(
            r.connections, connections,
            "framing held across the interim heads"
        );
        assert_eq!(Counters::get(&server.counters.accepted), connections);
    }
}

#[tokio::test]
async fn a_101_is_final_only_when_the_request_asked_to_upgrade() {
    // Not asked: a protocol switch nobody asked for is a bad response.
    let server = TestServer::start(Behaviour::Switch);
    let mut cfg = config(&server.url(), 20, 2);
    cfg.keep_alive = true;
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!(Counters::get(&server.counters.switches), 20);
    assert_eq!(class(&r, FailureClass::BadResponse), 20, "{:?}", r.classes);
    assert_eq!((r.ok, r.failed, r.ab.exceptions), (0, 20, 20));

    // Asked (`-H 'Upgrade: test' -H 'Connection: upgrade'`): the 101 is the
    // answer, a success, and its connection is never reused.
    let server = TestServer::start(Behaviour::Switch);
    let mut cfg = config(&server.url(), 20, 2);
    cfg.keep_alive = true;
    cfg.headers = vec![
        ("Upgrade".to_owned(), "test".to_owned()),
        ("Connection".to_owned(), "upgrade".to_owned()),
    ];
    let r = run(cfg).await;
    assert_identity(&r);
    assert_eq!((r.ok, r.failed), (20, 0), "{:?}", r.classes);
    assert_eq!(r.ok, Counters::get(&server.counters.switches));
    assert_eq!(r.body_bytes, 0);
    assert_eq!(r.total_bytes, Counters::get(&server.counters.written));
    assert_eq!(r.connections, 20, "one connection per upgrade");
}
