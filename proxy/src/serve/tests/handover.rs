//! Two generations on one listening socket under load from the load generator:
//! the old one drains while the new one serves, and no request fails.

use super::*;

/// Runs `requests` requests from 20 clients; the first generation drains after a third.
async fn drain_under_load(keep_alive: bool, requests: u64) {
    let origin = origin(32_987).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let shared_socket = listener.try_clone().unwrap();
    let cfg = Arc::new(Config::new(vec![addr], vec![origin.addr()]));
    let old = Server::start(vec![listener], cfg.clone(), ID).unwrap();

    let mut load = reloadbench_loadgen::LoadConfig::new(&format!("http://{addr}/")).unwrap();
    load.concurrency = 20;
    load.requests = Some(requests);
    load.keep_alive = keep_alive;
    load.threads = 1;
    load.timeout = limit();
    let run = reloadbench_loadgen::start(load).unwrap();
    timeout(limit(), run.wait_completed(requests / 3))
        .await
        .unwrap();

    let new_id = Identity {
        pid: ID.pid,
        generation: ID.generation + 1,
    };
    let new = Server::start(vec![shared_socket], cfg, new_id).unwrap();
    let drained = timeout(limit(), old.drain()).await.unwrap();
    let report = timeout(limit() * 4, run.finish()).await.unwrap().unwrap();
    assert_eq!(report.failed, 0, "{:?} {drained:?}", report.classes);
    assert_eq!(report.ok, requests);
    assert_eq!(drained.forced, 0);
    drop(new);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_loadgen_without_keep_alive_loses_nothing_across_a_drain() {
    drain_under_load(false, 3000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_loadgen_with_keep_alive_loses_nothing_across_a_drain() {
    drain_under_load(true, 3000).await;
}
