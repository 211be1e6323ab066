//! Old generations of the server over time: how many processes (and
//! generations) that a reload replaced were still alive, sample by sample.
//! Long-lived connections (kept WebSocket tunnels) hold old processes; this
//! is the pile-up, as a series for the timeline and its maximum for the
//! expectations (`old_generations_max`).
//!
//! Two sources, named in [`GenerationSource`]:
//! - the reference proxy's events: a generation is alive from its first
//!   `ready` to its `exited`; old = alive less the newest;
//! - the server's process tree (any server, e.g. nginx, HAProxy): a process
//!   is old from the first sample in which it no longer holds a listening
//!   socket on the address, after holding one, until it is seen to exit
//!   (the sampler of `crate::evidence`); the processes that stopped
//!   listening after the same reload are one old generation.

use serde::{Deserialize, Serialize};

/// Where a [`GenerationSeries`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerationSource {
    /// The proxy's own `ready` / `exited` events.
    Events,
    /// Samples of the server's process tree and listening sockets.
    ProcessTree,
}

impl GenerationSource {
    /// How the counts were taken, for a report's note.
    pub fn how(self) -> &'static str {
        match self {
            GenerationSource::Events => {
                "from the proxy's events: a generation is alive from its first ready to its \
                 exited; old = alive less the newest"
            }
            GenerationSource::ProcessTree => {
                "from the process tree: a process is old from the first sample in which it no \
                 longer holds a listening socket on the address (after holding one) until it \
                 exits; those that stopped after the same reload are one old generation"
            }
        }
    }
}

/// The counts at one time, kept where one of them changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationPoint {
    /// Time since the load start, ns.
    pub t_ns: u64,
    /// Processes of the server alive (process tree only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
    /// Old processes alive.
    pub old_processes: u32,
    /// Old generations alive.
    pub old_generations: u32,
}

/// Old generations over a case (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationSeries {
    /// How the counts were taken.
    pub source: GenerationSource,
    /// The counts where they changed, in time order (the first point is
    /// the first look).
    pub points: Vec<GenerationPoint>,
    /// The most old generations alive at once.
    pub old_generations_max: u64,
    /// The most old processes alive at once.
    pub old_processes_max: u64,
}

impl GenerationSeries {
    /// A series from the counts of every look, in time order: only the
    /// changes kept, the maxima taken over all.
    pub fn from_looks(
        source: GenerationSource,
        looks: impl IntoIterator<Item = GenerationPoint>,
    ) -> GenerationSeries {
        let mut s = GenerationSeries {
            source,
            points: Vec::new(),
            old_generations_max: 0,
            old_processes_max: 0,
        };
        for p in looks {
            s.old_generations_max = s.old_generations_max.max(u64::from(p.old_generations));
            s.old_processes_max = s.old_processes_max.max(u64::from(p.old_processes));
            let same = s.points.last().is_some_and(|q| {
                (q.processes, q.old_processes, q.old_generations)
                    == (p.processes, p.old_processes, p.old_generations)
            });
            if !same {
                s.points.push(p);
            }
        }
        s
    }

    /// The counts in force at `t_ns` (the last point at or before it).
    pub fn at(&self, t_ns: u64) -> Option<&GenerationPoint> {
        self.points.iter().take_while(|p| p.t_ns <= t_ns).last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t_ns: u64, old: u32, gens: u32) -> GenerationPoint {
        GenerationPoint {
            t_ns,
            processes: Some(2 + old),
            old_processes: old,
            old_generations: gens,
        }
    }

    #[test]
    fn keeps_changes_and_maxima() {
        let s = GenerationSeries::from_looks(
            GenerationSource::ProcessTree,
            [
                p(0, 0, 0),
                p(5, 0, 0),
                p(10, 2, 1),
                p(15, 4, 2),
                p(20, 2, 1),
            ],
        );
        assert_eq!(s.points.len(), 4);
        assert_eq!((s.old_processes_max, s.old_generations_max), (4, 2));
        assert_eq!(s.at(12).map(|p| p.old_processes), Some(2));
        assert_eq!(s.at(5).map(|p| p.t_ns), Some(0));
        let json = serde_json::to_string(&s).unwrap_or_default();
        let back: GenerationSeries = serde_json::from_str(&json).expect("read back");
        assert_eq!(back, s);
    }
}
