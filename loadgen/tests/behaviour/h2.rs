//! `--h2` runs against the raw-frame HTTP/2 server of `h2_support`: every
//! count loadgen reports (GOAWAYs, streams refused, reset, lost, protocol
//! errors, retries, reconnects, streams in flight) must equal what that
//! server did; and a normal run against the built-in origin's h2c, and one
//! over TLS with ALPN `h2`.

use reloadbench_loadgen::LoadConfig;
use reloadbench_model::load::{H2Report, LoadReport};
use reloadbench_model::outcome::FailureClass;

use crate::h2_support::{H2Server, H2Setup, Plan, n};
use crate::support::{class, run_load as run};
use crate::tls_support::Pki;

/// ENHANCE_YOUR_CALM.
const CALM: u32 = 0xb;

fn config(url: &str, requests: u64, connections: u64, streams: u64) -> LoadConfig {
    let mut cfg = crate::support::config(url, requests, connections);
    cfg.h2 = true;
    cfg.streams = streams;
    cfg.request_ids = true;
    cfg
}

/// The report's HTTP/2 block, checked against itself and the buckets.
fn h2(r: &LoadReport) -> &H2Report {
    let h = r.h2.as_ref().expect("an --h2 run has an h2 report");
    assert_eq!(h.goaway, h.goaway_graceful + h.goaway_error, "{h:#?}");
    assert_eq!(h.reset, h.reset_codes.values().sum::<u64>(), "{h:#?}");
    let goaways: u64 = r.buckets.iter().map(|b| b.goaways).sum();
    assert_eq!(goaways, h.goaway, "buckets add up");
    assert_eq!(r.planned, r.ok + r.failed + r.not_started);
    if !h.retry_refused {
        assert_eq!(h.refused, class(r, FailureClass::GoawayRefused));
    }
    assert_eq!(h.reset, class(r, FailureClass::StreamReset));
    assert_eq!(h.lost, class(r, FailureClass::StreamLost));
    assert_eq!(h.protocol_errors, class(r, FailureClass::ProtocolError));
    h
}

/// GOAWAY on the first three connections after each had `batch` streams
/// open, keeping one: the rest are refused, and loadgen's counts are the
/// server's.
async fn goaway_after_k_streams(code: u32) {
    let (batch, keep) = (4, 1);
    let server = H2Server::start(H2Setup {
        plans: vec![Plan::Goaway { keep, code }; 3],
        then: Plan::Serve,
        batch,
        reset_every: None,
    })
    .await;
    let r = run(config(&server.url(), 40, 1, batch as u64)).await;
    server.all_closed().await;
    let c = &server.counters;
    let h = h2(&r);
    let (graceful, error) = if code == 0 { (3, 0) } else { (0, 3) };
    assert_eq!(
        (n(&c.goaway_graceful), n(&c.goaway_error)),
        (graceful, error)
    );
    assert_eq!((h.goaway_graceful, h.goaway_error), (graceful, error));
    // Each GOAWAY kept the lowest stream of its batch: stream 1.
    assert_eq!(*c.last_ids.lock().unwrap(), vec![1, 1, 1]);
    assert_eq!(n(&c.refused), 3 * (batch - keep) as u64);
    assert_eq!(h.refused, n(&c.refused), "{h:#?}");
    assert_eq!(r.ok, n(&c.answered));
    assert_eq!((r.ok, r.failed), (40 - h.refused, h.refused));
    assert_eq!(
        h.reconnects,
        n(&c.accepted) - 1,
        "a new connection after each GOAWAY"
    );
    assert_eq!(r.connections, n(&c.accepted));
    // A refusal is safe to retry, whatever the method.
    assert_eq!(r.failed_retryable, h.refused);
    assert_eq!(r.ab.receive, h.refused);
    assert_eq!((h.lost, h.reset, h.protocol_errors), (0, 0, 0));
}

#[tokio::test]
async fn graceful_goaway_after_k_streams_counts_equal_the_servers() {
    goaway_after_k_streams(0).await;
}

#[tokio::test]
async fn goaway_with_an_error_after_k_streams_counts_equal_the_servers() {
    goaway_after_k_streams(CALM).await;
}

#[tokio::test]
async fn retry_refused_retries_each_refused_stream_once_and_all_end_ok() {
    let batch = 5;
    let server = H2Server::start(H2Setup {
        plans: vec![Plan::Goaway { keep: 2, code: 0 }],
        then: Plan::Serve,
        batch,
        reset_every: None,
    })
    .await;
    let mut cfg = config(&server.url(), 30, 1, batch as u64);
    cfg.retry_refused = true;
    let r = run(cfg).await;
    server.all_closed().await;
    let c = &server.counters;
    let h = h2(&r);
    assert_eq!(n(&c.refused), 3);
    assert_eq!(h.refused, 3);
    assert_eq!(r.retries, 3, "one retry per refused stream");
    assert_eq!((r.ok, r.failed), (30, 0));
    assert_eq!(n(&c.answered), 30);
    assert!(r.to_owned().h2.unwrap().retry_refused);
}

#[tokio::test]
async fn every_nth_stream_reset_counts_equal_the_servers_by_code() {
    let server = H2Server::start(H2Setup {
        reset_every: Some((5, CALM)),
        ..H2Setup::serve()
    })
    .await;
    let r = run(config(&server.url(), 100, 2, 3)).await;
    server.all_closed().await;
    let h = h2(&r);
    assert_eq!(server.resets(CALM), 20);
    assert_eq!(h.reset, 20);
    assert_eq!(h.reset_codes.get("ENHANCE_YOUR_CALM"), Some(&20), "{h:#?}");
    assert_eq!(r.ok, n(&server.counters.answered));
    assert_eq!((r.ok, r.failed), (80, 20));
    assert_eq!(h.goaway, 0);
    assert_eq!(
        r.failed_retryable, 0,
        "a reset stream may have been processed"
    );
}

#[tokio::test]
async fn a_connection_closed_with_streams_open_loses_exactly_them() {
    let batch = 4;
    let server = H2Server::start(H2Setup {
        plans: vec![Plan::Close; 2],
        then: Plan::Serve,
        batch,
        reset_every: None,
    })
    .await;
    let r = run(config(&server.url(), 24, 1, batch as u64)).await;
    server.all_closed().await;
    let c = &server.counters;
    let h = h2(&r);
    assert_eq!(n(&c.open_at_close), 8);
    assert_eq!(h.lost, 8, "{h:#?}");
    assert_eq!((r.ok, r.failed), (16, 8));
    assert_eq!(r.ok, n(&c.answered));
    assert_eq!(h.goaway, 0, "no GOAWAY covered them");
    assert_eq!(h.reconnects, 2);
}

#[tokio::test]
async fn a_frame_on_stream_zero_is_a_protocol_error_of_every_open_stream() {
    let batch = 3;
    let server = H2Server::start(H2Setup {
        plans: vec![Plan::DataOnStreamZero],
        then: Plan::Serve,
        batch,
        reset_every: None,
    })
    .await;
    let r = run(config(&server.url(), 12, 1, batch as u64)).await;
    server.all_closed().await;
    let c = &server.counters;
    let h = h2(&r);
    assert_eq!(n(&c.open_at_violation), 3);
    assert_eq!(h.protocol_errors, 3, "{h:#?}");
    assert_eq!((r.ok, r.failed), (9, 3));
    assert_eq!(r.ok, n(&c.answered));
    assert_eq!(r.ab.exceptions, 3);
    // The client closed that connection with its own GOAWAY(PROTOCOL_ERROR)
    // (and may say a graceful GOAWAY when it closes the others).
    let errors: Vec<u32> = c
        .client_goaways
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|code| *code != 0)
        .collect();
    assert_eq!(errors, vec![0x1]);
    assert_eq!(h.goaway, 0, "received GOAWAYs only");
}

#[tokio::test]
async fn streams_are_really_in_flight_at_once() {
    let batch = 8;
    let server = H2Server::start(H2Setup {
        plans: Vec::new(),
        then: Plan::Batch,
        batch,
        reset_every: None,
    })
    .await;
    // 1 connection × 8 streams, 64 requests: 8 batches of 8. (With two
    // connections, how the requests split between them is up to the
    // scheduler, and a last batch of fewer than 8 would never be answered.)
    let r = run(config(&server.url(), 64, 1, batch as u64)).await;
    server.all_closed().await;
    let c = &server.counters;
    assert_eq!(n(&c.max_open), 8, "the server waited for 8 open streams");
    assert_eq!((r.ok, r.failed), (64, 0));
    assert_eq!(n(&c.accepted), 1);
    assert_eq!(h2(&r).reconnects, 0);
}

#[tokio::test]
async fn a_run_against_the_origins_h2c_fails_nothing_and_the_origin_answered_each() {
    let origin = reloadbench_origin::Origin::bind(reloadbench_origin::OriginConfig {
        body_bytes: 1000,
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("http://{}/", origin.addr());
    let r = run(config(&url, 500, 4, 5)).await;
    let l = origin.ledger_after_shutdown().await;
    let h = h2(&r);
    assert_eq!((r.ok, r.failed), (500, 0));
    assert_eq!(l.answered, 500);
    assert_eq!(l.answered_ids, vec![[0, 500]], "every id answered once");
    assert_eq!(r.body_bytes, 500 * 1000);
    assert_eq!(r.document_length, Some(1000));
    assert!(r.total_bytes > r.body_bytes, "frames on the wire counted");
    assert_eq!(r.connections, 4);
    assert_eq!((h.goaway, h.reconnects), (0, 0));
}

#[tokio::test]
async fn h2_over_tls_negotiates_alpn_h2() {
    let pki = Pki::new();
    let server = H2Server::start_with(
        H2Setup::serve(),
        Some(pki.server_config(&[b"h2", b"http/1.1"])),
    )
    .await;
    let mut cfg = config(&server.url(), 50, 2, 2);
    cfg.tls.ca_file = Some(pki.ca_file.clone());
    let r = run(cfg).await;
    server.all_closed().await;
    assert_eq!((r.ok, r.failed), (50, 0));
    assert_eq!(r.ok, n(&server.counters.answered));
    let t = r.tls.as_ref().unwrap();
    assert_eq!((t.full + t.resumed, t.failed), (2, 0));
    h2(&r);
}

/// Runs 50 requests over TLS to a server offering `alpn`, which must fail
/// the run with a clear error.
async fn alpn_refused(alpn: &[&[u8]], chosen: &str) {
    let pki = Pki::new();
    let server = H2Server::start_with(H2Setup::serve(), Some(pki.server_config(alpn))).await;
    let mut cfg = config(&server.url(), 50, 1, 1);
    cfg.tls.ca_file = Some(pki.ca_file.clone());
    let run = reloadbench_loadgen::start(cfg).unwrap();
    let e = tokio::time::timeout(crate::support::wait(), run.finish())
        .await
        .expect("ends")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did not select HTTP/2 in ALPN"), "{e}");
    assert!(e.contains(chosen), "{e}");
    assert_eq!(n(&server.counters.answered), 0);
}

#[tokio::test]
async fn a_tls_server_that_refuses_alpn_h2_fails_the_run_clearly() {
    // rustls answers an ALPN it does not offer with no_application_protocol.
    alpn_refused(&[b"http/1.1"], "no_application_protocol").await;
}

#[tokio::test]
async fn a_tls_server_without_alpn_fails_the_run_clearly() {
    alpn_refused(&[], "it chose none").await;
}

#[tokio::test]
async fn the_binary_prints_the_h2_lines_and_json_with_the_servers_counts() {
    let batch = 4;
    let server = H2Server::start(H2Setup {
        plans: vec![Plan::Goaway { keep: 1, code: 0 }; 3],
        then: Plan::Serve,
        batch,
        reset_every: None,
    })
    .await;
    let url = server.url();
    let args = [
        "--h2",
        "-n",
        "40",
        "--streams",
        "4",
        "-q",
        "--json",
        "-",
        &url,
    ];
    let out = crate::cli::loadgen(&args).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    server.all_closed().await;
    let refused = n(&server.counters.refused);
    assert_eq!(refused, 9);
    let text = &out.stderr;
    for line in [
        "HTTP/2 streams:         4 per connection".to_owned(),
        "GOAWAY received:        3 (graceful 3, with error 0)".to_owned(),
        format!("Streams refused by GOAWAY: {refused}"),
        "Streams reset:          0".to_owned(),
        "Reconnects:             3 (after a GOAWAY or a closed connection)".to_owned(),
        format!("  refused by GOAWAY     {refused:>9}"),
        format!("   (Connect: 0, Receive: {refused}, Length: 0, Exceptions: 0)"),
    ] {
        assert!(text.contains(&line), "{line:?} in\n{text}");
    }
    let r: LoadReport = serde_json::from_str(&out.stdout).unwrap();
    let h = h2(&r);
    assert_eq!((h.goaway, h.refused), (3, refused));
    assert!(out.stdout.contains("\"h2_goaway\""), "{}", out.stdout);
}

#[tokio::test]
async fn h2_usage_errors_exit_2() {
    for (args, needle) in [
        (&["--streams", "2", "http://127.0.0.1:1/"][..], "--h2"),
        (&["--retry-refused", "http://127.0.0.1:1/"][..], "--h2"),
        (
            &["--h2", "-H", "Connection: close", "http://127.0.0.1:1/"][..],
            "HTTP/2 forbids",
        ),
        (
            &["--h2", "--retry-safe", "http://127.0.0.1:1/"][..],
            "--retry-refused",
        ),
    ] {
        let out = crate::cli::loadgen(args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}
