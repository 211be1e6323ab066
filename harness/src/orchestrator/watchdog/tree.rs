//! The process table as the watchdog sees it: one `/proc` walk, and the
//! processes of a run found in it (tracked pids, their groups, processes
//! carrying the run's marker, and every descendant of those).

use std::collections::{HashMap, HashSet};

use super::super::procstat::with_stat;

/// One live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    /// Its pid.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// Its process group.
    pub pgid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22):
    /// with the pid, it names one process even after the number is reused.
    pub start: u64,
}

/// `pid`'s [`ProcInfo`]; `None` when it is gone or a zombie.
pub fn info(pid: u32) -> Option<ProcInfo> {
    with_stat(pid, |f| {
        if matches!(f.first(), Some(&"Z") | Some(&"X") | None) {
            return None;
        }
        Some(ProcInfo {
            pid,
            ppid: f.get(1)?.parse().ok()?,
            pgid: f.get(2)?.parse().ok()?,
            start: f.get(22 - 3)?.parse().ok()?,
        })
    })
}

/// Every live process (zombies left out).
pub fn snapshot() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(info)
        .collect()
}

/// Whether `pid`'s environment holds `var=value`.
pub fn has_env(pid: u32, var: &str, value: &str) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("{var}={value}");
    env.split(|b| *b == 0).any(|e| e == want.as_bytes())
}

/// What names a process of the run.
#[derive(Debug, Default)]
pub struct RunSet {
    /// Pids the harness reported, with their start time.
    pub tracked: HashMap<u32, u64>,
    /// Environment variable and value every child of the run carries.
    pub marker: Option<(String, String)>,
    /// Pids never to count (the watchdog itself).
    pub exclude: Vec<u32>,
}

impl RunSet {
    /// Records `pid` if it is alive (its start time taken now).
    pub fn track(&mut self, pid: u32) {
        if let Some(p) = info(pid) {
            self.tracked.insert(pid, p.start);
        }
    }

    /// Records every descendant of `root` in `procs`.
    pub fn track_descendants(&mut self, root: u32, procs: &[ProcInfo]) {
        let mut seeds = HashSet::from([root]);
        for p in closure(&mut seeds, procs) {
            if p.pid != root && !self.exclude.contains(&p.pid) {
                self.tracked.insert(p.pid, p.start);
            }
        }
    }

    /// The live processes of the run in `procs`: tracked ones (same start
    /// time), members of their process groups started after the leader,
    /// carriers of the marker, and every descendant of those.
    pub fn members(&self, procs: &[ProcInfo]) -> Vec<ProcInfo> {
        let mut seeds: HashSet<u32> = HashSet::new();
        for p in procs {
            let tracked = self.tracked.get(&p.pid) == Some(&p.start);
            let grouped = self
                .tracked
                .get(&p.pgid)
                .is_some_and(|leader| p.start >= *leader);
            let marked = self
                .marker
                .as_ref()
                .is_some_and(|(var, value)| has_env(p.pid, var, value));
            if tracked || grouped || marked {
                seeds.insert(p.pid);
            }
        }
        closure(&mut seeds, procs)
            .into_iter()
            .filter(|p| !self.exclude.contains(&p.pid))
            .collect()
    }
}

/// The processes of `procs` in `seeds` or descending from one of them;
/// `seeds` grows to hold all their pids.
fn closure(seeds: &mut HashSet<u32>, procs: &[ProcInfo]) -> Vec<ProcInfo> {
    loop {
        let before = seeds.len();
        for p in procs {
            if seeds.contains(&p.ppid) {
                seeds.insert(p.pid);
            }
        }
        if seeds.len() == before {
            break;
        }
    }
    procs
        .iter()
        .filter(|p| seeds.contains(&p.pid))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, pgid: u32, start: u64) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            pgid,
            start,
        }
    }

    #[test]
    fn members_are_tracked_pids_their_groups_and_descendants() {
        let procs = [
            p(1, 0, 1, 0),
            p(10, 1, 10, 100), // tracked
            p(11, 10, 10, 101),
            p(12, 11, 12, 102), // grandchild in its own group
            p(20, 1, 10, 105),  // re-parented member of group 10
            p(30, 1, 30, 50),   // pid of a tracked process, reused
            p(31, 30, 30, 51),
            p(40, 1, 40, 10), // unrelated
        ];
        let mut set = RunSet::default();
        set.tracked.insert(10, 100);
        set.tracked.insert(30, 60);
        let mut got: Vec<u32> = set.members(&procs).iter().map(|p| p.pid).collect();
        got.sort_unstable();
        assert_eq!(got, vec![10, 11, 12, 20]);
        set.exclude.push(12);
        let got: Vec<u32> = set.members(&procs).iter().map(|p| p.pid).collect();
        assert!(!got.contains(&12));
    }

    #[test]
    fn descendants_of_a_root_are_tracked_with_their_start_time() {
        let procs = [p(5, 1, 5, 1), p(6, 5, 6, 2), p(7, 6, 7, 3), p(8, 1, 8, 4)];
        let mut set = RunSet::default();
        set.track_descendants(5, &procs);
        let mut got: Vec<(u32, u64)> = set.tracked.into_iter().collect();
        got.sort_unstable();
        assert_eq!(got, vec![(6, 2), (7, 3)]);
    }

    #[test]
    fn this_process_is_seen_with_its_parent() {
        let me = info(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(snapshot().contains(&me));
    }
}
