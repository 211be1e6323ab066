//! What the kernel and the machine said about a case: `nstat`-style TCP
//! counter deltas ([`KernelCounters`], per case and per action) and the
//! CPU the rest of the machine used meanwhile ([`MachineLoad`]).
//!
//! Counter names are nstat's: the `/proc/net/netstat` or `/proc/net/snmp`
//! section followed by the field, e.g. `TcpExtListenOverflows`, `TcpOutRsts`.
//! A counter the kernel does not have is absent, never 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters stored whenever the kernel has them, even when they did not move.
pub const LISTED: [&str; 10] = [
    "TcpExtListenOverflows",
    "TcpExtListenDrops",
    "TcpExtTCPAbortOnClose",
    "TcpExtTCPAbortOnData",
    "TcpExtTCPReqQFullDrop",
    "TcpExtTCPMigrateReqSuccess",
    "TcpExtTCPMigrateReqFailure",
    "TcpAttemptFails",
    "TcpEstabResets",
    "TcpOutRsts",
];

/// Whose traffic the counters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterScope {
    /// The case ran in its own network namespace: only its own traffic.
    #[serde(rename = "case netns")]
    CaseNetns,
    /// The host's namespace: every process of the machine counts too.
    #[serde(rename = "host-wide")]
    HostWide,
}

impl CounterScope {
    /// How the report names it.
    pub fn as_str(self) -> &'static str {
        match self {
            CounterScope::CaseNetns => "case netns",
            CounterScope::HostWide => "host-wide",
        }
    }
}

/// TCP counter deltas over a window (a case's load, or an action's window:
/// its trigger to the next action's trigger or the end of the load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelCounters {
    /// Whose traffic is counted.
    pub scope: CounterScope,
    /// Window start and end, ns since the load start.
    pub from_ns: u64,
    /// See `from_ns`.
    pub to_ns: u64,
    /// Delta per counter: every counter of [`LISTED`] the kernel has, and
    /// every other `Tcp` / `TcpExt` counter that moved.
    pub deltas: BTreeMap<String, i64>,
    /// Per-namespace sysctls in force in the case's namespace, copied from
    /// the host (a fresh namespace starts from kernel defaults); case level
    /// only, empty for host-wide counters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub netns_sysctls: BTreeMap<String, String>,
}

impl KernelCounters {
    /// The delta of a counter, `None` when the kernel does not have it.
    pub fn get(&self, name: &str) -> Option<i64> {
        self.deltas.get(name).copied()
    }

    /// Whether any counter moved.
    pub fn any_moved(&self) -> bool {
        self.deltas.values().any(|v| *v != 0)
    }
}

/// Average CPU used by other processes (cores) above which the machine is
/// flagged busy.
pub const BUSY_OTHER_CORES: f64 = 0.25;
/// Average steal (cores) above which the machine is flagged busy.
pub const BUSY_STEAL_CORES: f64 = 0.01;

/// One sampling interval (about a second) of the machine's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuSecond {
    /// End of the interval, ns since the load start.
    pub t_ns: u64,
    /// Length of the interval in seconds.
    pub secs: f64,
    /// Cores busy on the whole machine (user + nice + system + irq + softirq).
    pub busy_cores: f64,
    /// Of those, cores used by the run's own processes (harness, load,
    /// origin, system under test).
    pub own_cores: f64,
    /// Cores stolen by the hypervisor.
    pub steal_cores: f64,
}

impl CpuSecond {
    /// Cores used by everything else: `busy - own`, at least 0.
    pub fn other_cores(&self) -> f64 {
        (self.busy_cores - self.own_cores).max(0.0)
    }
}

/// What else used the machine while a case's load ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineLoad {
    /// Per-interval samples, in order (written as columns, see
    /// [`crate::cpu_columns`]).
    #[serde(with = "crate::cpu_columns")]
    pub seconds: Vec<CpuSecond>,
    /// Mean cores used by other processes over the load (time-weighted).
    pub other_cores_mean: f64,
    /// Highest per-interval cores used by other processes.
    pub other_cores_max: f64,
    /// Mean cores stolen by the hypervisor.
    pub steal_cores_mean: f64,
    /// `/proc/loadavg` (1, 5, 15 min) at the load start.
    pub loadavg_start: [f64; 3],
    /// `/proc/loadavg` at the load end.
    pub loadavg_end: [f64; 3],
    /// How the run's own CPU was measured (`cgroup <path>` or `process tree`).
    pub own_cpu_from: String,
    /// Why the machine counts as busy (thresholds [`BUSY_OTHER_CORES`],
    /// [`BUSY_STEAL_CORES`] on the means); `None` when it was quiet.
    pub busy: Option<String>,
}

impl MachineLoad {
    /// Summarises samples: means are weighted by interval length.
    pub fn from_seconds(
        seconds: Vec<CpuSecond>,
        loadavg_start: [f64; 3],
        loadavg_end: [f64; 3],
        own_cpu_from: String,
    ) -> MachineLoad {
        let total: f64 = seconds.iter().map(|s| s.secs).sum();
        let mean = |f: &dyn Fn(&CpuSecond) -> f64| {
            if total > 0.0 {
                seconds.iter().map(|s| f(s) * s.secs).sum::<f64>() / total
            } else {
                0.0
            }
        };
        let other_cores_mean = mean(&CpuSecond::other_cores);
        let steal_cores_mean = mean(&|s| s.steal_cores);
        let other_cores_max = seconds
            .iter()
            .map(CpuSecond::other_cores)
            .fold(0.0, f64::max);
        let busy = busy_reason(other_cores_mean, steal_cores_mean);
        MachineLoad {
            seconds,
            other_cores_mean,
            other_cores_max,
            steal_cores_mean,
            loadavg_start,
            loadavg_end,
            own_cpu_from,
            busy,
        }
    }
}

/// Why a machine with these means is busy, or `None`.
pub fn busy_reason(other_cores_mean: f64, steal_cores_mean: f64) -> Option<String> {
    let mut why = Vec::new();
    if other_cores_mean > BUSY_OTHER_CORES {
        why.push(format!(
            "other processes used {other_cores_mean:.2} cores on average (threshold {BUSY_OTHER_CORES})"
        ));
    }
    if steal_cores_mean > BUSY_STEAL_CORES {
        why.push(format!(
            "the hypervisor stole {steal_cores_mean:.2} cores on average (threshold {BUSY_STEAL_CORES})"
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(secs: f64, busy: f64, own: f64, steal: f64) -> CpuSecond {
        CpuSecond {
            t_ns: 0,
            secs,
            busy_cores: busy,
            own_cores: own,
            steal_cores: steal,
        }
    }

    #[test]
    fn quiet_machine_is_not_busy() {
        let m = MachineLoad::from_seconds(
            vec![sec(1.0, 1.9, 1.8, 0.0), sec(1.0, 1.5, 1.3, 0.0)],
            [0.0; 3],
            [0.0; 3],
            "process tree".into(),
        );
        assert!((m.other_cores_mean - 0.15).abs() < 1e-9, "{m:?}");
        assert!((m.other_cores_max - 0.2).abs() < 1e-9);
        assert_eq!(m.busy, None);
    }

    #[test]
    fn other_processes_above_the_threshold_make_it_busy_weighted_by_time() {
        // 0.1 s at 2.0 other cores and 0.9 s at 0: mean 0.2, not busy.
        let m = MachineLoad::from_seconds(
            vec![sec(0.1, 2.0, 0.0, 0.0), sec(0.9, 1.0, 1.0, 0.0)],
            [0.0; 3],
            [0.0; 3],
            String::new(),
        );
        assert!((m.other_cores_mean - 0.2).abs() < 1e-9, "{m:?}");
        assert_eq!(m.busy, None);
        let m = MachineLoad::from_seconds(
            vec![sec(1.0, 1.3, 1.0, 0.0)],
            [0.0; 3],
            [0.0; 3],
            String::new(),
        );
        let why = m.busy.unwrap();
        assert!(why.contains("0.30 cores"), "{why}");
    }

    #[test]
    fn own_cpu_above_the_total_counts_as_zero_other() {
        assert_eq!(sec(1.0, 1.0, 1.2, 0.0).other_cores(), 0.0);
    }

    #[test]
    fn steal_makes_it_busy() {
        let why = busy_reason(0.0, 0.05).unwrap();
        assert!(why.contains("stole 0.05"), "{why}");
        assert_eq!(busy_reason(0.25, 0.01), None);
    }

    #[test]
    fn scope_serializes_as_the_report_names_it() {
        assert_eq!(
            serde_json::to_string(&CounterScope::CaseNetns).unwrap(),
            "\"case netns\""
        );
        assert_eq!(
            serde_json::to_string(&CounterScope::HostWide).unwrap(),
            "\"host-wide\""
        );
    }
}
