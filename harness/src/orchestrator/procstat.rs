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
