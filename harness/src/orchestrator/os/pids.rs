//! The run's pid list: every process the harness started (`pids.log`), and
//! which of them are not reaped yet. Recording a pid also tells the
//! [`super::watchdog`], which kills it if the harness dies first.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The run's list of every pid the harness started (`pids.log`): one line
/// `pid name` per process, written before the process can do anything.
/// It also knows which of them are still live (not yet reaped by their
/// guard), the only ones a hard stop may signal: the number of a reaped
/// process may already belong to someone else.
#[derive(Debug, Clone, Default)]
pub(crate) struct PidLog {
    file: Option<Arc<Mutex<File>>>,
    pids: Arc<Mutex<Vec<u32>>>,
    live: Arc<Mutex<Vec<u32>>>,
}

impl PidLog {
    /// A pid list appended to `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<PidLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(PidLog {
            file: Some(Arc::new(Mutex::new(file))),
            pids: Arc::default(),
            live: Arc::default(),
        })
    }

    /// A pid list kept in memory only.
    #[cfg(test)]
    pub(crate) fn memory() -> PidLog {
        PidLog::default()
    }

    /// Records a started process.
    pub(crate) fn record(&self, pid: u32, name: &str) {
        super::watchdog::track(pid);
        if let Ok(mut p) = self.pids.lock() {
            p.push(pid);
        }
        if let Ok(mut l) = self.live.lock() {
            l.push(pid);
        }
        if let Some(f) = &self.file
            && let Ok(mut f) = f.lock()
        {
            let _ = writeln!(f, "{pid} {name}");
            let _ = f.flush();
        }
    }

    /// Every pid recorded so far.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.pids.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Marks a recorded process reaped (or its guard gone).
    pub(crate) fn retire(&self, pid: u32) {
        if let Ok(mut l) = self.live.lock() {
            l.retain(|p| *p != pid);
        }
    }

    /// Recorded processes not reaped yet.
    pub(crate) fn live(&self) -> Vec<u32> {
        self.live.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
