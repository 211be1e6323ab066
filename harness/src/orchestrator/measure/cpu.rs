//! CPU time of the participants of a case.
//!
//! Method (also in the README):
//! - **loadgen**: the load generator runs inside the harness process, so its
//!   CPU time is the `getrusage(RUSAGE_SELF)` delta over the case (user +
//!   system, all threads; it includes the harness's own small bookkeeping).
//! - **proxy**: the `getrusage(RUSAGE_CHILDREN)` delta from the start of
//!   the case until every process of the system under test has been stopped
//!   and reaped (every child the harness reaped, with their own reaped
//!   descendants such as master-worker workers, and daemonized servers the
//!   harness adopted as subreaper). It covers every generation of the proxy,
//!   including the last milliseconds before each exit that a `/proc` sample
//!   would miss; `exec` actions and command steps of the case count here
//!   too.
//! - **origin**: the further `RUSAGE_CHILDREN` delta of stopping and reaping
//!   the origin, which goes last (its `/proc/<pid>/stat` utime + stime when
//!   it could not be reaped, or died during the case).

use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{SysconfVar, sysconf};

use crate::orchestrator::os::procstat::stat_fields;

/// A pair of readings taken at the start of a case.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMark {
    self_s: f64,
    children_s: f64,
}

impl CpuMark {
    /// Reads the counters now.
    pub(crate) fn now() -> CpuMark {
        CpuMark {
            self_s: rusage_s(UsageWho::RUSAGE_SELF),
            children_s: rusage_s(UsageWho::RUSAGE_CHILDREN),
        }
    }

    /// CPU seconds of this process since the mark.
    pub(crate) fn self_delta(&self) -> f64 {
        (rusage_s(UsageWho::RUSAGE_SELF) - self.self_s).max(0.0)
    }

    /// CPU seconds of reaped children since the mark.
    pub(crate) fn children_delta(&self) -> f64 {
        (rusage_s(UsageWho::RUSAGE_CHILDREN) - self.children_s).max(0.0)
    }
}

fn rusage_s(who: UsageWho) -> f64 {
    match getrusage(who) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// utime + stime of a live process from `/proc/<pid>/stat`, in seconds.
pub(crate) fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_s())
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in ticks.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let fields = stat_fields(stat)?;
    // utime is field 14 -> index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`_SC_CLK_TCK`), the unit of `/proc/<pid>/stat` times.
pub(crate) fn clock_ticks_per_s() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_ticks_match_getconf() {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf");
        let getconf: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a number");
        assert_eq!(clock_ticks_per_s(), getconf);
    }

    #[test]
    fn stat_line_with_spaces_in_name_parses() {
        let line = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_ticks(line), Some(300));
    }

    #[test]
    fn own_process_has_cpu_time_and_marks_do_not_go_negative() {
        let m = CpuMark::now();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(proc_cpu_s(std::process::id()).is_some());
        assert!(m.self_delta() >= 0.0);
        assert!(m.children_delta() >= 0.0);
    }
}
