//! Lifecycle phases reported to the outside: JSON-lines events and systemd notifications.
//!
//! Every phase change (ready, reload started, handoff done, reload done or failed, draining,
//! drained, exited) is written as one [`reloadbench_model::event::Event`] line with a
//! `CLOCK_MONOTONIC` timestamp, on stdout or in the `--events` file. Each line is written
//! with a single `write`, so the lines of a master and its workers sharing one pipe or file
//! never interleave.

mod notify;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::event::{Event, EventKind};

pub use notify::Notifier;

/// Where events go: a cloneable handle on stdout or on an events file.
#[derive(Clone)]
pub struct Events {
    out: Arc<Mutex<File>>,
    pid: u32,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("pid", &self.pid).finish()
    }
}

impl Events {
    /// Opens the sink named by `--events`: `-` is stdout, anything else a file opened for append.
    pub fn open(target: &str) -> std::io::Result<Events> {
        let file = if target == "-" {
            File::from(std::io::stdout().as_fd().try_clone_to_owned()?)
        } else {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(Path::new(target))?
        };
        Ok(Events {
            out: Arc::new(Mutex::new(file)),
            pid: std::process::id(),
        })
    }

    /// Writes one event, stamped with now and this process's pid.
    pub fn emit(&self, kind: EventKind) {
        let event = Event {
            mono_ns: monotonic_ns(),
            pid: self.pid,
            kind,
        };
        self.write_line(&event.to_line());
    }

    /// Writes one already serialized line (used by the master to relay its workers' events).
    pub fn write_line(&self, line: &str) {
        let mut out = match self.out.lock() {
            Ok(out) => out,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = out.write_all(line.as_bytes()) {
            tracing::warn!("cannot write event: {e}");
        }
    }
}
