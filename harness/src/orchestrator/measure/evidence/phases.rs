//! An action's observed phases, from the samples (definitions in
//! `harness/README.md`, "Observed reload phases").
//!
//! The action's window runs from its trigger sample to the next action's
//! trigger sample (or the last sample). `old` = processes holding a listening
//! socket at the trigger and none at the window's end; `new` = processes
//! holding one after the trigger and not at it. Then, each the first sample
//! after the trigger where it holds:
//! - new listening: a process not listening at the trigger holds a
//!   listening socket (searched within the window);
//! - old stopped accepting: no old process holds a listening socket;
//! - old drained (from "stopped accepting" on): no old process holds an
//!   established connection on the address;
//! - old exited: every old process was seen to exit (the latest exit).
//!
//! A phase not seen stays `None`: with no old process (nothing was
//! replaced, or it was still listening when the window ended), the three
//! "old" phases are not observed.

use std::collections::{BTreeMap, BTreeSet};

use reloadbench_model::evidence::ObservedPhases;

use super::Sample;

/// The phases of the action whose trigger sample is `at`, whose window ends
/// before sample `end` (exclusive), on a clock where `zero` is the load start.
pub fn observe(
    samples: &[Sample],
    exits: &BTreeMap<u32, u64>,
    at: usize,
    end: usize,
    zero: u64,
) -> ObservedPhases {
    let rel = |t: u64| t.saturating_sub(zero);
    let Some(first) = samples.get(at) else {
        return ObservedPhases::default();
    };
    let end = end.clamp(at + 1, samples.len());
    let before = first.listening_pids();
    let after = samples[end - 1].listening_pids();
    let old: BTreeSet<u32> = before.difference(&after).copied().collect();
    let window = &samples[at + 1..end];
    let new: BTreeSet<u32> = window
        .iter()
        .flat_map(Sample::listening_pids)
        .filter(|p| !before.contains(p))
        .collect();
    let new_listening = window
        .iter()
        .find(|s| s.listening_pids().iter().any(|p| !before.contains(p)))
        .map(|s| s.mono_ns);
    let later = &samples[at + 1..];
    let (stopped, drained) = if old.is_empty() {
        (None, None)
    } else {
        let stop_at = later
            .iter()
            .position(|s| s.listening_pids().is_disjoint(&old));
        let drained = stop_at.and_then(|i| {
            later[i..]
                .iter()
                .find(|s| old.iter().all(|p| holds_none(s, exits, *p)))
                .map(|s| s.mono_ns)
        });
        (stop_at.map(|i| later[i].mono_ns), drained)
    };
    let exited = if old.is_empty() {
        None
    } else {
        old.iter()
            .map(|p| exits.get(p).copied().filter(|t| *t >= first.mono_ns))
            .collect::<Option<Vec<u64>>>()
            .and_then(|t| t.into_iter().max())
    };
    ObservedPhases {
        old_pids: old.into_iter().collect(),
        new_pids: new.into_iter().collect(),
        new_listening_ns: new_listening.map(rel),
        old_stopped_accepting_ns: stopped.map(rel),
        old_drained_ns: drained.map(rel),
        old_exited_ns: exited.map(rel),
        resolution_ns: resolution(samples, at),
    }
}

/// Whether `pid` held no connection on the address at sample `s`: counted
/// 0, or seen exited by then. A process not counted in `s` is not known to
/// hold none.
fn holds_none(s: &Sample, exits: &BTreeMap<u32, u64>, pid: u32) -> bool {
    s.established.get(&pid) == Some(&0) || exits.get(&pid).is_some_and(|t| *t <= s.mono_ns)
}

/// The widest gap between samples in the second after the trigger sample.
fn resolution(samples: &[Sample], at: usize) -> u64 {
    let t0 = samples[at].mono_ns;
    samples[at..]
        .windows(2)
        .take_while(|w| w[0].mono_ns <= t0 + 1_000_000_000)
        .map(|w| w[1].mono_ns.saturating_sub(w[0].mono_ns))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::Listener;
    use super::*;

    /// A sample at `t` ms: listeners as (inode, owners), connections as (pid, n).
    fn s(t: u64, listeners: &[(u64, &[u32])], est: &[(u32, u32)]) -> Sample {
        Sample {
            mono_ns: t * 1_000_000,
            listeners: listeners
                .iter()
                .map(|(inode, owners)| Listener {
                    inode: *inode,
                    owners: owners.iter().copied().collect(),
                    depth: 0,
                    backlog: 128,
                })
                .collect(),
            established: est.iter().copied().collect(),
            processes: 0,
            masters: Default::default(),
        }
    }

    fn ms(v: Option<u64>) -> Option<u64> {
        v.map(|n| n / 1_000_000)
    }

    #[test]
    fn fd_pass_same_socket_gains_then_loses_an_owner() {
        let samples = [
            s(100, &[(7, &[10])], &[(10, 5)]),
            s(105, &[(7, &[10, 11])], &[(10, 5)]),
            s(110, &[(7, &[11])], &[(10, 3)]),
            s(115, &[(7, &[11])], &[(10, 0)]),
            s(120, &[(7, &[11])], &[(10, 0)]),
        ];
        let exits = BTreeMap::from([(10, 118 * 1_000_000)]);
        let p = observe(&samples, &exits, 0, samples.len(), 0);
        assert_eq!(p.old_pids, vec![10]);
        assert_eq!(p.new_pids, vec![11]);
        assert_eq!(ms(p.new_listening_ns), Some(105));
        assert_eq!(ms(p.old_stopped_accepting_ns), Some(110));
        assert_eq!(ms(p.old_drained_ns), Some(115));
        assert_eq!(ms(p.old_exited_ns), Some(118));
        assert_eq!(p.resolution_ns, 5_000_000);
    }

    #[test]
    fn restart_has_a_gap_where_nobody_listens() {
        let samples = [
            s(0, &[(7, &[10])], &[]),
            s(5, &[], &[]),
            s(10, &[], &[]),
            s(15, &[(8, &[12])], &[]),
        ];
        let exits = BTreeMap::from([(10, 5 * 1_000_000)]);
        let p = observe(&samples, &exits, 0, samples.len(), 0);
        assert_eq!(ms(p.old_stopped_accepting_ns), Some(5));
        assert_eq!(ms(p.old_drained_ns), Some(5));
        assert_eq!(ms(p.old_exited_ns), Some(5));
        assert_eq!(ms(p.new_listening_ns), Some(15));
    }

    #[test]
    fn a_master_that_keeps_its_socket_is_not_old() {
        let samples = [
            s(0, &[(7, &[1, 10])], &[(10, 3)]),
            s(5, &[(7, &[1, 10, 11])], &[(10, 3)]),
            s(10, &[(7, &[1, 11])], &[(10, 1)]),
            s(15, &[(7, &[1, 11])], &[(10, 0)]),
        ];
        let p = observe(&samples, &BTreeMap::new(), 0, samples.len(), 0);
        assert_eq!(p.old_pids, vec![10]);
        assert_eq!(ms(p.new_listening_ns), Some(5));
        assert_eq!(ms(p.old_stopped_accepting_ns), Some(10));
        assert_eq!(ms(p.old_drained_ns), Some(15));
        // Its exit was never seen: not observed, not borrowed from another phase.
        assert_eq!(p.old_exited_ns, None);
    }

    #[test]
    fn a_process_not_counted_is_not_drained() {
        let samples = [
            s(0, &[(7, &[10])], &[]),
            s(5, &[(8, &[11])], &[(10, 2)]),
            s(10, &[(8, &[11])], &[]),
        ];
        let p = observe(&samples, &BTreeMap::new(), 0, samples.len(), 0);
        assert_eq!(ms(p.old_stopped_accepting_ns), Some(5));
        assert_eq!(p.old_drained_ns, None);
    }

    #[test]
    fn nothing_replaced_means_no_old_phases() {
        let samples = [s(0, &[(7, &[10])], &[]), s(5, &[(7, &[10])], &[])];
        let p = observe(&samples, &BTreeMap::new(), 0, samples.len(), 0);
        assert!(p.old_pids.is_empty());
        assert_eq!(p.new_listening_ns, None);
        assert_eq!(p.old_stopped_accepting_ns, None);
        assert_eq!(p.old_drained_ns, None);
        assert_eq!(p.old_exited_ns, None);
    }

    #[test]
    fn the_window_ends_at_the_next_trigger() {
        // Action 0 at sample 0, action 1 at sample 2: pid 11 appears only
        // after action 1's trigger, so action 0 saw nothing new.
        let samples = [
            s(0, &[(7, &[10])], &[]),
            s(5, &[(7, &[10])], &[]),
            s(10, &[(7, &[10])], &[]),
            s(15, &[(8, &[11]), (7, &[10])], &[]),
        ];
        let p0 = observe(&samples, &BTreeMap::new(), 0, 2, 0);
        assert_eq!(p0.new_listening_ns, None);
        let p1 = observe(&samples, &BTreeMap::new(), 2, samples.len(), 0);
        assert_eq!(ms(p1.new_listening_ns), Some(15));
        assert_eq!(p1.new_pids, vec![11]);
    }
}
