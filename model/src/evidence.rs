//! Evidence from the kernel: reload phases and accept queues observed on the
//! system under test's listening address, for any server, cooperative or not.
//!
//! The harness samples the address with `sock_diag` (listening and
//! established TCP sockets, accept-queue length and backlog) and maps each
//! socket to the processes holding it (`/proc/PID/fd`). From the samples it
//! derives, per action, the [`ObservedPhases`]; the queue depths over time
//! are kept per listening socket in [`CaseEvidence`]. Times are nanoseconds
//! since the case's load start, like every time in [`crate::run`].
//!
//! A phase that was not seen is `None` ("not observed"); it is never filled
//! in from another phase or from what the server reported about itself.

use serde::{Deserialize, Serialize};

/// The phases of one action as the kernel showed them.
///
/// `old_pids` are the processes that owned a listening socket on the
/// address at the trigger and no longer owned one at the end of the action's
/// window (the next action's trigger, or the end of sampling); a process
/// that keeps its socket throughout (a master) is not old. `new_pids` own a
/// listening socket after the trigger and did not before.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObservedPhases {
    /// Processes replaced by the action (see the type's docs).
    pub old_pids: Vec<u32>,
    /// Processes that started listening on the address after the trigger.
    pub new_pids: Vec<u32>,
    /// First sample in which a process not listening at the trigger owned a
    /// listening socket on the address (a new socket, or an existing one
    /// that gained an owner).
    pub new_listening_ns: Option<u64>,
    /// First sample in which none of `old_pids` owned a listening socket.
    pub old_stopped_accepting_ns: Option<u64>,
    /// First sample, from `old_stopped_accepting_ns` on, in which none of
    /// `old_pids` owned an established connection on the address.
    pub old_drained_ns: Option<u64>,
    /// When the last of `old_pids` was seen to have exited (pidfd).
    pub old_exited_ns: Option<u64>,
    /// Sampling interval around the action: each phase is known to within this.
    pub resolution_ns: u64,
}

/// What the kernel showed on a case's listening address during its load.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CaseEvidence {
    /// The address sampled.
    pub address: String,
    /// Sampling interval around actions (from 100 ms before each trigger to
    /// at least 1 s after it, longer until its phases are seen, bounded).
    pub fast_interval_ns: u64,
    /// Sampling interval otherwise.
    pub slow_interval_ns: u64,
    /// Samples taken.
    pub samples: u64,
    /// Samples that failed (the first error is kept).
    pub failed_samples: u64,
    /// The first sampling error, if any.
    pub first_error: Option<String>,
    /// CPU time (user + system) the sampler thread used, seconds.
    pub sampler_cpu_s: f64,
    /// One series per listening socket seen on the address, in the order
    /// they were first seen.
    pub queues: Vec<QueueSeries>,
    /// Established connections on the address held by each replaced
    /// process while it drained (from when it stopped listening until it
    /// exited); other processes' connections are not counted.
    pub connections: Vec<ConnectionSeries>,
}

impl CaseEvidence {
    /// The deepest accept queue seen on any socket.
    pub fn max_depth(&self) -> u32 {
        self.queues.iter().map(|q| q.max_depth).max().unwrap_or(0)
    }
}

/// One listening socket over time. Points are kept only where a value
/// changed; the last value holds until `last_seen_ns`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueSeries {
    /// Its inode.
    pub inode: u64,
    /// Its backlog (the accept queue's limit), as last seen.
    pub backlog: u32,
    /// The deepest accept queue seen on it.
    pub max_depth: u32,
    /// First sample that showed it.
    pub first_seen_ns: u64,
    /// Last sample that showed it (it was gone, or sampling ended, after).
    pub last_seen_ns: u64,
    /// `[t_ns, depth]`: accept-queue length from `t_ns` on.
    pub depth: Vec<(u64, u32)>,
    /// `[t_ns, pids]`: the processes holding it from `t_ns` on.
    pub owners: Vec<(u64, Vec<u32>)>,
}

/// Established connections on the address held by one draining process.
/// Points are kept only where the count changed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnectionSeries {
    /// The process.
    pub pid: u32,
    /// The most it held at once.
    pub max: u32,
    /// `[t_ns, count]` from `t_ns` on; a 0 is added when the process is no
    /// longer counted (it exited).
    pub counts: Vec<(u64, u32)>,
}
