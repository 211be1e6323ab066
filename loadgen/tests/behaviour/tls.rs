//! `https://` runs against TLS servers written here (see `tls_support`):
//! loadgen's handshake counts (full, resumed, failed) must equal what the
//! server counted, with resumption by TLS 1.3 tickets and TLS 1.2 session
//! ids, without it (`--no-resume`, or a server that refuses), with a server
//! that resets mid-handshake and with a certificate the CA did not sign.

use reloadbench_loadgen::{LoadConfig, RetryPolicy, TlsVersion};
use reloadbench_model::load::{LoadReport, TlsReport};
use reloadbench_model::outcome::FailureClass;
use rustls::version::{TLS12, TLS13};

use crate::support::{class, run_load as run};
use crate::tls_support::{Mode, Pki, Resume, TlsServer, get};

fn config(server: &TlsServer, pki: &Pki, n: u64, c: u64) -> LoadConfig {
    let mut cfg = crate::support::config(&server.url(), n, c);
    cfg.tls.ca_file = Some(pki.ca_file.clone());
    cfg
}

/// The report's TLS block, checked against itself and the buckets: every
/// TCP connection made one handshake, which ended full, resumed or failed.
fn tls(r: &LoadReport) -> &TlsReport {
    let t = r.tls.as_ref().expect("an https run has a TLS report");
    assert_eq!(t.handshakes, t.full + t.resumed + t.failed, "{t:#?}");
    assert_eq!(t.handshakes, r.connections, "one handshake per connection");
    let full: u64 = r.buckets.iter().map(|b| b.handshakes.full).sum();
    let resumed: u64 = r.buckets.iter().map(|b| b.handshakes.resumed).sum();
    assert_eq!((full, resumed), (t.full, t.resumed), "buckets add up");
    assert_eq!(t.handshake_time.count, t.full + t.resumed);
    if r.after_retry.is_none() {
        let tls_failed =
            class(r, FailureClass::TlsHandshake) + class(r, FailureClass::TlsCertificate);
        assert_eq!(t.failed, tls_failed);
    }
    assert_eq!(r.planned, r.ok + r.failed + r.not_started);
    t
}

/// Full and resumed handshakes as the server counted them.
fn server_kinds(s: &TlsServer) -> (u64, u64) {
    (get(&s.counters.full), get(&s.counters.resumed))
}

#[tokio::test]
async fn tls13_tickets_resume_and_counts_equal_the_servers() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::Serve).await;
    let (n, c) = (200, 4);
    let r = run(config(&server, &pki, n, c)).await;
    let t = tls(&r);
    assert_eq!((r.ok, r.failed), (n, 0));
    assert_eq!((t.full, t.resumed), server_kinds(&server));
    assert_eq!(t.full + t.resumed, n, "one connection per request");
    // Each client's first connection finds no ticket yet; every later one
    // finds the two tickets each finished connection left.
    assert!((1..=c).contains(&t.full), "{t:#?}");
    assert_eq!(t.protocol.as_deref(), Some("TLSv1.3"));
    assert!(t.cipher.as_deref().unwrap().starts_with("TLS13_"), "{t:#?}");
    assert!(t.resumption);
    assert_eq!(get(&server.counters.ok), n);
}

#[tokio::test]
async fn no_resume_makes_every_handshake_full() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[&TLS13, &TLS12], Resume::Tickets, Mode::Serve).await;
    let n = 60;
    let mut cfg = config(&server, &pki, n, 3);
    cfg.tls.resume = false;
    let r = run(cfg).await;
    let t = tls(&r);
    assert_eq!(r.ok, n);
    assert_eq!((t.full, t.resumed), (n, 0));
    assert_eq!(server_kinds(&server), (n, 0));
    assert!(!t.resumption);
}

#[tokio::test]
async fn tls12_session_ids_resume_and_counts_equal_the_servers() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[&TLS12], Resume::SessionIds, Mode::Serve).await;
    let (n, c) = (120, 3);
    let mut cfg = config(&server, &pki, n, c);
    cfg.tls.version = Some(TlsVersion::Tls12);
    let r = run(cfg).await;
    let t = tls(&r);
    assert_eq!((r.ok, r.failed), (n, 0));
    assert_eq!((t.full, t.resumed), server_kinds(&server));
    assert_eq!(t.full + t.resumed, n);
    assert!(t.resumed >= n - 2 * c, "{t:#?}");
    assert_eq!(t.protocol.as_deref(), Some("TLSv1.2"));
}

#[tokio::test]
async fn a_server_that_refuses_resumption_gets_only_full_handshakes() {
    let pki = Pki::new();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let server = TlsServer::start(&pki, &[&TLS13, &TLS12], Resume::Refuse, Mode::Serve).await;
        let n = 40;
        let mut cfg = config(&server, &pki, n, 2);
        cfg.tls.version = Some(version);
        let r = run(cfg).await;
        let t = tls(&r);
        assert_eq!(r.ok, n, "{version:?}");
        assert_eq!((t.full, t.resumed), (n, 0), "{version:?}");
        assert_eq!(server_kinds(&server), (n, 0), "{version:?}");
    }
}

#[tokio::test]
async fn keep_alive_makes_one_handshake_per_client() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::Serve).await;
    let (n, c) = (300, 4);
    let mut cfg = config(&server, &pki, n, c);
    cfg.keep_alive = true;
    cfg.request_ids = true;
    let r = run(cfg).await;
    let t = tls(&r);
    assert_eq!((r.ok, r.failed), (n, 0));
    assert_eq!(t.full + t.resumed, c);
    assert_eq!(server_kinds(&server), (t.full, t.resumed));
    assert_eq!(get(&server.counters.ok), n);
}

#[tokio::test]
async fn a_reset_mid_handshake_fails_every_request_as_tls_handshake() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::ResetInHandshake).await;
    let n = 50;
    let r = run(config(&server, &pki, n, 2)).await;
    let t = tls(&r);
    assert_eq!(r.ok, 0);
    assert_eq!(class(&r, FailureClass::TlsHandshake), n, "{:?}", r.classes);
    assert_eq!(get(&server.counters.resets), n, "one reset per request");
    assert_eq!((t.full, t.resumed, t.failed), (0, 0, n));
    assert_eq!(r.ab.connect, n, "a failed handshake is ab's Connect");
    assert_eq!(t.protocol, None);
}

#[tokio::test]
async fn handshake_failures_are_detailed_by_alert_reset_eof_and_timeout() {
    use reloadbench_model::load::HandshakeFailures;
    let pki = Pki::new();
    let n = 20;
    for mode in [
        Mode::AlertInHandshake,
        Mode::ResetInHandshake,
        Mode::CloseInHandshake,
        Mode::StallInHandshake,
    ] {
        let server = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, mode).await;
        let mut cfg = config(&server, &pki, n, 2);
        if mode == Mode::StallInHandshake {
            cfg.timeout = std::time::Duration::from_millis(200);
        }
        let r = run(cfg).await;
        let t = tls(&r);
        // Still one outcome per request, in the one class.
        assert_eq!(r.ok, 0);
        assert_eq!(
            class(&r, FailureClass::TlsHandshake),
            n,
            "{mode:?}: {:?}",
            r.classes
        );
        assert_eq!(t.failed, n);
        let c = &server.counters;
        let expected = HandshakeFailures {
            alerts: if mode == Mode::AlertInHandshake {
                [("handshake_failure".to_owned(), get(&c.alerts))].into()
            } else {
                Default::default()
            },
            reset: get(&c.resets),
            eof: get(&c.closes),
            timeout: get(&c.stalls),
            other: 0,
        };
        assert_eq!(t.failed_by, expected, "{mode:?}");
        assert_eq!(
            t.failed_by.total(),
            n,
            "{mode:?}: what the server did, once each"
        );
        let line = t.failed_by_line().unwrap();
        eprintln!("{mode:?}: {line}");
    }
    // The ab block says it under the handshakes line.
    let server = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::AlertInHandshake).await;
    let r = run(config(&server, &pki, 3, 1)).await;
    assert_eq!(
        tls(&r).failed_by_line().unwrap(),
        "Handshakes failed by:   alert 3 (handshake_failure 3), reset 0, eof 0, timeout 0, other 0"
    );
    // No failure: no detail (and nothing in the JSON).
    let ok = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::Serve).await;
    let r = run(config(&ok, &pki, 3, 1)).await;
    assert!(tls(&r).failed_by_line().is_none());
    assert!(
        !serde_json::to_string(tls(&r))
            .unwrap()
            .contains("failed_by")
    );
}

#[tokio::test]
async fn a_certificate_the_ca_did_not_sign_is_rejected_and_insecure_accepts_it() {
    let pki = Pki::new();
    let other = Pki::new();
    let server = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::Serve).await;
    let n = 20;
    let mut cfg = config(&server, &other, n, 2);
    let r = run(cfg.clone()).await;
    let t = tls(&r);
    assert_eq!(
        class(&r, FailureClass::TlsCertificate),
        n,
        "{:?}",
        r.classes
    );
    assert_eq!((r.ok, t.failed), (0, n));
    assert_eq!(
        get(&server.counters.failed),
        n,
        "the server saw each rejected"
    );
    assert_eq!(get(&server.counters.ok), 0);

    cfg.tls.ca_file = None;
    cfg.tls.insecure = true;
    let r = run(cfg).await;
    let t = tls(&r);
    assert_eq!((r.ok, r.failed, t.failed), (n, 0, 0));
    assert_eq!(get(&server.counters.ok), n);
}

#[tokio::test]
async fn a_retry_whose_handshake_fails_is_a_failure_of_the_retry() {
    let pki = Pki::new();
    let server =
        TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::OneResponseThenReset).await;
    let mut cfg = config(&server, &pki, 2, 1);
    cfg.keep_alive = true;
    cfg.retry = RetryPolicy::Both;
    let r = run(cfg).await;
    let t = tls(&r);
    // Request 1 is answered; request 2 goes out on the connection the server
    // closed, fails before any response byte and is retried on a new
    // connection, whose handshake the server resets.
    assert_eq!((r.ok, r.failed, r.retries), (1, 1, 1), "{:?}", r.classes);
    assert!(r.classes[0].class.before_response(), "{:?}", r.classes);
    let after = r.after_retry.as_ref().unwrap();
    assert_eq!((after.ok, after.failed), (1, 1));
    assert_eq!(
        after.failed_by_class.get(&FailureClass::TlsHandshake),
        Some(&1),
        "{after:?}"
    );
    assert_eq!((t.full, t.resumed, t.failed), (1, 0, 1));
    assert_eq!(get(&server.counters.resets), 1);
    assert_eq!(get(&server.counters.accepted), 2);
}

#[tokio::test]
async fn rate_and_source_addresses_work_over_tls() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[&TLS13], Resume::Tickets, Mode::Serve).await;
    let n = 60;
    let mut cfg = config(&server, &pki, n, 4);
    cfg.rate = Some(600.0);
    cfg.source_ips = 3;
    let r = run(cfg).await;
    let t = tls(&r);
    assert_eq!((r.ok, r.failed), (n, 0));
    assert!(r.schedule.is_some(), "rate mode");
    assert_eq!((t.full, t.resumed), server_kinds(&server));
    assert_eq!(t.full + t.resumed, n);
    assert_eq!(
        server.counters.peers.lock().unwrap().len(),
        3,
        "127.0.0.1..=3"
    );
}
