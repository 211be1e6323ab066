//! How many old generations of the proxy were alive at once, from its
//! events: a generation is alive from its first `ready` to its `exited`
//! (a master-worker master relays its workers' events; a generation's
//! processes count once). Long-lived connections (kept WebSocket tunnels)
//! hold old generations; this is the pile-up.

use reloadbench_model::event::{Event, EventKind};
use reloadbench_model::generations::{GenerationPoint, GenerationSeries, GenerationSource};

use super::events::Stamped;

/// The name of the reference proxy's processes in the event stream.
const SOURCE: &str = "refproxy";

/// The most generations alive at once less the newest, over the case, from
/// the reference proxy's events (the origin's are not the proxy's); `None`
/// when it reported no `ready` event.
pub(crate) fn old_generations_max(events: &[Stamped]) -> Option<u64> {
    let evs = proxy_events(events);
    let mut alive = std::collections::BTreeSet::new();
    let mut most: Option<u64> = None;
    for e in evs {
        match e.kind {
            EventKind::Ready { generation, .. } => {
                alive.insert(generation);
                let old = alive.len().saturating_sub(1) as u64;
                most = Some(most.map_or(old, |m| m.max(old)));
            }
            EventKind::Exited { generation, .. } => {
                alive.remove(&generation);
            }
            _ => {}
        }
    }
    most
}

/// The old generations over time from the reference proxy's events, as
/// [`old_generations_max`] counts them: a point at every `ready` and
/// `exited`, times relative to `zero` (the load start; earlier events at 0);
/// `None` when it reported no `ready` event.
pub(crate) fn events_series(events: &[Stamped], zero: u64) -> Option<GenerationSeries> {
    let evs = proxy_events(events);
    let mut alive = std::collections::BTreeSet::new();
    let mut looks = Vec::new();
    for e in evs {
        match e.kind {
            EventKind::Ready { generation, .. } => {
                alive.insert(generation);
            }
            EventKind::Exited { generation, .. } => {
                if !alive.remove(&generation) {
                    continue;
                }
            }
            _ => continue,
        }
        let old = alive.len().saturating_sub(1) as u32;
        looks.push(GenerationPoint {
            t_ns: e.mono_ns.saturating_sub(zero),
            processes: None,
            old_processes: old,
            old_generations: old,
        });
    }
    (!looks.is_empty()).then(|| GenerationSeries::from_looks(GenerationSource::Events, looks))
}

/// The reference proxy's events in the order they happened.
fn proxy_events(events: &[Stamped]) -> Vec<&Event> {
    let mut evs: Vec<_> = events
        .iter()
        .filter(|s| s.source == SOURCE)
        .filter_map(Stamped::event)
        .collect();
    evs.sort_by_key(|e| e.mono_ns);
    evs
}

#[cfg(test)]
mod tests {
    use reloadbench_model::event::Event;

    use super::super::events::{Payload, Stream};
    use super::*;

    fn at(mono_ns: u64, pid: u32, kind: EventKind) -> Stamped {
        from("refproxy", mono_ns, pid, kind)
    }

    fn from(source: &str, mono_ns: u64, pid: u32, kind: EventKind) -> Stamped {
        Stamped {
            recv_mono_ns: mono_ns,
            source: source.into(),
            source_pid: 1,
            stream: Stream::Stdout,
            payload: Payload::Event(Event { mono_ns, pid, kind }),
        }
    }

    fn ready(t: u64, pid: u32, generation: u64) -> Stamped {
        at(
            t,
            pid,
            EventKind::Ready {
                generation,
                addrs: Vec::new(),
            },
        )
    }

    fn exited(t: u64, pid: u32, generation: u64) -> Stamped {
        at(
            t,
            pid,
            EventKind::Exited {
                generation,
                code: 0,
            },
        )
    }

    #[test]
    fn counts_generations_alive_at_once_less_the_newest() {
        // Gen 1 is held (by a tunnel) through two reloads; gen 2 drains at
        // once; the master (pid 10) and gen 1's worker (11) are one
        // generation. Read out of order: sorted by the event's clock.
        let evs = [
            ready(1, 10, 1),
            ready(2, 11, 1),
            ready(20, 13, 3),
            ready(10, 12, 2),
            exited(15, 12, 2),
            exited(30, 11, 1),
            exited(40, 13, 3),
        ];
        // At 10: {1, 2}; at 20: {1, 3}: one old generation at most.
        assert_eq!(old_generations_max(&evs), Some(1));
        // Gen 2 still alive when gen 3 is ready: two old ones.
        let evs = [
            ready(1, 10, 1),
            ready(10, 12, 2),
            ready(20, 13, 3),
            exited(25, 12, 2),
        ];
        assert_eq!(old_generations_max(&evs), Some(2));
        // The same over time, from the load start at 5: gen 1 and 2 alive
        // at 10 (one old), three at 20 (two old), two after 25.
        let s = events_series(&evs, 5).expect("a series");
        let olds: Vec<(u64, u32)> = s
            .points
            .iter()
            .map(|p| (p.t_ns, p.old_generations))
            .collect();
        assert_eq!(olds, [(0, 0), (5, 1), (15, 2), (20, 1)]);
        assert_eq!(s.old_generations_max, 2);
        assert_eq!(events_series(&[], 0), None);
        // A server without events: not measured; the origin's own ready
        // event is not the proxy's.
        assert_eq!(old_generations_max(&[]), None);
        let origin = from(
            "origin",
            1,
            9,
            EventKind::Ready {
                generation: 1,
                addrs: Vec::new(),
            },
        );
        assert_eq!(old_generations_max(&[origin]), None);
        assert_eq!(old_generations_max(&[ready(1, 10, 1)]), Some(0));
    }
}
