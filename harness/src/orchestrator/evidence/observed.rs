//! [`Observed`]: a [`Runner`] that announces each action to the evidence
//! sampler just before performing it, so the sampler records the state at
//! the trigger and samples densely after it.

use std::net::SocketAddr;

use crate::scenario::ActionSpec;

use super::super::events::EventLog;
use super::super::runner::{ActOutcome, Runner, RunnerError};
use super::sampler::Sampler;

/// A runner whose actions are announced to a sampler (when there is one).
#[derive(Debug)]
pub struct Observed<'a, R> {
    /// The runner.
    pub inner: &'a mut R,
    /// The sampler, once the load runs.
    pub sampler: Option<&'a Sampler>,
}

impl<R: Runner> Runner for Observed<'_, R> {
    async fn start(&mut self, log: &mut EventLog) -> Result<SocketAddr, RunnerError> {
        self.inner.start(log).await
    }

    async fn act(&mut self, action: &ActionSpec, log: &mut EventLog) -> ActOutcome {
        if let Some(s) = self.sampler {
            s.trigger().await;
        }
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

    fn version(&self) -> Option<String> {
        self.inner.version()
    }
}
