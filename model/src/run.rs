//! The run report, `results.json`: one scenario run, all its cases.
//!
//! Written by the harness as each case ends and read by the report renderer
//! and `reloadbench compare`. Times inside a case are nanoseconds relative to
//! the case's load start ([`crate::load::LoadReport::started_mono_ns`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::ReloadMode;
use crate::ledger::Ledger;
use crate::load::LoadReport;
use crate::outcome::FailureClass;

/// A whole run of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`crate::SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// Version of reloadbench that produced the run.
    pub tool_version: String,
    /// The scenario that was run.
    pub scenario: ScenarioInfo,
    /// Wall-clock start of the run, RFC 3339 (UTC).
    pub started_at: String,
    /// The machine and settings the run depended on.
    pub environment: Environment,
    /// One entry per case that ran, in scenario order (a case cut short by an
    /// interruption is kept, with its `error`).
    pub cases: Vec<CaseReport>,
    /// Names of the cases the run set out to run, in order (schema 2; empty
    /// when read from a version 1 file).
    #[serde(default)]
    pub planned_cases: Vec<String>,
    /// Set when a signal interrupted the run (schema 2).
    #[serde(default)]
    pub interrupted: Option<Interruption>,
}

impl RunReport {
    /// True when the run was not interrupted, every expectation of every case
    /// passed and no case errored.
    pub fn passed(&self) -> bool {
        self.interrupted.is_none() && self.cases.iter().all(CaseReport::passed)
    }

    /// The cases that ran to their end: all of [`RunReport::cases`] but the
    /// one an interruption cut short.
    pub fn finished_cases(&self) -> impl Iterator<Item = &CaseReport> {
        let cut = self
            .interrupted
            .as_ref()
            .and_then(|i| i.case.as_deref().map(|name| (name, i.trial)));
        self.cases
            .iter()
            .filter(move |c| cut != Some((c.name.as_str(), c.trial)))
    }

    /// Planned cases that never started (neither finished nor cut short), in order.
    pub fn never_ran(&self) -> Vec<&str> {
        let cut = self.interrupted.as_ref().and_then(|i| i.case.as_deref());
        self.planned_cases
            .iter()
            .map(String::as_str)
            .filter(|p| Some(*p) != cut && !self.cases.iter().any(|c| c.name == *p))
            .collect()
    }
}

/// How a run was interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interruption {
    /// The signal, e.g. `SIGINT`.
    pub signal: String,
    /// The case that was running and was cut short, if one was.
    pub case: Option<String>,
    /// Which trial of that case was cut short, when the case is repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<u32>,
}

/// Which scenario a run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Scenario id (file stem) or its `name`.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Path of the scenario file as given.
    pub file: String,
}

/// The environment a run was measured in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Environment {
    /// `uname -sr` equivalent.
    pub kernel: String,
    /// Host name.
    pub hostname: String,
    /// Online CPUs.
    pub cpus: u32,
    /// Soft limit on open files.
    pub fd_limit: u64,
    /// Sysctls that change the outcome (`net.ipv4.tcp_tw_reuse`, ...), as read.
    pub sysctls: BTreeMap<String, String>,
    /// Versions of reloadbench and the system under test, by name.
    pub versions: BTreeMap<String, String>,
    /// Git commit of the reloadbench checkout, if known.
    pub git_sha: Option<String>,
    /// Servers reloadbench attached to and did not start (`kind =
    /// "external"`): the target URL and the address it resolved to, e.g.
    /// `http://127.0.0.1:8080/ (127.0.0.1:8080)`, with `remote` when it is
    /// not on loopback (`--allow-remote`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_targets: Vec<String>,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// Case name from the scenario.
    pub name: String,
    /// The case's `description` from the scenario (empty when it has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The load result, with buckets and failure times.
    pub load: LoadReport,
    /// Actions performed during the load, in order.
    pub actions: Vec<ActionReport>,
    /// Verdicts of the case's expectations.
    pub expectations: Vec<ExpectationResult>,
    /// CPU time used by each participant during the case.
    pub cpu: CpuUsage,
    /// Set when the case could not run to its end; what was measured is kept.
    pub error: Option<String>,
    /// Which trial of a repeated case this is (1-based), absent when the case
    /// ran once. A repeated case has one entry per trial in
    /// [`RunReport::cases`], in the order they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<u32>,
    /// TCP counter deltas over the load (`None` when they could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<crate::kernel::KernelCounters>,
    /// What else used the machine's CPU while the load ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<crate::kernel::MachineLoad>,
    /// Why requests failed, or why none did, from the evidence (schema 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<crate::diagnosis::Finding>,
    /// The three-way ledger of client, proxy and origin (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<Ledger>,
    /// Listening sockets and accept queues observed on the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<crate::evidence::CaseEvidence>,
    /// The most old generations alive at once: from the proxy's events
    /// (generations that reported ready and had not exited, less the
    /// newest), else from the process tree (see [`Self::generations`]);
    /// absent when neither was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_generations_max: Option<u64>,
    /// Old generations (processes) alive over time, from the proxy's
    /// events or the server's process tree (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generations: Option<crate::generations::GenerationSeries>,
}

impl CaseReport {
    /// The case's name, with ` · trial N` when it is one trial of a repeated case.
    pub fn label(&self) -> String {
        match self.trial {
            Some(t) => format!("{} · trial {t}", self.name),
            None => self.name.clone(),
        }
    }

    /// True when the case finished and all its expectations passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.expectations.iter().all(|e| e.passed)
    }

    /// Failures of a class in the whole case.
    pub fn failed_of(&self, class: FailureClass) -> u64 {
        self.load
            .classes
            .iter()
            .filter(|c| c.class == class)
            .map(|c| c.count)
            .sum()
    }

    /// For each restart and reload (in timeline order), the TLS resumed
    /// ratio `resumed / handshakes` (full, resumed and failed) in the
    /// [`AFTER_RELOAD_NS`] after its new process was ready (its trigger when
    /// none reported ready), from the buckets overlapping that span; `None`
    /// for a reload with no handshake there. Empty for a cleartext case.
    pub fn tls_resumed_ratios_after_reloads(&self) -> Vec<Option<f64>> {
        if self.load.tls.is_none() {
            return Vec::new();
        }
        let width = self.load.config.bucket_ns();
        self.actions
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::Restart | ActionKind::Reload))
            .map(|a| {
                let from = a.ready_ns.unwrap_or(a.trigger_ns);
                let to = from.saturating_add(AFTER_RELOAD_NS);
                // A failed handshake counts (it resumed nothing): the requests
                // that failed in a TLS class.
                let (all, resumed) = self
                    .load
                    .buckets
                    .iter()
                    .filter(|b| b.start_ns < to && b.start_ns.saturating_add(width) > from)
                    .fold((0u64, 0u64), |(n, r), b| {
                        let failed: u64 = b
                            .failed
                            .iter()
                            .filter(|f| f.class.is_tls())
                            .map(|f| f.count)
                            .sum();
                        let done = b.handshakes.full + b.handshakes.resumed;
                        (n + done + failed, r + b.handshakes.resumed)
                    });
                (all > 0).then(|| resumed as f64 / all as f64)
            })
            .collect()
    }

    /// The lowest of [`CaseReport::tls_resumed_ratios_after_reloads`] (a
    /// reload without handshakes after it is skipped); `None` without one.
    pub fn lowest_tls_resumed_ratio_after_reload(&self) -> Option<f64> {
        self.tls_resumed_ratios_after_reloads()
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }
}

/// The span after a reload in which its TLS resumed ratio is measured: 1 s.
pub const AFTER_RELOAD_NS: u64 = 1_000_000_000;

/// CPU seconds (user + system) used during a case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct CpuUsage {
    /// The load generator (the harness process itself, which runs it in-process).
    pub loadgen_s: f64,
    /// The system under test, all its processes.
    pub proxy_s: f64,
    /// The origin server.
    pub origin_s: f64,
}

/// What kind of action a timeline step performed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Stop the system under test, then start it again.
    Restart,
    /// Replace the system under test in the given mode.
    Reload,
    /// Send a signal.
    Signal,
    /// Run a command.
    Exec,
    /// SIGKILL the system under test (a control that must lose requests).
    Kill,
    /// Set a sysctl for the case.
    Sysctl,
}

/// One action on a case's timeline and what it did to the clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReport {
    /// Position on the case's timeline, from 0.
    pub index: u32,
    /// What was done.
    pub kind: ActionKind,
    /// Reload mode, for reloads of the reference proxy.
    pub mode: Option<ReloadMode>,
    /// Human description, e.g. `reload (fd-pass)` or `signal USR2`.
    pub label: String,
    /// When the harness triggered it, ns since load start.
    pub trigger_ns: u64,
    /// When the new process reported ready, if it did.
    pub ready_ns: Option<u64>,
    /// When the old process reported drained, if it did.
    pub drained_ns: Option<u64>,
    /// When the old process exited, if seen.
    pub exited_ns: Option<u64>,
    /// Whether the action itself succeeded (a reload the proxy rolled back did not).
    pub ok: bool,
    /// Why the action failed, if it did.
    pub error: Option<String>,
    /// Failures attributed to this action, per class (non-zero only).
    pub failures: Vec<ClassTotal>,
    /// First attributed failure, ns since load start.
    pub disruption_start_ns: Option<u64>,
    /// Last attributed failure, ns since load start.
    pub disruption_end_ns: Option<u64>,
    /// Time from trigger until throughput was back at its steady level, if it recovered.
    pub recovery_ns: Option<u64>,
    /// TCP counter deltas from the trigger to the next trigger or the load end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<crate::kernel::KernelCounters>,
    /// Failures attributed to this action whose request the origin answered (see
    /// [`crate::ledger`]); `None` when that cannot be counted exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_after_forwarding: Option<u64>,
    /// Phases observed in the kernel (listening sockets, connections, exits),
    /// next to the ones the server reported above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<crate::evidence::ObservedPhases>,
}

impl ActionReport {
    /// Total failures attributed to this action.
    pub fn failed_total(&self) -> u64 {
        self.failures.iter().map(|f| f.count).sum()
    }

    /// Failures of `method` attributed to this action, counted from
    /// `load.failures` (the load the action was attributed from): those seen
    /// from its first to its last attributed failure, which lie in its
    /// attribution window, and all failures in that span are its own since
    /// windows never overlap. `None` when the load's failure list was capped
    /// ([`LoadReport::failures_dropped`]): the count would be short.
    pub fn failed_of_method(&self, load: &LoadReport, method: &str) -> Option<u64> {
        if load.failures_dropped > 0 {
            return None;
        }
        let (Some(start), Some(end)) = (self.disruption_start_ns, self.disruption_end_ns) else {
            return Some(0);
        };
        let from = load.failures.partition_point(|f| f.t_ns < start);
        let n = load.failures[from..]
            .iter()
            .take_while(|f| f.t_ns <= end)
            .filter(|f| load.failure_method(f) == method)
            .count();
        Some(n as u64)
    }

    /// Trigger to ready, if the new process reported ready.
    pub fn reload_time_ns(&self) -> Option<u64> {
        self.ready_ns.map(|r| r.saturating_sub(self.trigger_ns))
    }
}

/// A count of one failure class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassTotal {
    /// The class.
    pub class: FailureClass,
    /// How many.
    pub count: u64,
}

/// The verdict of one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// The expectation as written, e.g. `failed = 0` or `reset <= 5`.
    pub expr: String,
    /// The metric's measured value, if it could be computed.
    pub actual: Option<f64>,
    /// Whether it held.
    pub passed: bool,
}
