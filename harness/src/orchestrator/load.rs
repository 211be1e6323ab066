//! The in-process load: a case's [`LoadSpec`] turned into a loadgen
//! [`LoadConfig`], and the running [`LoadRun`] seen as a [`LoadClock`].

use std::net::SocketAddr;

use reloadbench_loadgen::{LoadConfig, LoadError, LoadRun};

use crate::scenario::LoadSpec;

use super::timeline::LoadClock;

/// The loadgen configuration of a case against `addr`.
pub fn load_config(spec: &LoadSpec, addr: SocketAddr) -> Result<LoadConfig, LoadError> {
    spec.loadgen_config(addr)
}

impl LoadClock for LoadRun {
    fn started_mono_ns(&self) -> u64 {
        LoadRun::started_mono_ns(self)
    }

    fn completed(&self) -> u64 {
        self.progress().completed
    }

    async fn wait_completed(&self, n: u64) {
        LoadRun::wait_completed(self, n).await
    }
}
