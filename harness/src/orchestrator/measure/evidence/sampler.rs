//! The sampler thread: looks at the listening address every
//! [`SamplerConfig::fast`] from [`SamplerConfig::before`] ahead of each
//! planned trigger to [`SamplerConfig::after`] past each actual one (and on,
//! up to [`SamplerConfig::bound`], while processes that listened at the
//! trigger have stopped listening but not exited), every
//! [`SamplerConfig::slow`] otherwise.
//!
//! One look: one sock_diag dump of the address's listening and established
//! sockets, the system under test's process tree (from `roots`, which the
//! caller provides), the owners of those sockets' inodes among that tree,
//! and a pidfd poll of every process that ever held one (exits).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};
use reloadbench_model::clock::monotonic_ns;
use reloadbench_observe::owners::{descendants, socket_inodes};
use reloadbench_observe::pidfd::Pidfd;

use crate::orchestrator::os::procstat::proc_info;
use reloadbench_observe::sockdiag::{Diag, DiagError, Filter, States, TcpState};

use super::{Listener, Recording, Sample};

/// The pids to start the system under test's process tree from.
pub(crate) type Roots = Box<dyn Fn() -> Vec<u32> + Send>;

/// When and how densely to sample.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// The address clients connect to.
    pub addr: SocketAddr,
    /// Interval around actions.
    pub fast: Duration,
    /// Interval otherwise.
    pub slow: Duration,
    /// Dense sampling starts this long before a planned trigger.
    pub before: Duration,
    /// ... and lasts at least this long after an actual one.
    pub after: Duration,
    /// ... and at most this long while old processes linger.
    pub bound: Duration,
    /// Planned trigger times (monotonic ns), for time-based actions.
    pub planned: Vec<u64>,
}

impl SamplerConfig {
    /// The defaults: 5 ms around actions (100 ms before, 1 s after, up to
    /// 10 s while old processes linger), 100 ms otherwise.
    pub fn new(addr: SocketAddr, planned: Vec<u64>) -> SamplerConfig {
        SamplerConfig {
            addr,
            fast: Duration::from_millis(5),
            slow: Duration::from_millis(100),
            before: Duration::from_millis(100),
            after: Duration::from_secs(1),
            bound: Duration::from_secs(10),
            planned,
        }
    }
}

enum Msg {
    Trigger(tokio::sync::oneshot::Sender<()>),
    Stop,
}

/// A running sampler; [`Sampler::finish`] stops it and returns what it saw.
#[derive(Debug)]
pub struct Sampler {
    tx: Sender<Msg>,
    join: Option<JoinHandle<Recording>>,
    taken: Arc<AtomicU64>,
}

impl Sampler {
    /// Starts sampling on a thread of its own.
    pub fn start(cfg: SamplerConfig, roots: Roots) -> std::io::Result<Sampler> {
        let (tx, rx) = channel();
        let taken = Arc::new(AtomicU64::new(0));
        let counter = taken.clone();
        let join = std::thread::Builder::new()
            .name("evidence".into())
            .spawn(move || run(cfg, roots, rx, counter))?;
        Ok(Sampler {
            tx,
            join: Some(join),
            taken,
        })
    }

    /// Samples taken so far.
    pub fn samples_taken(&self) -> u64 {
        self.taken.load(Ordering::Acquire)
    }

    /// Announces an action about to act: the sampler takes a sample at once
    /// (the action's "at trigger" state) and samples densely after it.
    /// Returns once that sample is taken (or after 100 ms).
    pub async fn trigger(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Trigger(ack)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_millis(100), done).await;
        }
    }

    /// Stops sampling and returns the recording.
    pub fn finish(mut self) -> Recording {
        self.stop()
    }

    fn stop(&mut self) -> Recording {
        let _ = self.tx.send(Msg::Stop);
        self.join
            .take()
            .and_then(|j| j.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if self.join.is_some() {
            let _ = self.stop();
        }
    }
}

struct State {
    diag: Option<Diag>,
    listen: Filter,
    established: Filter,
    /// Per draining process, its connections on the address when it was
    /// first seen draining (socket inodes).
    draining: HashMap<u32, HashSet<u64>>,
    pidfds: HashMap<u32, Pidfd>,
    rec: Recording,
    /// Monotonic ns of the last announced trigger and the pids listening then.
    last_trigger: Option<(u64, BTreeSet<u32>)>,
    taken: Arc<AtomicU64>,
    /// Processes seen exited at the start of the current sample.
    exiting: Vec<u32>,
}

fn run(cfg: SamplerConfig, roots: Roots, rx: Receiver<Msg>, taken: Arc<AtomicU64>) -> Recording {
    let mut st = State {
        diag: None,
        listen: Filter::local(cfg.addr, States::of(&[TcpState::Listen])),
        established: Filter::local(cfg.addr, States::of(&[TcpState::Established])),
        draining: HashMap::new(),
        pidfds: HashMap::new(),
        rec: Recording {
            fast_ns: cfg.fast.as_nanos() as u64,
            slow_ns: cfg.slow.as_nanos() as u64,
            address: cfg.addr.to_string(),
            ..Recording::default()
        },
        last_trigger: None,
        taken,
        exiting: Vec::new(),
    };
    let mut next = monotonic_ns();
    loop {
        let now = monotonic_ns();
        if now >= next {
            st.sample(&roots);
            next = now + interval(&cfg, &st, now).as_nanos() as u64;
        }
        let wait = Duration::from_nanos(next.saturating_sub(monotonic_ns()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Trigger(ack)) => {
                let i = st.sample(&roots);
                st.rec.triggers.push(i);
                let t = st.rec.samples[i].mono_ns;
                st.last_trigger = Some((t, st.rec.samples[i].listening_pids()));
                let _ = ack.send(());
                next = monotonic_ns() + cfg.fast.as_nanos() as u64;
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
    st.rec.cpu_s = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0);
    st.rec
}

/// The interval to the next sample.
fn interval(cfg: &SamplerConfig, st: &State, now: u64) -> Duration {
    let before = cfg.before.as_nanos() as u64;
    let after = cfg.after.as_nanos() as u64;
    let soon = cfg
        .planned
        .iter()
        .any(|&p| now + before >= p && now <= p + after);
    let recent = st.last_trigger.as_ref().is_some_and(|(t, old)| {
        now <= t + after || (now <= t + cfg.bound.as_nanos() as u64 && lingering(st, old))
    });
    // Never sleep past a planned trigger's dense window.
    let slow = cfg
        .planned
        .iter()
        .filter(|&&p| p > now + before)
        .map(|&p| Duration::from_nanos(p - before - now))
        .min()
        .map_or(cfg.slow, |d| d.min(cfg.slow));
    if soon || recent { cfg.fast } else { slow }
}

/// Whether a process that listened at the last trigger no longer listens
/// but has not been seen to exit.
fn lingering(st: &State, old: &BTreeSet<u32>) -> bool {
    let Some(last) = st.rec.samples.last() else {
        return false;
    };
    let now = last.listening_pids();
    old.iter()
        .any(|p| !now.contains(p) && !st.rec.exits.contains_key(p))
}

impl State {
    /// Takes one sample (an empty one when the look failed) and returns its index.
    fn sample(&mut self, roots: &Roots) -> usize {
        // Exits first: a process seen exited here held nothing in the look
        // below (its exit is dated with the sample, as everything the sample
        // shows); one that exits after this check is seen at the next sample.
        self.exiting = self.take_exits();
        let s = match self.look(roots) {
            Ok(s) => s,
            Err(e) => {
                self.rec.failed += 1;
                self.rec
                    .first_error
                    .get_or_insert_with(|| crate::cause::chain(&e));
                self.diag = None;
                // Keep the time line: the previous state, re-dated.
                let mut s = self.rec.samples.last().cloned().unwrap_or_default();
                s.mono_ns = monotonic_ns();
                s
            }
        };
        for p in std::mem::take(&mut self.exiting) {
            self.rec.exits.insert(p, s.mono_ns);
        }
        self.rec.samples.push(s);
        self.taken.fetch_add(1, Ordering::Release);
        self.rec.samples.len() - 1
    }

    fn look(&mut self, roots: &Roots) -> Result<Sample, DiagError> {
        let diag = match &mut self.diag {
            Some(d) => d,
            None => self.diag.insert(Diag::open()?),
        };
        let listening = diag.dump(&self.listen)?;
        let tree = descendants(&roots());
        let held: Vec<(u32, Vec<u64>)> = tree.iter().map(|&p| (p, socket_inodes(p))).collect();
        // Stamped once the sockets and their owners are read: what the
        // sample shows had happened by then.
        let mut sample = Sample {
            mono_ns: monotonic_ns(),
            // Alive: an exited child its parent has not reaped yet is not.
            processes: tree
                .iter()
                .filter(|&&p| proc_info(p).is_some_and(|s| s.alive()))
                .count() as u32,
            ..Sample::default()
        };
        for s in &listening {
            let owners: BTreeSet<u32> = held
                .iter()
                .filter(|(_, inodes)| inodes.contains(&s.inode))
                .map(|(p, _)| *p)
                .collect();
            sample.listeners.push(Listener {
                inode: s.inode,
                owners,
                depth: s.rqueue,
                backlog: s.wqueue,
            });
        }
        let now_listening = sample.listening_pids();
        // The ancestors (in the tree) of the listening processes.
        for &p in &now_listening {
            let mut up = proc_info(p).map(|s| s.ppid);
            while let Some(a) = up.filter(|a| tree.binary_search(a).is_ok()) {
                if !sample.masters.insert(a) {
                    break;
                }
                up = proc_info(a).map(|s| s.ppid);
            }
        }
        for p in &now_listening {
            self.watch(*p);
        }
        // Processes that listened at the last trigger and no longer do, not
        // exited: they drain. Their connections on the address are learnt
        // once, from an established dump (which walks every connection of
        // the host, TIME_WAIT included, so it is not taken on every sample),
        // and then followed in their fds: a process that stopped accepting
        // gains no connection on the address.
        let lingering: Vec<u32> = self
            .last_trigger
            .as_ref()
            .map(|(_, old)| {
                old.iter()
                    .copied()
                    .filter(|p| {
                        !now_listening.contains(p)
                            && !self.rec.exits.contains_key(p)
                            && !self.exiting.contains(p)
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.draining.retain(|p, _| lingering.contains(p));
        if lingering.iter().any(|p| !self.draining.contains_key(p)) {
            let diag = self
                .diag
                .as_mut()
                .ok_or(DiagError::Malformed("no socket"))?;
            let est: HashSet<u64> = diag
                .dump(&self.established)?
                .iter()
                .map(|s| s.inode)
                .filter(|i| *i != 0)
                .collect();
            for &p in &lingering {
                self.draining.entry(p).or_insert_with(|| {
                    held.iter()
                        .filter(|(q, _)| *q == p)
                        .flat_map(|(_, inodes)| inodes.iter().copied())
                        .filter(|i| est.contains(i))
                        .collect()
                });
            }
        }
        for &p in &lingering {
            let conns = self.draining.get(&p);
            let n = held
                .iter()
                .filter(|(q, _)| *q == p)
                .flat_map(|(_, inodes)| inodes.iter())
                .filter(|i| conns.is_some_and(|c| c.contains(i)))
                .count() as u32;
            sample.established.insert(p, n);
        }
        Ok(sample)
    }

    /// Opens a pidfd for a process holding a socket on the address, once.
    fn watch(&mut self, pid: u32) {
        if !self.pidfds.contains_key(&pid)
            && !self.rec.exits.contains_key(&pid)
            && let Ok(fd) = Pidfd::open(pid)
        {
            self.pidfds.insert(pid, fd);
        }
    }

    /// Pids whose process has exited since the last look (their pidfds closed).
    fn take_exits(&mut self) -> Vec<u32> {
        let mut gone = Vec::new();
        self.pidfds.retain(|pid, fd| {
            let exited = fd.has_exited();
            if exited {
                gone.push(*pid);
            }
            !exited
        });
        gone
    }
}
