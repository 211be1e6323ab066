//! A case in its own network namespace (as root): its processes are in
//! another namespace than the harness, and its kernel counters are exactly
//! its own traffic while the host's namespace is busy with other traffic.
//! With `--no-netns` the same case runs in the host's namespace.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace
//! --bins`). Skips (with a printed reason) when not root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, TcpStream};
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
actions = [
  { after_requests = 200, do = "sysctl", key = "net.ipv4.tcp_fin_timeout", value = "23" },
  { after_requests = 500, do = "exec", command = "bash -c 'readlink /proc/self/ns/net > {dir}/ns.txt; cat /proc/sys/net/ipv4/tcp_fin_timeout > {dir}/fin.txt; for i in 1 2 3 4 5 6 7; do (echo > /dev/tcp/127.0.0.1/1) 2>/dev/null; done; true'" },
]
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
/// connects of its own the whole time; returns the case's report, the
/// namespace its exec action ran in, the `tcp_fin_timeout` it saw there
/// after the sysctl action, and whether the host's ever was 23.
fn run(extra: &[&str]) -> (reloadbench_model::run::CaseReport, String, String, bool) {
    let dir = scenario_dir("netns.toml", SCENARIO);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let noise = std::thread::spawn(move || {
        // A socket bound but not listening: connects to it are refused, and
        // its port stays taken, so no process of the case (in the host's
        // namespace with --no-netns) can be given it and start answering.
        let held =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        held.bind(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        let port = held.local_addr().unwrap().as_socket().unwrap();
        let mut host_saw_23 = false;
        while !stop2.load(Ordering::Relaxed) {
            assert!(TcpStream::connect(port).is_err());
            let fin = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fin_timeout").unwrap();
            host_saw_23 |= fin.trim() == "23";
            // Pacing only (not synchronisation): a few hundred a second.
            std::thread::sleep(Duration::from_millis(2));
        }
        host_saw_23
    });
    let mut args = vec!["run", "netns.toml", "-q"];
    args.extend_from_slice(extra);
    let r = reloadbench(&dir, &args, Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    let host_saw_23 = noise.join().unwrap();
    r.assert_code(0);
    let case = r.results().cases.remove(0);
    let case_dir = r.out.join("cases/01-probe");
    let read = |f: &str| {
        std::fs::read_to_string(case_dir.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    (case, read("ns.txt"), read("fin.txt"), host_saw_23)
}

#[test]
fn heavy_a_case_runs_in_its_own_namespace_and_counts_only_its_traffic() {
    if !root() {
        return;
    }
    let (case, ns, fin, host_saw_23) = run(&[]);
    // The sysctl action set the namespace's value, not the host's.
    assert_eq!(fin, "23");
    assert!(!host_saw_23);
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
    let a = case.actions[1].kernel.as_ref().expect("action counters");
    assert_eq!(a.get("TcpAttemptFails"), Some(N as i64), "{:?}", a.deltas);
    // tw_reuse etc. hold the host's values in the namespace.
    let host_tw = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse").unwrap();
    assert_eq!(
        k.netns_sysctls
            .get("net.ipv4.tcp_tw_reuse")
            .map(String::as_str),
        Some(host_tw.trim())
    );
    let m = case.machine.expect("machine load");
    assert!(!m.seconds.is_empty());
}

#[test]
fn heavy_no_netns_runs_the_case_in_the_hosts_namespace() {
    if !root() {
        return;
    }
    let (case, ns, fin, _) = run(&["--no-netns"]);
    assert_eq!(ns, own_netns());
    assert_eq!(fin, "23");
    let k = case.kernel.expect("kernel counters");
    assert_eq!(k.scope, CounterScope::HostWide);
    assert!(k.netns_sysctls.is_empty());
    assert!(
        k.get("TcpAttemptFails").unwrap() >= N as i64,
        "{:?}",
        k.deltas
    );
}
