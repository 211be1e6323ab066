//! The process table as the watchdog sees it: one `/proc` walk, and the
//! processes of a run found in it (tracked pids, their groups, processes
//! carrying the run's marker, and every descendant of those).

use std::collections::{HashMap, HashSet};

use super::super::procstat::{boot_ticks, proc_info, proc_pids};

/// One live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcInfo {
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
pub(crate) fn info(pid: u32) -> Option<ProcInfo> {
    proc_info(pid).filter(|p| p.alive()).map(|p| ProcInfo {
        pid,
        ppid: p.ppid,
        pgid: p.pgid,
        start: p.start,
    })
}

/// Every live process (zombies left out).
pub(crate) fn snapshot() -> Vec<ProcInfo> {
    proc_pids().filter_map(info).collect()
}

/// Whether `pid`'s environment holds `var=value`.
pub(crate) fn has_env(pid: u32, var: &str, value: &str) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("{var}={value}");
    env.split(|b| *b == 0).any(|e| e == want.as_bytes())
}

/// A process the harness reported (or the watchdog saw descend from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tracked {
    /// Its start time ([`ProcInfo::start`]).
    pub start: u64,
    /// A boot-time tick ([`boot_ticks`]) taken before a look at the process
    /// table that found it alive: it was alive at least until then.
    pub seen: u64,
}

/// What names a process of the run.
#[derive(Debug, Default)]
pub(crate) struct RunSet {
    /// Pids the harness reported, with their start time.
    pub tracked: HashMap<u32, Tracked>,
    /// Environment variable and value every child of the run carries.
    pub marker: Option<(String, String)>,
    /// Pids never to count (the watchdog itself).
    pub exclude: Vec<u32>,
}

impl RunSet {
    /// Records `pid` if it is alive (its start time taken now).
    pub(crate) fn track(&mut self, pid: u32) {
        let seen = boot_ticks();
        if let Some(p) = info(pid) {
            self.tracked.insert(
                pid,
                Tracked {
                    start: p.start,
                    seen,
                },
            );
        }
    }

    /// Records every descendant of `root` in `procs`, a process table read
    /// after the boot-time tick `at`.
    pub(crate) fn track_descendants(&mut self, root: u32, procs: &[ProcInfo], at: u64) {
        let mut seeds = HashSet::from([root]);
        for p in closure(&mut seeds, procs) {
            if p.pid != root && !self.exclude.contains(&p.pid) {
                self.tracked.insert(
                    p.pid,
                    Tracked {
                        start: p.start,
                        seen: at,
                    },
                );
            }
        }
    }

    /// Updates the tracked pids against `procs`, a process table read after
    /// the boot-time tick `at`: the live ones were seen alive at `at`, the
    /// others are dropped (their numbers may be reused from now on).
    pub(crate) fn observe(&mut self, procs: &[ProcInfo], at: u64) {
        let live: HashMap<u32, u64> = procs.iter().map(|p| (p.pid, p.start)).collect();
        self.tracked.retain(|pid, t| {
            let alive = live.get(pid) == Some(&t.start);
            if alive {
                t.seen = t.seen.max(at);
            }
            alive
        });
    }

    /// The process groups in `procs` led by a tracked process: their
    /// members are processes of the run.
    ///
    /// A group's number is its leader's pid; only the process holding pid G
    /// can create group G, and Linux gives no new process a pid still in
    /// use as a group id: while any member of group G lives, G is one group
    /// since its creation. So group G is the tracked leader's when
    /// - the live process with pid G is that leader (same start time), or
    /// - no process with pid G lives, and a member started after the leader
    ///   and before the leader was last seen alive: it was born into the
    ///   leader's group, which has lived on since; a process that reused G
    ///   (and every member of a group it led) started after that.
    pub(crate) fn groups(&self, procs: &[ProcInfo]) -> HashSet<u32> {
        let live: HashMap<u32, u64> = procs.iter().map(|p| (p.pid, p.start)).collect();
        procs
            .iter()
            .filter(|p| {
                self.tracked
                    .get(&p.pgid)
                    .is_some_and(|leader| match live.get(&p.pgid) {
                        Some(start) => *start == leader.start,
                        None => leader.start <= p.start && p.start < leader.seen,
                    })
            })
            .map(|p| p.pgid)
            .collect()
    }

    /// The live processes of the run in `procs`: tracked ones (same start
    /// time), members of their process [`groups`](Self::groups), carriers
    /// of the marker, and every descendant of those.
    pub(crate) fn members(&self, procs: &[ProcInfo]) -> Vec<ProcInfo> {
        let groups = self.groups(procs);
        let mut seeds: HashSet<u32> = HashSet::new();
        for p in procs {
            let tracked = self.tracked.get(&p.pid).map(|t| t.start) == Some(p.start);
            let grouped = groups.contains(&p.pgid);
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

    fn tracked(start: u64, seen: u64) -> Tracked {
        Tracked { start, seen }
    }

    #[test]
    fn members_are_tracked_pids_their_groups_and_descendants() {
        let procs = [
            p(1, 0, 1, 0),
            p(10, 1, 10, 100), // tracked
            p(11, 10, 10, 101),
            p(12, 11, 12, 102), // grandchild in its own group
            p(20, 1, 10, 105),  // re-parented member of group 10
            p(30, 1, 30, 200),  // pid of a tracked process, reused later
            p(31, 30, 30, 201),
            p(40, 1, 40, 10), // unrelated
        ];
        let mut set = RunSet::default();
        set.tracked.insert(10, tracked(100, 150));
        set.tracked.insert(30, tracked(60, 150));
        let mut got: Vec<u32> = set.members(&procs).iter().map(|p| p.pid).collect();
        got.sort_unstable();
        assert_eq!(got, vec![10, 11, 12, 20]);
        set.exclude.push(12);
        let got: Vec<u32> = set.members(&procs).iter().map(|p| p.pid).collect();
        assert!(!got.contains(&12));
    }

    #[test]
    fn a_group_whose_leader_is_gone_counts_when_a_member_started_while_it_lived() {
        let procs = [
            p(1, 0, 1, 0),
            p(51, 1, 50, 110), // started after the leader, before it was last seen
            p(52, 1, 50, 150), // started when the leader was last seen: may follow a reuser
            p(54, 1, 50, 90),  // started before the leader
            p(91, 1, 90, 300), // member of a later group 90 whose leader reused the pid
            p(92, 1, 90, 150),
        ];
        let mut set = RunSet::default();
        set.tracked.insert(50, tracked(100, 150));
        set.tracked.insert(90, tracked(100, 150));
        let mut got: Vec<u32> = set.members(&procs).iter().map(|p| p.pid).collect();
        got.sort_unstable();
        // Member 51 shows group 50 is the leader's: all its members count.
        assert_eq!(got, vec![51, 52, 54]);
    }

    #[test]
    fn a_group_is_the_leaders_while_a_member_born_in_its_lifetime_lives() {
        let procs = [
            p(1, 0, 1, 0),
            p(61, 1, 60, 120), // born while leader 60 lived
            p(62, 1, 60, 400), // forked later by a member
            p(70, 1, 71, 10),  // a member of a group whose leader is alive...
            p(71, 1, 71, 300), // ...but a reuser of the tracked pid 71
            p(81, 1, 80, 500), // group 80: every member started after the leader was seen
        ];
        let mut set = RunSet::default();
        set.tracked.insert(60, tracked(100, 150));
        set.tracked.insert(71, tracked(50, 150));
        set.tracked.insert(80, tracked(100, 150));
        assert_eq!(set.groups(&procs), HashSet::from([60]));
        let mut got: Vec<u32> = set.members(&procs).iter().map(|p| p.pid).collect();
        got.sort_unstable();
        assert_eq!(got, vec![61, 62]);
    }

    #[test]
    fn observing_drops_dead_pids_and_notes_live_ones() {
        let procs = [p(1, 0, 1, 0), p(10, 1, 10, 100), p(30, 1, 30, 200)];
        let mut set = RunSet::default();
        set.tracked.insert(10, tracked(100, 120));
        set.tracked.insert(20, tracked(100, 120)); // gone
        set.tracked.insert(30, tracked(60, 120)); // its pid reused
        set.observe(&procs, 250);
        let got: Vec<(u32, Tracked)> = set.tracked.into_iter().collect();
        assert_eq!(got, vec![(10, tracked(100, 250))]);
    }

    #[test]
    fn descendants_of_a_root_are_tracked_with_their_start_time() {
        let procs = [p(5, 1, 5, 1), p(6, 5, 6, 2), p(7, 6, 7, 3), p(8, 1, 8, 4)];
        let mut set = RunSet::default();
        set.track_descendants(5, &procs, 9);
        let mut got: Vec<(u32, Tracked)> = set.tracked.into_iter().collect();
        got.sort_unstable_by_key(|(pid, _)| *pid);
        assert_eq!(got, vec![(6, tracked(2, 9)), (7, tracked(3, 9))]);
    }

    #[test]
    fn boot_ticks_bound_the_start_time_of_a_new_process() {
        let before = boot_ticks();
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let seen = info(child.id());
        let after = boot_ticks();
        let _ = child.kill();
        let _ = child.wait();
        let start = seen.unwrap().start;
        assert!(
            before <= start && start <= after,
            "{before} {start} {after}"
        );
    }

    #[test]
    fn this_process_is_seen_with_its_parent() {
        let me = info(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(snapshot().contains(&me));
    }
}
