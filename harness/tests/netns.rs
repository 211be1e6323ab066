//! A case in its own network namespace (as root): its processes are in
//! another namespace than the harness, and its kernel counters are exactly
//! its own traffic while the host's namespace is busy with other traffic.
//! With `--no-netns` the same case runs in the host's namespace.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace
//! --bins`). Skips (with a printed reason) when not root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reloadbench_model::kernel::CounterScope;
use support::{reloadbench, scenario_dir};

/// Refused connects to port 1 made by the case's `exec` action.
const N: u64 = 7;

const SCENARIO: &str = r#"
name = "netns"
[origin]
body_bytes = 100
[load]
concurrency = 4
requests = 4000
keep_alive = false
timeout = "5s"
[proxy]
kind = "reference"
[[case]]
name = "probe"
actions = [{ after_requests = 500, do = "exec", command = "bash -c 'readlink /proc/self/ns/net > {dir}/ns.txt; for i in 1 2 3 4 5 6 7; do (echo > /dev/tcp/127.0.0.1/1) 2>/dev/null; done; true'" }]
"#;

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root to run a case in its own network namespace");
    false
}

fn own_netns() -> String {
    let ino = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    format!("net:[{ino}]")
}

/// Runs the scenario while this (host-namespace) process makes refused
/// connects of its own the whole time; returns the case's report and the
/// namespace its exec action ran in.
fn run(extra: &[&str]) -> (reloadbench_model::run::CaseReport, String, u64) {
    let dir = scenario_dir("netns.toml", SCENARIO);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let noise = std::thread::spawn(move || {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap();
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            assert!(TcpStream::connect(port).is_err());
            n += 1;
            // Pacing only (not synchronisation): a few hundred a second.
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    });
    let mut args = vec!["run", "netns.toml", "-q"];
    args.extend_from_slice(extra);
    let r = reloadbench(&dir, &args, Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    let host_connects = noise.join().unwrap();
    r.assert_code(0);
    let case = r.results().cases.remove(0);
    let ns_file = std::fs::read_dir(r.out.join("cases"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path().join("ns.txt");
            p.exists().then_some(p)
        })
        .next()
        .expect("the exec action wrote ns.txt");
    let ns = std::fs::read_to_string(ns_file).unwrap().trim().to_owned();
    (case, ns, host_connects)
}

#[test]
fn heavy_a_case_runs_in_its_own_namespace_and_counts_only_its_traffic() {
    if !root() {
        return;
    }
    let (case, ns, host_connects) = run(&[]);
    assert!(host_connects > 0);
    assert_ne!(
        ns,
        own_netns(),
        "the exec action ran in the harness's namespace"
    );
    let k = case.kernel.expect("kernel counters");
    assert_eq!(k.scope, CounterScope::CaseNetns);
    // Exactly the action's refused connects: the load's all succeeded,
    // and the host's refused connects meanwhile are not counted.
    assert_eq!(case.load.failed, 0);
    assert_eq!(k.get("TcpAttemptFails"), Some(N as i64), "{:?}", k.deltas);
    assert_eq!(k.get("TcpOutRsts"), Some(N as i64), "{:?}", k.deltas);
    // Every connection opened in the namespace was accepted in it, but
    // the N probes: nothing from outside came in, nothing went out.
    let active = k.get("TcpActiveOpens").unwrap();
    let passive = k.get("TcpPassiveOpens").unwrap();
    assert_eq!(active - passive, N as i64, "{:?}", k.deltas);
    assert!(passive as u64 >= case.load.ok, "{:?}", k.deltas);
    // The action's window (trigger to the load end) holds the probes.
    let a = case.actions[0].kernel.as_ref().expect("action counters");
    assert_eq!(a.get("TcpAttemptFails"), Some(N as i64), "{:?}", a.deltas);
    // tw_reuse etc. were copied where the fresh namespace differed.
    let host_tw = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse").unwrap();
    if host_tw.trim() != "2" {
        assert_eq!(
            k.netns_sysctls
                .get("net.ipv4.tcp_tw_reuse")
                .map(String::as_str),
            Some(host_tw.trim())
        );
    }
    let m = case.machine.expect("machine load");
    assert!(!m.seconds.is_empty());
}

#[test]
fn heavy_no_netns_runs_the_case_in_the_hosts_namespace() {
    if !root() {
        return;
    }
    let (case, ns, _) = run(&["--no-netns"]);
    assert_eq!(ns, own_netns());
    let k = case.kernel.expect("kernel counters");
    assert_eq!(k.scope, CounterScope::HostWide);
    assert!(k.netns_sysctls.is_empty());
    assert!(
        k.get("TcpAttemptFails").unwrap() >= N as i64,
        "{:?}",
        k.deltas
    );
}
