//! The "Kernel counters and machine load" section: shown only when the run
//! has the data, says whose traffic the counters count, lists an action
//! only where a listed counter moved, and flags a busy machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use reloadbench_model::kernel::{CounterScope, CpuSecond, KernelCounters, MachineLoad};
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::{RunReport, render_markdown};

fn counters(scope: CounterScope, pairs: &[(&str, i64)]) -> KernelCounters {
    KernelCounters {
        scope,
        from_ns: 1_000_000_000,
        to_ns: 2_500_000_000,
        deltas: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        netns_sysctls: BTreeMap::new(),
    }
}

fn machine(other: f64) -> MachineLoad {
    MachineLoad::from_seconds(
        vec![CpuSecond {
            t_ns: 1_000_000_000,
            secs: 1.0,
            busy_cores: 1.5 + other,
            own_cores: 1.5,
            steal_cores: 0.0,
        }],
        [0.5, 0.4, 0.3],
        [0.7, 0.4, 0.3],
        "process tree".into(),
    )
}

fn with_kernel(scope: CounterScope) -> RunReport {
    let mut run = support::fixture();
    for c in &mut run.cases {
        c.kernel = Some(counters(
            scope,
            &[
                ("TcpExtListenOverflows", 0),
                ("TcpOutRsts", 3),
                ("TcpActiveOpens", 900),
            ],
        ));
        c.machine = Some(machine(0.1));
        for a in &mut c.actions {
            a.kernel = Some(counters(
                scope,
                &[("TcpExtListenOverflows", 0), ("TcpOutRsts", 0)],
            ));
        }
    }
    // One action of the naive case reset connections; one case was busy.
    run.cases[2].actions[1].kernel = Some(counters(
        scope,
        &[("TcpExtListenOverflows", 0), ("TcpOutRsts", 42)],
    ));
    run.cases[3].machine = Some(machine(0.6));
    run
}

#[test]
fn without_kernel_data_there_is_no_section() {
    let md = render_markdown(&support::fixture());
    assert!(!md.contains("Kernel counters"), "{md}");
}

#[test]
fn case_namespace_counters_table_actions_that_moved_and_a_busy_flag() {
    let run = with_kernel(CounterScope::CaseNetns);
    let md = render_markdown(&run);
    let section = &md[md.find("## Kernel counters and machine load").unwrap()..];
    assert!(section.contains("exactly its own traffic"), "{section}");
    assert!(
        section.contains("| TcpOutRsts | 3 | 3 | 3 | 3 |"),
        "{section}"
    );
    // A listed counter this kernel lacks is not a row; unlisted ones are
    // in results.json only.
    assert!(!section.contains("TCPMigrateReqSuccess"), "{section}");
    assert!(!section.contains("TcpActiveOpens"), "{section}");
    // Only the action whose counters moved, only the moved columns.
    assert_eq!(
        section.matches("### Counters per action").count(),
        1,
        "{section}"
    );
    assert!(
        section.contains("### Counters per action: reload without socket"),
        "{section}"
    );
    assert!(section.contains("| 1 | 1.000–2.500 |"), "{section}");
    assert!(section.contains("| OutRsts |"), "{section}");
    // The busy case is flagged, the quiet ones are not.
    assert_eq!(section.matches("⚠ **").count(), 1, "{section}");
    assert!(
        section.contains(
            "⚠ **reload with socket**: the machine was busy: other processes used 0.60 cores"
        ),
        "{section}"
    );
    assert_eq!(section.matches("| ⚠ busy |").count(), 1, "{section}");
    assert_eq!(section.matches("| quiet |").count(), 3, "{section}");
    let html = String::from_utf8(HtmlExporter.render(&run).unwrap()).unwrap();
    assert!(
        html.contains("<h2>Kernel counters and machine load</h2>"),
        "{html}"
    );
    assert!(
        html.contains("reload with socket: the machine was busy"),
        "{html}"
    );
}

#[test]
fn host_wide_counters_say_so() {
    let md = render_markdown(&with_kernel(CounterScope::HostWide));
    assert!(md.contains("Kernel counters are host-wide"), "{md}");
}
