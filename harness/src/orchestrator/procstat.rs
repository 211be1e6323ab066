//! `/proc/<pid>/stat` of a process, split into fields.

/// The fields of a `/proc/<pid>/stat` line after the command name (field
/// 2, which may contain spaces and parentheses): index 0 is the state
/// (field 3 in proc(5)), index `n - 3` is field `n`.
pub fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// `f` applied to the [`stat_fields`] of process `pid`; `None` when the
/// process is gone or its stat line does not parse.
pub fn with_stat<T>(pid: u32, f: impl FnOnce(&[&str]) -> Option<T>) -> Option<T> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    f(&stat_fields(&stat)?)
}

/// The boot-time clock now, in the clock ticks of `/proc/<pid>/stat`'s
/// start time (field 22), rounded down as the kernel rounds start times: a
/// process started after this call has a start time `>=` it. `0` when the
/// clock cannot be read.
pub fn boot_ticks() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    let Ok(t) = clock_gettime(ClockId::CLOCK_BOOTTIME) else {
        return 0;
    };
    let hz = super::cpu::clock_ticks_per_s() as u64;
    let ns = (t.tv_sec().max(0) as u64).saturating_mul(1_000_000_000) + t.tv_nsec().max(0) as u64;
    ns / (1_000_000_000 / hz.clamp(1, 1_000_000_000))
}
