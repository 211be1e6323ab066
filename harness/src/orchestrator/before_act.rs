//! [`Watched`]: the case's runner with its watchers told of each action
//! just before it is performed, so the kernel's TCP counters are read at
//! the trigger ([`CaseWatch`]) and the evidence sampler takes its trigger
//! sample ([`Sampler`]); otherwise it is the runner it wraps.

use std::net::SocketAddr;

use crate::scenario::ActionSpec;

use super::events::EventLog;
use super::measure::casewatch::CaseWatch;
use super::measure::evidence::sampler::Sampler;
use super::sut::runner::{ActOutcome, Runner, RunnerError};

/// A runner whose actions are announced to the case's watchers first.
#[derive(Debug)]
pub(crate) struct Watched<'a, R> {
    /// The runner.
    pub inner: &'a mut R,
    /// Reads the TCP counters at each trigger.
    pub counters: &'a CaseWatch,
    /// The evidence sampler, when it could start.
    pub sampler: Option<&'a Sampler>,
}

impl<R: Runner> Runner for Watched<'_, R> {
    async fn start(&mut self, log: &mut EventLog) -> Result<SocketAddr, RunnerError> {
        self.inner.start(log).await
    }

    async fn act(&mut self, action: &ActionSpec, log: &mut EventLog) -> ActOutcome {
        if let Some(s) = self.sampler {
            s.trigger().await;
        }
        self.counters.mark_action();
        self.inner.act(action, log).await
    }

    async fn stop(&mut self, log: &mut EventLog) -> Result<(), RunnerError> {
        self.inner.stop(log).await
    }

    fn exit_seen(&self, pid: u32) -> Option<u64> {
        self.inner.exit_seen(pid)
    }

    fn lost(&mut self) -> Option<String> {
        self.inner.lost()
    }
}
