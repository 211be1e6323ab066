//! The samples, compacted for the report: per listening socket its queue
//! depth and owners where they changed, per process its established
//! connections where the count changed.

use std::collections::BTreeMap;

use reloadbench_model::evidence::{CaseEvidence, ConnectionSeries, QueueSeries};

use super::Recording;

/// The case's evidence, times relative to `zero` (the load start).
pub fn case_evidence(rec: &Recording, zero: u64) -> CaseEvidence {
    let rel = |t: u64| t.saturating_sub(zero);
    let mut queues: BTreeMap<u64, QueueSeries> = BTreeMap::new();
    let mut conns: BTreeMap<u32, ConnectionSeries> = BTreeMap::new();
    for s in &rec.samples {
        let t = rel(s.mono_ns);
        for l in &s.listeners {
            let q = queues.entry(l.inode).or_insert_with(|| QueueSeries {
                inode: l.inode,
                first_seen_ns: t,
                ..QueueSeries::default()
            });
            q.last_seen_ns = t;
            q.backlog = l.backlog;
            q.max_depth = q.max_depth.max(l.depth);
            if q.depth.last().is_none_or(|(_, d)| *d != l.depth) {
                q.depth.push((t, l.depth));
            }
            let owners: Vec<u32> = l.owners.iter().copied().collect();
            if q.owners.last().is_none_or(|(_, o)| *o != owners) {
                q.owners.push((t, owners));
            }
        }
        for (pid, c) in conns.iter_mut() {
            if !s.established.contains_key(pid) && c.counts.last().is_some_and(|(_, n)| *n != 0) {
                c.counts.push((t, 0));
            }
        }
        for (&pid, &n) in &s.established {
            let c = conns.entry(pid).or_insert_with(|| ConnectionSeries {
                pid,
                ..ConnectionSeries::default()
            });
            c.max = c.max.max(n);
            if c.counts.last().is_none_or(|(_, m)| *m != n) {
                c.counts.push((t, n));
            }
        }
    }
    CaseEvidence {
        address: rec.address.clone(),
        fast_interval_ns: rec.fast_ns,
        slow_interval_ns: rec.slow_ns,
        samples: rec.samples.len() as u64,
        failed_samples: rec.failed,
        first_error: rec.first_error.clone(),
        sampler_cpu_s: rec.cpu_s,
        queues: in_order_seen(queues),
        connections: conns.into_values().collect(),
    }
}

/// The queues in the order they were first seen (by inode among those seen
/// in the same sample). Inode numbers say nothing about age: the kernel hands
/// them out from per-CPU batches, so a socket created later on another CPU
/// may get a smaller one.
fn in_order_seen(queues: BTreeMap<u64, QueueSeries>) -> Vec<QueueSeries> {
    let mut v: Vec<QueueSeries> = queues.into_values().collect();
    v.sort_by_key(|q| (q.first_seen_ns, q.inode));
    v
}

#[cfg(test)]
mod tests {
    use super::super::{Listener, Sample};
    use super::*;

    #[test]
    fn only_changes_are_kept() {
        let l = |inode, depth, owners: &[u32]| Listener {
            inode,
            owners: owners.iter().copied().collect(),
            depth,
            backlog: 16,
        };
        let s = |t: u64, ls: Vec<Listener>, est: &[(u32, u32)]| Sample {
            mono_ns: 1000 + t,
            listeners: ls,
            established: est.iter().copied().collect(),
            processes: 0,
            masters: Default::default(),
        };
        let rec = Recording {
            samples: vec![
                s(0, vec![l(7, 0, &[1])], &[(1, 2)]),
                s(5, vec![l(7, 0, &[1])], &[(1, 2)]),
                s(10, vec![l(7, 3, &[1, 2])], &[(1, 1)]),
                s(15, vec![l(7, 3, &[2]), l(8, 1, &[2])], &[(2, 1)]),
            ],
            ..Recording::default()
        };
        let e = case_evidence(&rec, 1000);
        assert_eq!(e.samples, 4);
        assert_eq!(e.queues.len(), 2);
        let q = &e.queues[0];
        assert_eq!(q.depth, vec![(0, 0), (10, 3)]);
        assert_eq!(
            q.owners,
            vec![(0, vec![1]), (10, vec![1, 2]), (15, vec![2])]
        );
        assert_eq!((q.first_seen_ns, q.last_seen_ns, q.max_depth), (0, 15, 3));
        assert_eq!(e.max_depth(), 3);
        assert_eq!(e.connections[0].counts, vec![(0, 2), (10, 1), (15, 0)]);
        assert_eq!(e.connections[1].counts, vec![(15, 1)]);
    }

    #[test]
    fn queues_come_in_the_order_they_were_first_seen_not_by_inode() {
        let l = |inode, owners: &[u32]| Listener {
            inode,
            owners: owners.iter().copied().collect(),
            depth: 0,
            backlog: 16,
        };
        let s = |t: u64, ls: Vec<Listener>| Sample {
            mono_ns: t,
            listeners: ls,
            ..Sample::default()
        };
        // The new process's socket (pid 2) got a smaller inode than the old one's.
        let rec = Recording {
            samples: vec![
                s(0, vec![l(900, &[1])]),
                s(5, vec![l(900, &[1]), l(40, &[2])]),
                s(10, vec![l(40, &[2])]),
            ],
            ..Recording::default()
        };
        let e = case_evidence(&rec, 0);
        let order: Vec<(u64, u64, &Vec<u32>)> = e
            .queues
            .iter()
            .map(|q| (q.inode, q.first_seen_ns, &q.owners[0].1))
            .collect();
        assert_eq!(order, vec![(900, 0, &vec![1]), (40, 5, &vec![2])]);
    }
}
