//! Many connections: memory per connection, the open-file limit and the
//! source ports a run needs.

use nix::sys::resource::{UsageWho, getrusage};
use reloadbench_model::load::LoadReport;
use tokio::process::Command;

use crate::cli::{loadgen, run};
use crate::support::{Behaviour, Counters, TestServer};

/// Connections of the memory test.
const CONNECTIONS: u64 = 2_000;
/// Ceiling of the loadgen process's peak RSS for [`CONNECTIONS`] connections
/// (a debug build). Generous, so that it does not flake: about 3 times what it
/// measures; a 64 KiB buffer per connection alone would be 128 MiB.
const MAX_RSS_KIB: i64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_two_thousand_keep_alive_connections_in_bounded_memory() {
    // The server side of the connections lives in this process.
    let limit = reloadbench_model::fd_limit::raise().unwrap();
    assert!(
        limit.soft > 2 * CONNECTIONS + 300,
        "open-file limit {limit:?}"
    );
    let server = TestServer::start(Behaviour::Respond { body: 1024 });
    let requests = 10 * CONNECTIONS;
    let out = loadgen(&[
        "-k",
        "-q",
        "-c",
        &CONNECTIONS.to_string(),
        "-n",
        &requests.to_string(),
        "--json",
        "-",
        &server.url(),
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: LoadReport = serde_json::from_str(&out.stdout).unwrap();
    let c = &server.counters;
    assert_eq!((report.ok, report.failed), (requests, 0));
    // Every client held its own connection for the whole run.
    assert_eq!(Counters::get(&c.accepted), CONNECTIONS);
    assert_eq!(report.connections, CONNECTIONS);
    assert_eq!(Counters::get(&c.ok), requests);
    // loadgen is the only child this test process has waited for.
    let rss_kib = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss();
    assert!(
        rss_kib > 0 && rss_kib < MAX_RSS_KIB,
        "loadgen's peak RSS {rss_kib} KiB for {CONNECTIONS} connections"
    );
}

#[tokio::test]
async fn a_low_soft_limit_is_raised_and_said() {
    let server = TestServer::start(Behaviour::Respond { body: 10 });
    let url = server.url();
    let out = run(Command::new("sh").args([
        "-c",
        r#"ulimit -Sn 64 && exec "$0" -k -c 100 -n 300 "$1""#,
        env!("CARGO_BIN_EXE_loadgen"),
        &url,
    ]))
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("loadgen: open-file limit raised from 64 to"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("Complete requests:      300"),
        "{}",
        out.stdout
    );
    assert_eq!(Counters::get(&server.counters.ok), 300);
}

#[tokio::test]
async fn a_hard_limit_too_low_is_refused_with_the_number_needed() {
    let out = run(Command::new("sh").args([
        "-c",
        r#"ulimit -n 600 && exec "$0" -k -c 1000 -n 1000 http://127.0.0.1:9/"#,
        env!("CARGO_BIN_EXE_loadgen"),
    ]))
    .await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1000 connections need about 1256 open files, but the hard limit is 600"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn keep_alive_connections_beyond_the_source_ports_are_refused() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut it = range.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    let ports = it.next().map(|low| it.next().unwrap() - low + 1).unwrap();
    let connections = (ports + 1).to_string();
    let out = loadgen(&[
        "-k",
        "-c",
        &connections,
        "-n",
        &connections,
        "http://127.0.0.1:9/",
    ])
    .await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{connections} keep-alive connections to 127.0.0.1:9 need 2 source addresses (--source-ips 2"
        )),
        "{}",
        out.stderr
    );
}
