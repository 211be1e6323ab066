//! `/proc/<pid>/stat` of a process, split into fields, and the walk over
//! the pids in `/proc`.

/// The fields of a `/proc/<pid>/stat` line after the command name (field
/// 2, which may contain spaces and parentheses): index 0 is the state
/// (field 3 in proc(5)), index `n - 3` is field `n`.
pub(crate) fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// `f` applied to the [`stat_fields`] of process `pid`; `None` when the
/// process is gone or its stat line does not parse.
pub(crate) fn with_stat<T>(pid: u32, f: impl FnOnce(&[&str]) -> Option<T>) -> Option<T> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    f(&stat_fields(&stat)?)
}

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Its state (field 3): `R`, `S`, ..., `Z` for a zombie, `X` for dead.
    pub state: char,
    /// Its parent (field 4).
    pub ppid: u32,
    /// Its process group (field 5).
    pub pgid: u32,
    /// Start time in clock ticks since boot (field 22): with the pid, it
    /// names one process even after the number is reused.
    pub start: u64,
}

impl ProcStat {
    /// Whether the process is alive: neither a zombie nor dead.
    pub(crate) fn alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// The [`ProcStat`] of process `pid`, zombies included; `None` when it is
/// gone or its stat line does not parse.
pub(crate) fn proc_info(pid: u32) -> Option<ProcStat> {
    with_stat(pid, |f| {
        Some(ProcStat {
            state: f.first()?.chars().next()?,
            ppid: f.get(1)?.parse().ok()?,
            pgid: f.get(2)?.parse().ok()?,
            start: f.get(22 - 3)?.parse().ok()?,
        })
    })
}

/// The pids in `/proc` now (zombies included); empty when it cannot be read.
pub(crate) fn proc_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
}

/// The boot-time clock now, in the clock ticks of `/proc/<pid>/stat`'s
/// start time (field 22), rounded down as the kernel rounds start times: a
/// process started after this call has a start time `>=` it. `0` when the
/// clock cannot be read.
pub(crate) fn boot_ticks() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    let Ok(t) = clock_gettime(ClockId::CLOCK_BOOTTIME) else {
        return 0;
    };
    let hz = crate::orchestrator::measure::cpu::clock_ticks_per_s() as u64;
    let ns = (t.tv_sec().max(0) as u64).saturating_mul(1_000_000_000) + t.tv_nsec().max(0) as u64;
    ns / (1_000_000_000 / hz.clamp(1, 1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_listed_and_alive_with_its_parent_and_group() {
        let me = std::process::id();
        let st = proc_info(me).unwrap();
        assert!(st.alive());
        assert_eq!(st.ppid, std::os::unix::process::parent_id());
        assert_eq!(st.pgid, nix::unistd::getpgrp().as_raw() as u32);
        assert!(proc_pids().any(|p| p == me));
    }

    #[test]
    fn a_zombie_is_listed_and_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: it stays a zombie once it has exited.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut st = proc_info(pid);
        while st.is_some_and(|s| s.alive()) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
            st = proc_info(pid);
        }
        let listed = proc_pids().any(|p| p == pid);
        child.wait().unwrap();
        let st = st.unwrap();
        assert_eq!(st.state, 'Z');
        assert!(!st.alive());
        assert!(listed);
    }
}
