//! The target port goes away mid-run and comes back on the same port: the run
//! completes all its requests, reports the refused connects, and the identity holds.

use std::time::Duration;

use reloadbench_loadgen::{LoadConfig, start};
use reloadbench_model::outcome::FailureClass;

use crate::support::{Behaviour, Counters, TestServer, scaled, wait};

#[tokio::test]
async fn heavy_port_gone_and_back_completes_all_requests() {
    let mut server = TestServer::start(Behaviour::Respond { body: 500 });
    let mut cfg = LoadConfig::new(&server.url()).unwrap();
    cfg.requests = Some(2000);
    cfg.concurrency = 4;
    cfg.timeout = scaled(Duration::from_secs(20));
    let run = start(cfg).unwrap();

    tokio::time::timeout(wait(), run.wait_completed(300))
        .await
        .unwrap();
    server.pause().await;
    let at_pause = run.progress();
    // While nothing listens, only failures complete; wait for 40 of them.
    tokio::time::timeout(wait(), run.wait_completed(at_pause.completed + 40))
        .await
        .unwrap();
    server.resume();

    let r = tokio::time::timeout(wait(), run.finish())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.planned, 2000);
    assert_eq!(r.not_started, 0);
    assert_eq!(r.ok + r.failed, 2000, "{r:#?}");
    let refused = r
        .classes
        .iter()
        .find(|c| c.class == FailureClass::ConnectRefused)
        .map_or(0, |c| c.count);
    assert!(refused > 0, "{:?}", r.classes);
    assert_eq!(r.ok, Counters::get(&server.counters.ok));
    assert!(r.refused_backoff_ns > 0);
    let c = r
        .classes
        .iter()
        .find(|c| c.class == FailureClass::ConnectRefused)
        .unwrap();
    assert!(c.first_ns <= c.last_ns);
}
