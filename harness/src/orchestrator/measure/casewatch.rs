//! What a case's load is watched with besides the clients: TCP counters
//! ([`super::nstat`]) read at the load start, at each action's trigger and
//! at the load end, and the machine's other CPU use ([`super::noise`]).
//!
//! Windows: the case's counters cover the load start to the load end; an
//! action's cover its trigger to the next action's trigger (or the load
//! end). The counters are those of the namespace of the thread that reads
//! them, which for a case run by [`crate::orchestrator::os::netns::run_case`] is the case's
//! own (scope `case netns`), otherwise the host's (`host-wide`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::kernel::{CounterScope, KernelCounters, MachineLoad};
use reloadbench_model::run::ActionReport;

use super::noise::NoiseSampler;
use super::nstat::{self, Counters};

fn read_now() -> Option<Counters> {
    nstat::read(Path::new(nstat::THREAD_NET)).ok()
}

/// Counters read at each action's trigger, in firing order.
type Marks = Arc<Mutex<Vec<Option<Counters>>>>;

/// Watches one case's load; start it just before the load starts.
#[derive(Debug)]
pub(crate) struct CaseWatch {
    scope: CounterScope,
    start: Option<Counters>,
    marks: Marks,
    noise: Option<NoiseSampler>,
}

/// A [`CaseWatch`] after the load ended.
#[derive(Debug)]
pub(crate) struct Watched {
    scope: CounterScope,
    start: Option<Counters>,
    end: Option<Counters>,
    end_mono_ns: u64,
    marks: Marks,
    machine: Option<MachineLoad>,
}

impl CaseWatch {
    /// Reads the counters and starts the machine sampler.
    pub(crate) fn start() -> CaseWatch {
        let scope = if crate::orchestrator::os::netns::in_own_netns() {
            CounterScope::CaseNetns
        } else {
            CounterScope::HostWide
        };
        CaseWatch {
            scope,
            start: read_now(),
            marks: Marks::default(),
            noise: NoiseSampler::start(),
        }
    }

    /// An action is about to be performed: reads the counters (the start
    /// of its window and the end of the previous action's).
    pub(crate) fn mark_action(&self) {
        let now = read_now();
        if let Ok(mut m) = self.marks.lock() {
            m.push(now);
        }
    }

    /// The load ended: reads the counters, stops the sampler.
    pub(crate) fn stop(self, load_start_mono_ns: u64) -> Watched {
        let end = read_now();
        let end_mono_ns = monotonic_ns();
        Watched {
            scope: self.scope,
            start: self.start,
            end,
            end_mono_ns,
            marks: self.marks,
            machine: self.noise.and_then(|n| n.finish(load_start_mono_ns)),
        }
    }
}

impl Watched {
    /// The case's counters and machine load; fills each action's `kernel`.
    pub(crate) fn report(
        self,
        load_start_mono_ns: u64,
        actions: &mut [ActionReport],
    ) -> (Option<KernelCounters>, Option<MachineLoad>) {
        let end_ns = self.end_mono_ns.saturating_sub(load_start_mono_ns);
        let counters = |from: &Option<Counters>, to: &Option<Counters>, a: u64, b: u64| {
            Some(KernelCounters {
                scope: self.scope,
                from_ns: a,
                to_ns: b,
                deltas: nstat::delta(from.as_ref()?, to.as_ref()?),
                netns_sysctls: Default::default(),
            })
        };
        let marks = self.marks.lock().map(|m| m.clone()).unwrap_or_default();
        let triggers: Vec<u64> = actions.iter().map(|a| a.trigger_ns).collect();
        for (i, a) in actions.iter_mut().enumerate() {
            let (Some(from), next) = (marks.get(i), marks.get(i + 1)) else {
                continue;
            };
            let (to, to_ns) = match (next, triggers.get(i + 1)) {
                (Some(n), Some(t)) => (n, *t),
                _ => (&self.end, end_ns),
            };
            a.kernel = counters(from, to, a.trigger_ns, to_ns);
        }
        (counters(&self.start, &self.end, 0, end_ns), self.machine)
    }
}
