//! A server that closes each keep-alive connection while it is idle: a naive
//! client (no retry policy) sends its next POST on the closed connection and
//! loses it; a careful one (`RetryPolicy::Safe`) sees the close before reuse
//! and opens a new connection.

use std::time::Duration;

use reloadbench_loadgen::{LoadConfig, start};
use reloadbench_model::load::{LoadReport, RetryPolicy};
use reloadbench_model::outcome::FailureClass;

use crate::support::{Behaviour, Counters, TestServer, scaled, wait};

const CLIENTS: u64 = 2;
const REQUESTS: u64 = 20;

async fn post_with_think_time(server: &TestServer, retry: RetryPolicy) -> LoadReport {
    let mut cfg = LoadConfig::new(&server.url()).unwrap();
    cfg.method = "POST".to_owned();
    cfg.body = Some(vec![b'p'; 4096]);
    cfg.keep_alive = true;
    cfg.concurrency = CLIENTS;
    cfg.requests = Some(REQUESTS);
    // The server's FIN arrives within microseconds of its response; the pause
    // leaves it time to arrive before the next request, even on a loaded machine.
    cfg.think_time = Some(scaled(Duration::from_millis(150)));
    cfg.retry = retry;
    let run = start(cfg).unwrap();
    tokio::time::timeout(wait(), run.finish())
        .await
        .expect("run ends in time")
        .unwrap()
}

#[tokio::test]
async fn a_naive_client_loses_posts_on_idle_closed_connections() {
    let server = TestServer::start(Behaviour::CloseIdleAfter(1));
    let r = post_with_think_time(&server, RetryPolicy::None).await;
    let c = &server.counters;
    // Each client: a POST on a new connection (answered, then closed by the
    // server), the next POST on that closed connection (lost, not retryable),
    // and so on.
    assert_eq!((r.ok, r.failed), (REQUESTS / 2, REQUESTS / 2));
    assert_eq!(r.ok, Counters::get(&c.ok));
    assert_eq!(r.failed_not_retryable, r.failed);
    assert_eq!(r.failed_on_reused, r.failed);
    let lost: u64 = r
        .classes
        .iter()
        .filter(|c| matches!(c.class, FailureClass::Closed | FailureClass::Reset))
        .map(|c| c.count)
        .sum();
    assert_eq!(lost, r.failed, "{:?}", r.classes);
    assert_eq!(
        r.stale_discarded, 0,
        "no look before reuse without a policy"
    );
}

#[tokio::test]
async fn a_careful_client_opens_a_new_connection_instead() {
    let server = TestServer::start(Behaviour::CloseIdleAfter(1));
    let r = post_with_think_time(&server, RetryPolicy::Safe).await;
    let c = &server.counters;
    assert_eq!((r.ok, r.failed, r.retries), (REQUESTS, 0, 0));
    assert_eq!(Counters::get(&c.ok), REQUESTS);
    // One connection per request, the server closed every one of them, and
    // each client found all but its last one closed before reusing it.
    assert_eq!(Counters::get(&c.accepted), REQUESTS);
    assert_eq!(r.connections, REQUESTS);
    assert_eq!(r.stale_discarded, REQUESTS - CLIENTS);
}
