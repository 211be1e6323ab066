//! Evidence from the kernel about the system under test, whatever it is:
//! a [`sampler::Sampler`] thread reads the listening address's sockets
//! (sock_diag) and their owners (`/proc/PID/fd`) during the load, densely
//! around each action; [`phases`] turns the samples into each action's
//! observed phases (new listening, old stopped accepting, old drained, old
//! exited) and [`series`] into compact accept-queue series for the report.
//! The case's runner tells the sampler when each action fires
//! (`orchestrator::before_act`).
//!
//! The definitions are in `harness/README.md` ("Observed reload phases").

pub(crate) mod external;
pub(crate) mod generations;
pub(crate) mod phases;
pub(crate) mod sampler;
pub(crate) mod series;

use std::collections::{BTreeMap, BTreeSet};

/// One listening socket in a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Socket inode.
    pub inode: u64,
    /// Processes (of the system under test) holding it.
    pub owners: BTreeSet<u32>,
    /// Accept-queue length.
    pub depth: u32,
    /// Accept-queue limit.
    pub backlog: u32,
}

/// What one look at the address showed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample {
    /// When the sockets and their owners had been read (monotonic ns): what
    /// the sample shows had happened by then.
    pub mono_ns: u64,
    /// Listening sockets on the address.
    pub listeners: Vec<Listener>,
    /// Established connections on the address held by each draining
    /// process (one that listened at the last trigger and no longer does,
    /// not exited), zeros included; other processes are not counted.
    pub established: BTreeMap<u32, u32>,
    /// Live processes of the system under test's tree at this look (its
    /// roots and their descendants; zombies left out).
    pub processes: u32,
    /// Processes of the tree that are ancestors of a process holding a
    /// listening socket on the address (a master whose workers listen).
    pub masters: BTreeSet<u32>,
}

impl Sample {
    /// Every process holding a listening socket.
    pub(crate) fn listening_pids(&self) -> BTreeSet<u32> {
        self.listeners
            .iter()
            .flat_map(|l| l.owners.iter().copied())
            .collect()
    }
}

/// Everything a sampler recorded.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// The samples, in time order.
    pub samples: Vec<Sample>,
    /// When each process that held a socket on the address was seen to
    /// have exited (monotonic ns of the sample that saw it).
    pub exits: BTreeMap<u32, u64>,
    /// Per action, in firing order: the index of the sample taken when the
    /// action was announced (just before it acted).
    pub triggers: Vec<usize>,
    /// Samples that failed.
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// CPU time of the sampler thread, seconds.
    pub cpu_s: f64,
    /// Sampling interval around actions, ns.
    pub fast_ns: u64,
    /// Sampling interval otherwise, ns.
    pub slow_ns: u64,
    /// The address sampled.
    pub address: String,
}

impl Recording {
    /// The samples of the `k`-th action: from its trigger's sample up to the next
    /// action's (or the end of the samples); `None` for an action never announced.
    pub(crate) fn action_window(&self, k: usize) -> Option<(usize, usize)> {
        let at = *self.triggers.get(k)?;
        let end = self
            .triggers
            .get(k + 1)
            .copied()
            .unwrap_or(self.samples.len());
        Some((at, end))
    }
}

/// Starts sampling the address `addr` of a case whose load started at
/// `started_mono_ns`, densely around the planned `actions`. The system under
/// test is every process the run started that is still live, every child of
/// the harness (daemons it adopted as subreaper), and their descendants,
/// `exclude` (the origin) and the watchdog left out. `None` (with a
/// warning) when no thread could be started: the case runs without evidence.
pub(crate) fn start_sampler(
    addr: std::net::SocketAddr,
    actions: &[crate::scenario::Action],
    started_mono_ns: u64,
    pids: crate::orchestrator::os::pids::PidLog,
    exclude: Vec<u32>,
) -> Option<sampler::Sampler> {
    let me = std::process::id();
    let roots: sampler::Roots = Box::new(move || {
        let mut r = pids.live();
        r.extend(reloadbench_observe::owners::children(me));
        r.sort_unstable();
        r.dedup();
        r.retain(|p| {
            *p != me && !exclude.contains(p) && !crate::orchestrator::os::watchdog::is_watchdog(*p)
        });
        r
    });
    start_with_roots(addr, actions, started_mono_ns, roots)
}

/// [`start_sampler`] for a server the harness did not start: its process
/// tree is found from the owners of the address's listening sockets
/// ([`external::ListenerOwners`]).
pub(crate) fn start_external_sampler(
    addr: std::net::SocketAddr,
    actions: &[crate::scenario::Action],
    started_mono_ns: u64,
) -> Option<sampler::Sampler> {
    let owners = std::sync::Mutex::new(external::ListenerOwners::new(addr));
    let roots: sampler::Roots =
        Box::new(move || owners.lock().map(|mut o| o.roots()).unwrap_or_default());
    start_with_roots(addr, actions, started_mono_ns, roots)
}

fn start_with_roots(
    addr: std::net::SocketAddr,
    actions: &[crate::scenario::Action],
    started_mono_ns: u64,
    roots: sampler::Roots,
) -> Option<sampler::Sampler> {
    let cfg = sampler::SamplerConfig::new(addr, planned(actions, started_mono_ns));
    match sampler::Sampler::start(cfg, roots) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "warning: no kernel evidence for this case: {}",
                crate::cause::chain(&e)
            );
            None
        }
    }
}

/// Planned trigger times (monotonic ns) of time-based actions, at most
/// 10,000 and within an hour of the load start.
fn planned(actions: &[crate::scenario::Action], started_mono_ns: u64) -> Vec<u64> {
    const HOUR: u64 = 3600 * 1_000_000_000;
    let mut out = Vec::new();
    for a in actions {
        for n in 0..10_000 {
            match a.trigger.nth(n) {
                Some(d) if (d.as_nanos() as u64) < HOUR => {
                    out.push(started_mono_ns + d.as_nanos() as u64);
                }
                _ => break,
            }
        }
    }
    out.sort_unstable();
    out
}

/// Fills each action's observed phases from the recording (the n-th action
/// fired is the n-th trigger announced) and returns the case's evidence.
pub(crate) fn apply(
    rec: &Recording,
    actions: &mut [reloadbench_model::run::ActionReport],
    started_mono_ns: u64,
) -> reloadbench_model::evidence::CaseEvidence {
    for (k, a) in actions.iter_mut().enumerate() {
        let Some((at, end)) = rec.action_window(k) else {
            continue;
        };
        a.observed = Some(phases::observe(
            &rec.samples,
            &rec.exits,
            at,
            end,
            started_mono_ns,
        ));
    }
    series::case_evidence(rec, started_mono_ns)
}
