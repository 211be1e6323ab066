//! Synthetic run reports of any size, for the tests and the benchmark that
//! check that every output stays readable and bounded however long the run.
//!
//! A [`Shape`] says how many cases, time buckets and actions; [`run`] builds a
//! deterministic [`RunReport`] of that shape with everything a real run
//! records: buckets with latency, actions with reported and observed phases
//! and kernel counters, failures (listed and per class), accept-queue
//! evidence, a ledger and the machine's load. The reload modes cycle over the
//! cases (restart, naive, fd-pass, master-worker), and only restart and naive
//! cases lose requests, at every [`Shape::failing_every`]-th action.
//!
//! One bucket of every case is a spike planted on purpose ([`spike_bucket`]):
//! no successful request, [`SPIKE_FAILURES`] resets, a latency maximum of
//! [`SPIKE_MAX_US`]; a chart that aggregates buckets must still draw it.
//!
//! Not a measurement: nothing here comes from a process or a socket.

use std::collections::BTreeMap;

use reloadbench_model::SCHEMA_VERSION;
use reloadbench_model::event::ReloadMode;
use reloadbench_model::evidence::{CaseEvidence, ConnectionSeries, ObservedPhases, QueueSeries};
use reloadbench_model::kernel::{CounterScope, CpuSecond, KernelCounters, MachineLoad};
use reloadbench_model::ledger::{ClientSide, Ledger};
use reloadbench_model::load::{
    Bucket, BucketFailures, BucketLatency, ClassCount, ConnectionTimes, FailureRecord,
    LatencySummary, LoadConfigSummary, LoadReport, MethodCounts, Percentile, RetryPolicy, TimeRow,
};
use reloadbench_model::outcome::{AbView, FailureClass};
use reloadbench_model::run::{
    ActionKind, ActionReport, CaseReport, ClassTotal, CpuUsage, Environment, ExpectationResult,
    RunReport, ScenarioInfo,
};

/// Width of a bucket, ms.
const BUCKET_MS: u64 = 100;
const MS: u64 = 1_000_000;
/// Failures of the planted spike bucket.
pub const SPIKE_FAILURES: u64 = 777;
/// Latency maximum of the planted spike bucket, µs.
pub const SPIKE_MAX_US: u64 = 4_321_000;

/// The size of a synthetic run.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Cases in the run.
    pub cases: usize,
    /// 100 ms buckets per case.
    pub buckets: usize,
    /// Actions per case.
    pub actions: usize,
    /// In restart and naive cases, every n-th action loses requests (0: none do).
    pub failing_every: usize,
}

/// The index of the planted spike bucket of a case of `buckets` buckets.
pub fn spike_bucket(buckets: usize) -> usize {
    (buckets / 2 + 7).min(buckets.saturating_sub(1))
}

/// A deterministic run of the given shape.
pub fn run(shape: Shape) -> RunReport {
    let mut rng = Rng(0x5eed_2026);
    let cases: Vec<CaseReport> = (0..shape.cases).map(|i| case(i, shape, &mut rng)).collect();
    RunReport {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: ScenarioInfo {
            name: "synthetic".into(),
            description: format!(
                "{} cases of {} buckets and {} actions each (generated)",
                shape.cases, shape.buckets, shape.actions
            ),
            file: "synthetic.toml".into(),
        },
        started_at: "2026-12-05T00:00:00Z".into(),
        environment: Environment {
            kernel: "Linux 6.18.0".into(),
            hostname: "synthetic".into(),
            cpus: 2,
            fd_limit: 1_048_576,
            sysctls: BTreeMap::new(),
            versions: BTreeMap::new(),
            git_sha: None,
            external_targets: Vec::new(),
        },
        planned_cases: cases.iter().map(|c| c.name.clone()).collect(),
        cases,
        interrupted: None,
    }
}

/// splitmix64: small, deterministic, good enough for plausible noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn mode_of(i: usize) -> ReloadMode {
    ReloadMode::ALL[i % ReloadMode::ALL.len()]
}

fn case(i: usize, shape: Shape, rng: &mut Rng) -> CaseReport {
    let mode = mode_of(i);
    let duration_ns = shape.buckets as u64 * BUCKET_MS * MS;
    let lossy = matches!(mode, ReloadMode::Restart | ReloadMode::Naive);
    let mut buckets: Vec<Bucket> = (0..shape.buckets).map(|b| bucket(b as u64, rng)).collect();
    let mut failures = Vec::new();
    let mut actions = Vec::with_capacity(shape.actions);
    let mut queues = Vec::new();
    let mut connections = Vec::new();
    let spacing = duration_ns / (shape.actions as u64 + 1).max(1);
    for a in 0..shape.actions {
        let trigger = spacing * (a as u64 + 1);
        let failing = lossy && shape.failing_every > 0 && a % shape.failing_every == 0;
        let lost = if failing { rng.range(1, 40) } else { 0 };
        let class = if mode == ReloadMode::Restart {
            FailureClass::ConnectRefused
        } else {
            FailureClass::Reset
        };
        let first_fail = trigger + rng.range(1, 30) * MS;
        for k in 0..lost {
            let t = first_fail + k * 100_000;
            failures.push(FailureRecord {
                t_ns: t,
                start_ns: t.saturating_sub(2 * MS),
                class,
                reused: false,
                id: Some(rng.next() % 100_000_000),
                retryable: false,
                kind: 0,
            });
            if let Some(b) = buckets.get_mut((t / (BUCKET_MS * MS)) as usize) {
                add_failure(b, class, 1);
            }
        }
        let pid = 10_000 + a as u32;
        actions.push(action(a, mode, trigger, lost, class, first_fail, pid, rng));
        queues.push(QueueSeries {
            inode: 900_000 + a as u64,
            backlog: 4096,
            max_depth: if failing { 12 } else { 3 },
            first_seen_ns: trigger.saturating_sub(5 * MS),
            last_seen_ns: trigger + spacing,
            depth: vec![(trigger, 0), (trigger + 5 * MS, 3), (trigger + 10 * MS, 0)],
            owners: vec![(trigger, vec![pid]), (trigger + 20 * MS, vec![pid + 1])],
        });
        connections.push(ConnectionSeries {
            pid,
            max: 40,
            counts: vec![(trigger + 20 * MS, 40), (trigger + 45 * MS, 0)],
        });
    }
    let spike = spike_bucket(shape.buckets);
    if let Some(b) = buckets.get_mut(spike) {
        b.ok = 0;
        b.latency = BucketLatency::default();
        b.latency.max_us = SPIKE_MAX_US;
        add_failure(b, FailureClass::Reset, SPIKE_FAILURES);
        // Resets of GETs on reused connections: a careful client retries them.
        b.failed_retryable += SPIKE_FAILURES;
        for k in 0..SPIKE_FAILURES {
            failures.push(FailureRecord {
                t_ns: spike as u64 * BUCKET_MS * MS + k * 10_000,
                start_ns: spike as u64 * BUCKET_MS * MS,
                class: FailureClass::Reset,
                reused: true,
                id: None,
                retryable: true,
                kind: 0,
            });
        }
    }
    failures.sort_by_key(|f| f.t_ns);
    let load = load(buckets, failures, duration_ns);
    CaseReport {
        name: format!("case {i} ({})", mode.as_str()),
        description: format!("synthetic {} reloads", mode.as_str()),
        expectations: vec![ExpectationResult {
            expr: "failed = 0".into(),
            actual: Some(load.failed as f64),
            passed: load.failed == 0,
        }],
        cpu: CpuUsage {
            loadgen_s: duration_ns as f64 / 2e9,
            proxy_s: duration_ns as f64 / 3e9,
            origin_s: duration_ns as f64 / 4e9,
        },
        error: None,
        trial: None,
        kernel: Some(counters(0, duration_ns, &load)),
        machine: Some(machine(duration_ns, rng)),
        diagnosis: Vec::new(),
        ledger: Some(Ledger {
            client: ClientSide {
                ok: load.ok,
                failed: load.failed,
                not_started: 0,
                ids: true,
            },
            proxy: None,
            origin: None,
            origin_unavailable: Some("synthetic run".into()),
            lost_after_forwarding: None,
            checks: Vec::new(),
            unchecked: Vec::new(),
            balanced: false,
        }),
        evidence: Some(CaseEvidence {
            address: "127.0.0.1:8080".into(),
            fast_interval_ns: 5 * MS,
            slow_interval_ns: 100 * MS,
            samples: duration_ns / (5 * MS),
            failed_samples: 0,
            first_error: None,
            sampler_cpu_s: 0.5,
            queues,
            connections,
        }),
        old_generations_max: None,
        generations: None,
        actions,
        load,
    }
}

fn bucket(b: u64, rng: &mut Rng) -> Bucket {
    let p50 = rng.range(2_000, 3_000);
    Bucket {
        start_ns: b * BUCKET_MS * MS,
        ok: rng.range(1_800, 2_200),
        failed: Vec::new(),
        latency: BucketLatency {
            p50_us: p50,
            p90_us: p50 + rng.range(500, 1_500),
            p99_us: p50 + rng.range(2_000, 6_000),
            max_us: p50 + rng.range(6_000, 40_000),
            mean_us: p50 as f64 * 1.1,
        },
        connections: rng.range(0, 5),
        failed_retryable: 0,
        handshakes: Default::default(),
        goaways: 0,
    }
}

fn add_failure(b: &mut Bucket, class: FailureClass, n: u64) {
    match b.failed.iter_mut().find(|f| f.class == class) {
        Some(f) => f.count += n,
        None => b.failed.push(BucketFailures { class, count: n }),
    }
}

#[allow(clippy::too_many_arguments)]
fn action(
    a: usize,
    mode: ReloadMode,
    trigger: u64,
    lost: u64,
    class: FailureClass,
    first_fail: u64,
    pid: u32,
    rng: &mut Rng,
) -> ActionReport {
    let ready = trigger + rng.range(3, 60) * MS;
    let drained = ready + rng.range(1, 30) * MS;
    let exited = drained + rng.range(1, 10) * MS;
    ActionReport {
        index: a as u32,
        kind: if mode == ReloadMode::Restart {
            ActionKind::Restart
        } else {
            ActionKind::Reload
        },
        mode: Some(mode),
        label: format!("reload ({})", mode.as_str()),
        trigger_ns: trigger,
        ready_ns: Some(ready),
        drained_ns: Some(drained),
        exited_ns: Some(exited),
        ok: true,
        error: None,
        failures: if lost > 0 {
            vec![ClassTotal { class, count: lost }]
        } else {
            Vec::new()
        },
        disruption_start_ns: (lost > 0).then_some(first_fail),
        disruption_end_ns: (lost > 0).then(|| first_fail + (lost - 1) * 100_000),
        recovery_ns: (lost > 0).then_some(100 * MS),
        kernel: Some(KernelCounters {
            scope: CounterScope::CaseNetns,
            from_ns: trigger,
            to_ns: exited,
            deltas: [
                ("TcpExtListenDrops".to_string(), 0),
                ("TcpEstabResets".to_string(), lost as i64),
            ]
            .into_iter()
            .collect(),
            netns_sysctls: BTreeMap::new(),
        }),
        lost_after_forwarding: Some(0),
        observed: Some(ObservedPhases {
            old_pids: vec![pid],
            new_pids: vec![pid + 1],
            new_listening_ns: Some(ready - MS),
            old_stopped_accepting_ns: Some(ready + MS),
            old_drained_ns: Some(drained + MS),
            old_exited_ns: Some(exited + MS),
            resolution_ns: 5 * MS,
        }),
    }
}

fn load(buckets: Vec<Bucket>, failures: Vec<FailureRecord>, duration_ns: u64) -> LoadReport {
    let ok: u64 = buckets.iter().map(|b| b.ok).sum();
    let mut per_class: BTreeMap<FailureClass, ClassCount> = BTreeMap::new();
    let mut counts = [0u64; FailureClass::ALL.len()];
    for f in &failures {
        counts[f.class.index()] += 1;
        let c = per_class.entry(f.class).or_insert(ClassCount {
            class: f.class,
            count: 0,
            on_reused: 0,
            first_ns: f.t_ns,
            last_ns: f.t_ns,
        });
        c.count += 1;
        c.on_reused += u64::from(f.reused);
        c.last_ns = f.t_ns;
    }
    let failed = failures.len() as u64;
    let failed_retryable = failures.iter().filter(|f| f.retryable).count() as u64;
    let row = TimeRow {
        min_us: 800,
        mean_us: 2_600.0,
        sd_us: 700.0,
        median_us: 2_500,
        max_us: 48_000,
    };
    LoadReport {
        schema_version: SCHEMA_VERSION,
        config: LoadConfigSummary {
            url: "http://127.0.0.1:8080/".into(),
            method: "GET".into(),
            concurrency: 100,
            requests: None,
            duration_ms: Some(duration_ns / MS),
            rate: None,
            keep_alive: true,
            timeout_ms: 30_000,
            bucket_ms: BUCKET_MS,
            mix: Vec::new(),
            retry: RetryPolicy::None,
            think_time_ms: None,
            tls: None,
        },
        started_mono_ns: 1_000_000_000_000,
        elapsed_ns: duration_ns,
        planned: ok + failed,
        ok,
        failed,
        not_started: 0,
        failed_on_reused: failures.iter().filter(|f| f.reused).count() as u64,
        body_bytes: ok * 1024,
        total_bytes: ok * 1200,
        connections: buckets.iter().map(|b| b.connections).sum::<u64>() + 100,
        refused_backoff_ns: 0,
        server_software: Some("refproxy".into()),
        document_length: Some(1024),
        classes: per_class.into_values().collect(),
        ab: AbView::from_counts(&counts),
        latency: LatencySummary {
            count: ok,
            min_us: 800,
            mean_us: 2_600.0,
            stdev_us: 700.0,
            max_us: SPIKE_MAX_US,
            percentiles: [(50.0, 2_500), (90.0, 3_600), (99.0, 7_000), (99.9, 30_000)]
                .into_iter()
                .map(|(p, us)| Percentile { p, us })
                .collect(),
        },
        connection_times: ConnectionTimes {
            connect: row,
            processing: row,
            waiting: row,
            total: row,
        },
        schedule: None,
        buckets,
        failures,
        failures_dropped: 0,
        failed_retryable,
        failed_not_retryable: failed - failed_retryable,
        retries: 0,
        stale_discarded: 0,
        methods: vec![MethodCounts {
            method: "GET".into(),
            ok,
            failed,
            failed_retryable,
            failed_not_retryable: failed - failed_retryable,
            retries: 0,
            failed_by_class: counts
                .iter()
                .zip(FailureClass::ALL)
                .filter(|(n, _)| **n > 0)
                .map(|(n, c)| (c, *n))
                .collect(),
            after_retry: None,
        }],
        after_retry: None,
        tls: None,
        h2: None,
        ws: None,
        stream: None,
    }
}

fn counters(from_ns: u64, to_ns: u64, load: &LoadReport) -> KernelCounters {
    KernelCounters {
        scope: CounterScope::CaseNetns,
        from_ns,
        to_ns,
        deltas: [
            ("TcpActiveOpens".to_string(), load.connections as i64),
            ("TcpEstabResets".to_string(), load.failed as i64),
        ]
        .into_iter()
        .collect(),
        netns_sysctls: BTreeMap::new(),
    }
}

fn machine(duration_ns: u64, rng: &mut Rng) -> MachineLoad {
    let seconds = (duration_ns / 1_000_000_000).max(1);
    MachineLoad {
        seconds: (0..seconds)
            .map(|s| CpuSecond {
                t_ns: s * 1_000_000_000,
                secs: 1.0,
                busy_cores: 1.5,
                own_cores: 1.4,
                steal_cores: rng.range(0, 2) as f64 / 100.0,
            })
            .collect(),
        other_cores_mean: 0.1,
        other_cores_max: 0.3,
        steal_cores_mean: 0.01,
        loadavg_start: [1.0, 1.0, 1.0],
        loadavg_end: [1.5, 1.2, 1.1],
        own_cpu_from: "synthetic".into(),
        busy: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_has_its_shape_and_its_counts_add_up() {
        let r = run(Shape {
            cases: 4,
            buckets: 300,
            actions: 20,
            failing_every: 5,
        });
        assert_eq!(r.cases.len(), 4);
        for c in &r.cases {
            assert_eq!(c.load.buckets.len(), 300);
            assert_eq!(c.actions.len(), 20);
            let in_buckets: u64 = c.load.buckets.iter().map(Bucket::failed_total).sum();
            assert_eq!(in_buckets, c.load.failed);
            assert_eq!(c.load.failures.len() as u64, c.load.failed);
            let per_action: u64 = c.actions.iter().map(ActionReport::failed_total).sum();
            assert_eq!(per_action + SPIKE_FAILURES, c.load.failed);
        }
        // fd-pass and master-worker lose nothing at actions.
        assert_eq!(r.cases[2].load.failed, SPIKE_FAILURES);
        assert!(r.cases[1].load.failed > SPIKE_FAILURES);
    }
}
