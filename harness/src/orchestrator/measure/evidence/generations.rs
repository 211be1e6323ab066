//! Old processes and generations of any server over time, from the
//! sampler's looks at its process tree and listening sockets: what nginx's
//! "worker process is shutting down", HAProxy's old workers and any other
//! server's draining processes have in common is that they stopped holding
//! a listening socket on the address and have not exited.
//!
//! Per look: a process is old from the first look in which it holds no
//! listening socket on the address while another process does, having held
//! one in an earlier look, until it is seen exited (its pidfd, polled
//! before each look: a process seen exited by a look is not counted in the
//! one before, as it may have exited during it); a process that listens again is not old, nor is a process whose descendant
//! listens (a master that handed its sockets to its workers, as HAProxy's
//! `-W` master after a reload). A look in which no process holds a
//! listening socket counts no process old: a server that replaces its
//! listening socket in place (Caddy binds a new one on each reload) is
//! caught between the two, not replaced. The old processes that were first
//! seen old after the same number of announced actions (an action's own
//! trigger look, taken before it acts, does not count it) stopped at the
//! same reload: one old generation. A process that never listened (a shell that started the
//! server, a helper) is never old; a master that keeps its sockets is never
//! old. The resolution is the sampling interval (5 ms around actions,
//! 100 ms otherwise).

use std::collections::{BTreeSet, HashMap, HashSet};

use reloadbench_model::generations::{GenerationPoint, GenerationSeries, GenerationSource};

use super::Recording;

/// The series of `rec`, times relative to `zero` (the load start); `None`
/// when no look saw a process listening on the address (nothing to tell
/// old from new).
pub(crate) fn series(rec: &Recording, zero: u64) -> Option<GenerationSeries> {
    let mut listened: HashSet<u32> = HashSet::new();
    // Old process -> how many actions had been announced when it was first
    // seen old (its generation).
    let mut old: HashMap<u32, usize> = HashMap::new();
    let mut looks = Vec::with_capacity(rec.samples.len());
    for (i, s) in rec.samples.iter().enumerate() {
        // Exits are polled before a look: a process that exits during the
        // look is seen exited by the next one. Counted gone here, so that a
        // server that ends an old process and then turns the current ones
        // old within one look is never seen with both.
        let until = rec.samples.get(i + 1).map_or(s.mono_ns, |n| n.mono_ns);
        let exited = |p: &u32| rec.exits.get(p).is_some_and(|&t| t <= until);
        // ... and left out of the processes alive, as they are.
        let leaving = listened
            .iter()
            .filter(|p| exited(p) && rec.exits.get(*p).is_some_and(|&t| t > s.mono_ns))
            .count() as u32;
        let now = s.listening_pids();
        listened.extend(now.iter().copied());
        // A master whose workers listen is no old process.
        let current = |p: &u32| now.contains(p) || s.masters.contains(p);
        old.retain(|p, _| !current(p) && !exited(p));
        // Someone else serves: those that stopped are old.
        let serving = !now.is_empty();
        if serving {
            // An action's trigger sample is taken before it acts: what it
            // shows stopped was stopped by the earlier actions.
            let announced = rec.triggers.iter().filter(|&&at| at < i).count();
            for &p in &listened {
                if !current(&p) && !exited(&p) {
                    old.entry(p).or_insert(announced);
                }
            }
        }
        let counted = if serving { old.len() } else { 0 };
        let generations: BTreeSet<usize> = old.values().copied().collect();
        looks.push(GenerationPoint {
            t_ns: s.mono_ns.saturating_sub(zero),
            processes: Some(s.processes.saturating_sub(leaving)),
            old_processes: counted as u32,
            old_generations: if serving { generations.len() as u32 } else { 0 },
        });
    }
    (!listened.is_empty())
        .then(|| GenerationSeries::from_looks(GenerationSource::ProcessTree, looks))
}

#[cfg(test)]
mod tests {
    use super::super::{Listener, Sample};
    use super::*;

    /// A look at `t` ms with `listening` holding the socket, `processes` in the tree.
    fn look(t: u64, listening: &[u32], processes: u32) -> Sample {
        Sample {
            mono_ns: 1_000_000_000 + t * 1_000_000,
            listeners: vec![Listener {
                inode: 7,
                owners: listening.iter().copied().collect(),
                depth: 0,
                backlog: 128,
            }],
            established: Default::default(),
            processes,
            masters: Default::default(),
        }
    }

    #[test]
    fn processes_that_stopped_listening_are_old_until_they_exit() {
        // Master 1 keeps the socket; workers 2, 3 (generation 1), then 4, 5
        // after reload A (at look 2), then 6, 7 after reload B (look 4).
        // Worker 2 exits at look 5, 3 at look 6; 4 and 5 never.
        let rec = Recording {
            samples: vec![
                look(0, &[1, 2, 3], 4),
                look(100, &[1, 2, 3], 4),
                look(200, &[1, 2, 3], 4),
                look(205, &[1, 4, 5], 6),
                look(300, &[1, 4, 5], 6),
                look(305, &[1, 6, 7], 8),
                look(350, &[1, 6, 7], 8),
                look(400, &[1, 6, 7], 7),
                look(450, &[1, 6, 7], 7),
                look(500, &[1, 6, 7], 6),
            ],
            exits: [(2, 1_400_000_000), (3, 1_500_000_000)].into(),
            triggers: vec![2, 4],
            ..Recording::default()
        };
        let s = series(&rec, 1_000_000_000).expect("listeners seen");
        assert_eq!(s.source, GenerationSource::ProcessTree);
        let at = |ms: u64| {
            let p = s.at(ms * 1_000_000).expect("a point");
            (p.processes, p.old_processes, p.old_generations)
        };
        assert_eq!(at(200), (Some(4), 0, 0));
        assert_eq!(at(205), (Some(6), 2, 1));
        assert_eq!(at(305), (Some(8), 4, 2));
        assert_eq!(at(400), (Some(7), 3, 2));
        assert_eq!(at(500), (Some(6), 2, 1));
        assert_eq!((s.old_processes_max, s.old_generations_max), (4, 2));
        // A process seen exited by a look is not counted in the one before
        // (it may have exited during that look): worker 3 at look 450.
        let mut quick = rec.clone();
        quick.samples.remove(8);
        let s = series(&quick, 1_000_000_000).expect("listeners seen");
        let p = s.at(400 * 1_000_000).expect("a point");
        assert_eq!(
            (p.processes, p.old_processes, p.old_generations),
            (Some(6), 2, 1)
        );
        // Reloads faster than the looks: worker 2, stopped by reload A
        // (trigger look 0), is first seen old at reload B's trigger look
        // (1), taken before B acts; worker 3, stopped by B, after it: two
        // generations.
        let bunched = Recording {
            samples: vec![
                look(0, &[1, 2], 2),
                look(100, &[1, 3], 3),
                look(105, &[1, 4], 4),
            ],
            triggers: vec![0, 1],
            ..Recording::default()
        };
        let s = series(&bunched, 1_000_000_000).expect("listeners seen");
        assert_eq!((s.old_processes_max, s.old_generations_max), (2, 2));
        // One process that replaces its listening socket in place: between
        // the close of the old socket and the new one, nobody listens, and
        // it is not old.
        let in_place = Recording {
            samples: vec![look(0, &[9], 1), look(100, &[], 2), look(105, &[9], 1)],
            triggers: vec![1],
            ..Recording::default()
        };
        let s = series(&in_place, 1_000_000_000).expect("listeners seen");
        assert_eq!((s.old_processes_max, s.old_generations_max), (0, 0));
        // A master that listened and then handed the sockets to its
        // workers (HAProxy -W after a reload): its worker listens, it is no
        // old process; the old worker 2 is.
        let mut handed = look(105, &[3], 3);
        handed.masters = [1].into();
        let master = Recording {
            samples: vec![look(0, &[1, 2], 2), handed],
            triggers: vec![0],
            ..Recording::default()
        };
        let s = series(&master, 1_000_000_000).expect("listeners seen");
        assert_eq!((s.old_processes_max, s.old_generations_max), (1, 1));
        // Nothing ever listened: not measured.
        let none = Recording {
            samples: vec![look(0, &[], 1)],
            ..Recording::default()
        };
        assert_eq!(series(&none, 0), None);
    }
}
