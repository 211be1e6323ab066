//! The in-process load: the running [`LoadRun`] seen as a [`LoadClock`].

use reloadbench_loadgen::LoadRun;

use super::timeline::LoadClock;

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
