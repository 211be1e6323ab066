//! [`FakeRunner`]: a scripted system under test for tests of the timeline
//! and attribution logic without processes.
//!
//! Each action "replaces" the serving pid by the next one: the new one is
//! ready `ready_after` after the trigger, the old one reports `drained` and
//! `exited` events (through the case's event sink) `exit_after` after it.
//! Actions listed in `fail` are rolled back instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use reloadbench_model::event::{Event, EventKind};

use crate::scenario::ActionSpec;

use super::runner::{ActOutcome, Runner, RunnerError};
use crate::orchestrator::events::{EventLog, EventSink, Stream};

/// A scripted runner.
#[derive(Debug)]
pub(crate) struct FakeRunner {
    sink: EventSink,
    /// Time from trigger to the new pid's readiness.
    pub ready_after: Duration,
    /// Time from trigger to the old pid's drained and exited events.
    pub exit_after: Duration,
    /// Indexes (in firing order) of actions that fail.
    pub fail: Vec<usize>,
    pid: u32,
    acted: usize,
    exits: HashMap<u32, u64>,
    /// Every action received, in order.
    pub received: Vec<ActionSpec>,
    /// A `CLOCK_MONOTONIC` reading and the tokio instant of the same moment: when set,
    /// trigger times are read on tokio's clock from there (for tests on the paused clock),
    /// else on `CLOCK_MONOTONIC`.
    pub clock: Option<(u64, tokio::time::Instant)>,
}

impl FakeRunner {
    /// A runner whose first process has pid 1000.
    pub(crate) fn new(sink: EventSink) -> FakeRunner {
        FakeRunner {
            sink,
            ready_after: Duration::from_millis(5),
            exit_after: Duration::from_millis(50),
            fail: Vec::new(),
            pid: 1000,
            acted: 0,
            exits: HashMap::new(),
            received: Vec::new(),
            clock: None,
        }
    }

    fn emit(&self, pid: u32, mono_ns: u64, kind: EventKind) {
        let e = Event { mono_ns, pid, kind };
        self.sink
            .line("fake", 1, Stream::Stdout, e.to_line().trim());
    }
}

impl Runner for FakeRunner {
    async fn start(&mut self, _log: &mut EventLog) -> Result<SocketAddr, RunnerError> {
        Ok(SocketAddr::from(([127, 0, 0, 1], 9)))
    }

    async fn act(&mut self, action: &ActionSpec, _log: &mut EventLog) -> ActOutcome {
        self.received.push(action.clone());
        let n = self.acted;
        self.acted += 1;
        let mut out = ActOutcome::triggered_now();
        if let Some((mono_ns, at)) = self.clock {
            out.trigger_mono_ns = mono_ns + at.elapsed().as_nanos() as u64;
        }
        if self.fail.contains(&n) {
            return out.fail("scripted failure");
        }
        let old = self.pid;
        self.pid += 1;
        let t = out.trigger_mono_ns;
        let ready = t + self.ready_after.as_nanos() as u64;
        let gone = t + self.exit_after.as_nanos() as u64;
        self.emit(
            self.pid,
            ready,
            EventKind::Ready {
                generation: u64::from(self.pid),
                addrs: vec![],
            },
        );
        self.emit(
            old,
            gone,
            EventKind::Drained {
                generation: u64::from(old),
                forced: 0,
                cut: 0,
                cut_requests: 0,
            },
        );
        self.emit(
            old,
            gone + 1,
            EventKind::Exited {
                generation: u64::from(old),
                code: 0,
            },
        );
        self.exits.insert(old, gone + 2);
        out.ready_mono_ns = Some(ready);
        out.old_pids = vec![old];
        out.new_pid = Some(self.pid);
        out
    }

    async fn stop(&mut self, _log: &mut EventLog) -> Result<(), RunnerError> {
        Ok(())
    }

    fn exit_seen(&self, pid: u32) -> Option<u64> {
        self.exits.get(&pid).copied()
    }
}
