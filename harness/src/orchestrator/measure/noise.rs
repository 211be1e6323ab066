//! What else used the machine while a case ran: once a second, the
//! machine's busy CPU from `/proc/stat` (user + nice + system + irq +
//! softirq; steal apart) minus the CPU of the run's own processes, and
//! `/proc/loadavg` at the start and the end.
//!
//! The run's own CPU is read from the run's cgroup (`cpu.stat`
//! `usage_usec`) when the watchdog put the harness in one
//! (`reloadbench.<pid>`): it holds the harness (with the in-process load)
//! and everything it started, daemons included. Otherwise it is the
//! harness's `/proc/self/stat` utime + stime + cutime + cstime plus the same
//! of every live descendant (a process that exits moves from the live sum to
//! its parent's cutime, so nothing is counted twice). The busy thresholds
//! are [`reloadbench_model::kernel::BUSY_OTHER_CORES`] and
//! [`reloadbench_model::kernel::BUSY_STEAL_CORES`] on the means.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::kernel::{CpuSecond, MachineLoad};
use reloadbench_observe::owners::descendants;

use super::cpu::clock_ticks_per_s;
use crate::orchestrator::os::procstat::with_stat;

/// Sampling period.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);
/// A last interval shorter than this is left out (tick resolution).
const MIN_TAIL: Duration = Duration::from_millis(200);

/// The machine-wide `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StatCpu {
    /// user + nice + system + irq + softirq (guest time is inside user).
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    /// Stolen by the hypervisor.
    pub steal: u64,
}

/// Parses the first (`cpu `, all CPUs) line of `/proc/stat`.
pub(crate) fn parse_stat(text: &str) -> Option<StatCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    if v.len() < 4 {
        return None;
    }
    Some(StatCpu {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        idle: at(3) + at(4),
        steal: at(7),
    })
}

/// Parses `/proc/loadavg`'s first three fields.
pub(crate) fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `/proc/loadavg` now (zeros when unreadable).
pub(crate) fn loadavg() -> [f64; 3] {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
        .unwrap_or_default()
}

/// Where the run's own CPU time is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnCpu {
    /// `cpu.stat` of the run's cgroup.
    Cgroup(PathBuf),
    /// The harness and its live descendants in `/proc`.
    Tree,
}

impl OwnCpu {
    /// The run's cgroup when the harness is in its own `reloadbench.<pid>`.
    pub(crate) fn detect() -> OwnCpu {
        let me = std::process::id();
        match crate::orchestrator::os::watchdog::cgroup::own_cgroup(me) {
            Ok(dir)
                if dir.file_name().and_then(|n| n.to_str())
                    == Some(&format!("reloadbench.{me}"))
                    && dir.join("cpu.stat").exists() =>
            {
                OwnCpu::Cgroup(dir)
            }
            _ => OwnCpu::Tree,
        }
    }

    /// How the report names it.
    pub(crate) fn describe(&self) -> String {
        match self {
            OwnCpu::Cgroup(p) => format!("cgroup {}", p.display()),
            OwnCpu::Tree => "process tree".to_owned(),
        }
    }

    /// CPU seconds used so far (cumulative).
    pub(crate) fn read_s(&self) -> Option<f64> {
        match self {
            OwnCpu::Cgroup(dir) => {
                let text = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
                let usec: u64 = text
                    .lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))?
                    .trim()
                    .parse()
                    .ok()?;
                Some(usec as f64 / 1e6)
            }
            OwnCpu::Tree => Some(tree_ticks(std::process::id()) as f64 / clock_ticks_per_s()),
        }
    }
}

/// utime + stime + cutime + cstime of `root` and its live descendants.
fn tree_ticks(root: u32) -> u64 {
    descendants(&[root])
        .into_iter()
        .filter_map(|pid| {
            with_stat(pid, |f| {
                let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                Some(n(11) + n(12) + n(13) + n(14))
            })
        })
        .sum()
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    mono_ns: u64,
    stat: StatCpu,
    own_s: f64,
}

fn reading(own: &OwnCpu) -> Option<Reading> {
    let stat = parse_stat(&std::fs::read_to_string("/proc/stat").ok()?)?;
    Some(Reading {
        mono_ns: monotonic_ns(),
        stat,
        own_s: own.read_s()?,
    })
}

fn interval(a: &Reading, b: &Reading, hz: f64) -> CpuSecond {
    let secs = b.mono_ns.saturating_sub(a.mono_ns) as f64 / 1e9;
    let cores = |ticks: u64| {
        if secs > 0.0 {
            ticks as f64 / hz / secs
        } else {
            0.0
        }
    };
    CpuSecond {
        t_ns: b.mono_ns,
        secs,
        busy_cores: cores(b.stat.busy.saturating_sub(a.stat.busy)),
        own_cores: if secs > 0.0 {
            (b.own_s - a.own_s).max(0.0) / secs
        } else {
            0.0
        },
        steal_cores: cores(b.stat.steal.saturating_sub(a.stat.steal)),
    }
}

/// A sampling thread, from [`NoiseSampler::start`] to [`NoiseSampler::finish`].
#[derive(Debug)]
pub(crate) struct NoiseSampler {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Vec<CpuSecond>>,
    own: OwnCpu,
    loadavg_start: [f64; 3],
}

impl NoiseSampler {
    /// Starts sampling now; `None` when `/proc/stat` cannot be read or the
    /// thread cannot be started.
    pub(crate) fn start() -> Option<NoiseSampler> {
        let own = OwnCpu::detect();
        let loadavg_start = loadavg();
        let first = reading(&own)?;
        let (stop, rx) = mpsc::channel::<()>();
        let own2 = own.clone();
        let thread = std::thread::Builder::new()
            .name("noise".into())
            .spawn(move || {
                let hz = clock_ticks_per_s();
                let mut prev = first;
                let mut out = Vec::new();
                loop {
                    let stopped = match rx.recv_timeout(PERIOD) {
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                        Err(RecvTimeoutError::Timeout) => false,
                    };
                    if let Some(r) = reading(&own2) {
                        let short =
                            r.mono_ns.saturating_sub(prev.mono_ns) < MIN_TAIL.as_nanos() as u64;
                        if !(stopped && short) {
                            out.push(interval(&prev, &r, hz));
                            prev = r;
                        }
                    }
                    if stopped {
                        return out;
                    }
                }
            })
            .ok()?;
        Some(NoiseSampler {
            stop,
            thread,
            own,
            loadavg_start,
        })
    }

    /// Stops sampling; sample times become relative to `load_start_mono_ns`.
    pub(crate) fn finish(self, load_start_mono_ns: u64) -> Option<MachineLoad> {
        let _ = self.stop.send(());
        let mut seconds = self.thread.join().ok()?;
        for s in &mut seconds {
            s.t_ns = s.t_ns.saturating_sub(load_start_mono_ns);
        }
        Some(MachineLoad::from_seconds(
            seconds,
            self.loadavg_start,
            loadavg(),
            self.own.describe(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 1000 20 3 2 7 0 0\n\
                        cpu0 50 2 25 500 10 1 1 3 0 0\n\
                        intr 12345\n";

    #[test]
    fn the_all_cpus_line_is_summed_by_kind() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            StatCpu {
                busy: 100 + 5 + 50 + 3 + 2,
                idle: 1000 + 20,
                steal: 7
            }
        );
        // Old kernels: fewer columns.
        let s = parse_stat("cpu 1 2 3 4\n").unwrap();
        assert_eq!((s.busy, s.idle, s.steal), (6, 4, 0));
        assert_eq!(parse_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_stat("cpu  1 x 3 4\n"), None);
    }

    #[test]
    fn loadavg_is_parsed() {
        assert_eq!(
            parse_loadavg("0.52 1.00 2.25 3/456 7890\n"),
            Some([0.52, 1.0, 2.25])
        );
        assert_eq!(parse_loadavg("0.52\n"), None);
    }

    #[test]
    fn an_interval_converts_ticks_to_cores() {
        let a = Reading {
            mono_ns: 0,
            stat: StatCpu {
                busy: 1000,
                idle: 0,
                steal: 0,
            },
            own_s: 10.0,
        };
        let b = Reading {
            mono_ns: 2_000_000_000,
            stat: StatCpu {
                busy: 1300,
                idle: 100,
                steal: 10,
            },
            own_s: 12.0,
        };
        let s = interval(&a, &b, 100.0);
        assert_eq!(s.secs, 2.0);
        assert!((s.busy_cores - 1.5).abs() < 1e-9);
        assert!((s.own_cores - 1.0).abs() < 1e-9);
        assert!((s.steal_cores - 0.05).abs() < 1e-9);
        assert!((s.other_cores() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn own_cpu_counts_a_reaped_busy_child() {
        let own = OwnCpu::Tree;
        let before = own.read_s().unwrap();
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
            .status()
            .unwrap();
        assert!(st.success());
        let after = own.read_s().unwrap();
        assert!(after - before > 0.05, "{before} {after}");
    }
}
