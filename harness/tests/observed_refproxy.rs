//! Observed reload phases of a cooperative server: `reloadbench run` with
//! refproxy reloaded by fd passing, naively (SO_REUSEPORT) and as
//! master-worker, under load. What each mode does to the listening socket
//! must show in the kernel's evidence: fd-pass keeps one socket that
//! changes hands, naive adds a socket per reload, master-worker keeps the
//! master among the owners while workers come and go.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reloadbench_model::evidence::ObservedPhases;
use reloadbench_model::run::{ActionReport, CaseReport};
use support::{reloadbench, scenario_dir};

const SCENARIO: &str = r#"
name = "observed"
description = "kernel evidence of refproxy reloads"

[origin]
body_bytes = 1024

[load]
concurrency = 10
duration = "2500ms"
keep_alive = false
timeout = "5s"

[proxy]
kind = "reference"

[[case]]
name = "fd-pass"
actions = [{ at = "800ms", do = "reload", mode = "fd-pass" }]

[[case]]
name = "naive"
actions = [{ at = "800ms", do = "reload", mode = "naive" }]

[[case]]
name = "master-worker"
actions = [{ at = "800ms", do = "reload", mode = "master-worker" }]
"#;

fn observed(a: &ActionReport) -> &ObservedPhases {
    a.observed.as_ref().expect("observed phases")
}

/// Every phase seen, one old and one new process, in order after the trigger.
fn check_all_phases(c: &CaseReport) -> &ObservedPhases {
    assert_eq!(c.actions.len(), 1, "{}", c.name);
    let a = &c.actions[0];
    assert!(a.ok, "{a:?}");
    let p = observed(a);
    assert_eq!(p.old_pids.len(), 1, "{}: {p:?}", c.name);
    assert_eq!(p.new_pids.len(), 1, "{}: {p:?}", c.name);
    assert_ne!(p.old_pids, p.new_pids);
    let t = [
        p.new_listening_ns,
        p.old_stopped_accepting_ns,
        p.old_drained_ns,
        p.old_exited_ns,
    ];
    let t: Vec<u64> = t
        .iter()
        .map(|x| x.unwrap_or_else(|| panic!("{}: a phase not observed: {p:?}", c.name)))
        .collect();
    assert!(t[0] >= a.trigger_ns, "{}: {p:?}", c.name);
    assert!(
        t[0] <= t[1] && t[1] <= t[2] && t[2] <= t[3],
        "{}: {p:?}",
        c.name
    );
    assert!(p.resolution_ns > 0);
    p
}

#[test]
fn heavy_refproxy_reloads_show_in_the_kernel_as_each_mode_works() {
    let dir = scenario_dir("observed.toml", SCENARIO);
    let run = reloadbench(
        &dir,
        &["run", "observed.toml", "-q"],
        Duration::from_secs(120),
    );
    run.assert_code(0);
    let r = run.results();
    let case = |n: &str| r.cases.iter().find(|c| c.name == n).unwrap();
    for c in &r.cases {
        let e = c.evidence.as_ref().expect("evidence");
        assert!(e.samples > 10 && e.failed_samples == 0, "{}: {e:?}", c.name);
        assert!(e.sampler_cpu_s > 0.0);
    }

    // fd-pass: one socket throughout; the new process joins its owners
    // before the old one leaves them.
    let fd = case("fd-pass");
    let p = check_all_phases(fd);
    let e = fd.evidence.as_ref().unwrap();
    assert_eq!(e.queues.len(), 1, "{:?}", e.queues);
    let owners: Vec<&Vec<u32>> = e.queues[0].owners.iter().map(|(_, o)| o).collect();
    assert!(
        owners.iter().any(|o| o.len() == 2),
        "never shared: {owners:?}"
    );
    assert_eq!(*owners.last().unwrap(), &p.new_pids);

    // naive: the new process binds its own socket (a new inode).
    let naive = case("naive");
    let p = check_all_phases(naive);
    let e = naive.evidence.as_ref().unwrap();
    assert_eq!(e.queues.len(), 2, "{:?}", e.queues);
    assert_eq!(e.queues[1].owners[0].1, p.new_pids);

    // master-worker: the master holds the socket throughout and is not old.
    let mw = case("master-worker");
    let p = check_all_phases(mw);
    let e = mw.evidence.as_ref().unwrap();
    assert_eq!(e.queues.len(), 1, "{:?}", e.queues);
    let first = &e.queues[0].owners[0].1;
    let master: Vec<u32> = first
        .iter()
        .copied()
        .filter(|pid| e.queues[0].owners.iter().all(|(_, o)| o.contains(pid)))
        .collect();
    assert_eq!(master.len(), 1, "{:?}", e.queues[0].owners);
    assert!(!p.old_pids.contains(&master[0]) && !p.new_pids.contains(&master[0]));
    run.assert_no_process_left();
}
