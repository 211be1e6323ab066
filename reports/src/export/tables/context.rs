//! Tables that put the numbers in context: ab's counters, the environment, CPU use.

use reloadbench_model::run::RunReport;

use crate::export::grid::{Align, Table};

/// ab's view of every case: its failure counters, each request counted once.
pub fn ab_view(report: &RunReport) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("complete", Align::Right),
        ("failed", Align::Right),
        ("Connect", Align::Right),
        ("Receive", Align::Right),
        ("Length", Align::Right),
        ("Exceptions", Align::Right),
        ("Write errors", Align::Right),
        ("Non-2xx", Align::Right),
    ]);
    for case in &report.cases {
        let l = &case.load;
        let ab = &l.ab;
        let mut row = vec![case.name.clone()];
        row.extend(
            [
                l.ok + l.failed,
                l.failed,
                ab.connect,
                ab.receive,
                ab.length,
                ab.exceptions,
                ab.write_errors,
                ab.non_2xx,
            ]
            .iter()
            .map(u64::to_string),
        );
        t.push(row);
    }
    t
}

/// The machine and settings the run was measured with.
pub fn environment(report: &RunReport) -> Table {
    let env = &report.environment;
    let mut t = Table::new(&[("setting", Align::Left), ("value", Align::Left)]);
    let mut kv = |k: &str, v: String| t.push(vec![k.to_string(), v]);
    kv(
        "scenario",
        format!("{} ({})", report.scenario.name, report.scenario.file),
    );
    kv("started at", report.started_at.clone());
    kv("reloadbench", report.tool_version.clone());
    kv(
        "git commit",
        env.git_sha.clone().unwrap_or_else(|| "unknown".into()),
    );
    kv("kernel", env.kernel.clone());
    kv("host", env.hostname.clone());
    kv("CPUs", env.cpus.to_string());
    kv("open files limit", env.fd_limit.to_string());
    for (k, v) in &env.sysctls {
        kv(k, v.replace('\t', " "));
    }
    for t in &env.external_targets {
        kv("external target", t.clone());
    }
    for (k, v) in &env.versions {
        if k == "reloadbench" && *v == report.tool_version {
            continue; // already the "reloadbench" row
        }
        kv(&format!("{k} version"), v.clone());
    }
    t
}

/// The load of each case: clients, limits, connection reuse (or HTTP/2 and
/// its streams per connection), timeout.
pub fn load(report: &RunReport) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("clients", Align::Right),
        ("requests", Align::Right),
        ("duration s", Align::Right),
        ("rate/s", Align::Right),
        ("keep-alive", Align::Left),
        ("timeout s", Align::Right),
    ]);
    let dash = || "–".to_string();
    for case in &report.cases {
        let c = &case.load.config;
        t.push(vec![
            case.name.clone(),
            c.concurrency.to_string(),
            c.requests.map_or_else(dash, |n| n.to_string()),
            c.duration_ms
                .map_or_else(dash, |ms| format!("{:.1}", ms as f64 / 1000.0)),
            c.rate.map_or_else(dash, |r| format!("{r:.0}")),
            match &case.load.h2 {
                // An HTTP/2 connection is always kept; `clients` are its connections.
                Some(h) => format!("HTTP/2, {} streams", h.streams),
                None => if c.keep_alive { "yes" } else { "no" }.to_string(),
            },
            format!("{:.1}", c.timeout_ms as f64 / 1000.0),
        ]);
    }
    t
}

/// CPU seconds used by each participant, per case.
pub fn cpu(report: &RunReport) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("load generator s", Align::Right),
        ("proxy s", Align::Right),
        ("origin s", Align::Right),
    ]);
    for case in &report.cases {
        let c = &case.cpu;
        t.push(vec![
            case.name.clone(),
            format!("{:.2}", c.loadgen_s),
            format!("{:.2}", c.proxy_s),
            format!("{:.2}", c.origin_s),
        ]);
    }
    t
}
