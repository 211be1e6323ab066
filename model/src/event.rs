//! JSON-lines events printed by reloadbench's servers on stdout.
//!
//! Each line is one [`Event`], tagged by its `event` field, e.g.
//! `{"event":"ready","mono_ns":123,"pid":42,"generation":1,"addrs":["127.0.0.1:8080"]}`.
//! The harness reads these lines to know when a process is ready (never by
//! sleeping), to time reloads, and to mark them on charts.

use serde::{Deserialize, Serialize};

use crate::ledger::ProxyCounters;

/// How a running proxy is replaced by a new process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadMode {
    /// The old process exits, then a new one starts and binds.
    Restart,
    /// The new process binds its own `SO_REUSEPORT` socket; the old one closes its own.
    Naive,
    /// The new process receives the listening sockets from the old one over a unix socket.
    FdPass,
    /// A long-lived master owns the sockets and replaces its worker.
    MasterWorker,
}

impl ReloadMode {
    /// All modes, in the order reports list them.
    pub const ALL: [ReloadMode; 4] = [
        ReloadMode::Restart,
        ReloadMode::Naive,
        ReloadMode::FdPass,
        ReloadMode::MasterWorker,
    ];

    /// The kebab-case name used in configs, scenarios and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadMode::Restart => "restart",
            ReloadMode::Naive => "naive",
            ReloadMode::FdPass => "fd-pass",
            ReloadMode::MasterWorker => "master-worker",
        }
    }
}

impl std::fmt::Display for ReloadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReloadMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReloadMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown reload mode {s:?} (expected restart, naive, fd-pass or master-worker)"
                )
            })
    }
}

/// One line of a server's event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened, on the shared monotonic clock ([`crate::clock`]).
    pub mono_ns: u64,
    /// Pid of the process that printed the event.
    pub pid: u32,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What a server reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The process accepts connections on `addrs` (bound or inherited).
    Ready {
        /// Generation number: 1 for the first process, +1 per reload.
        generation: u64,
        /// The listening addresses, as bound (port 0 resolved).
        addrs: Vec<String>,
    },
    /// A reload was triggered; a new generation is being started.
    ReloadStarted {
        /// Generation of the process being replaced.
        generation: u64,
        /// How it is being replaced.
        mode: ReloadMode,
    },
    /// The listening sockets were handed to the new process.
    HandoffDone {
        /// Generation of the process that received the sockets.
        generation: u64,
        /// How many listening sockets were handed over.
        sockets: u32,
    },
    /// A reload completed: the new generation is ready and the old one drains.
    ReloadDone {
        /// Generation of the new process.
        generation: u64,
        /// Pid of the new process.
        new_pid: u32,
        /// How it was replaced.
        mode: ReloadMode,
    },
    /// A reload failed before the new process was ready; the old one keeps serving.
    ReloadFailed {
        /// Generation of the process that keeps serving.
        generation: u64,
        /// Why the reload failed.
        reason: String,
    },
    /// The process stopped accepting and is finishing its connections.
    Draining {
        /// Generation of the draining process.
        generation: u64,
        /// Open client connections when draining started.
        connections: u64,
    },
    /// The last connection of a draining process is done (or the deadline passed).
    Drained {
        /// Generation of the drained process.
        generation: u64,
        /// Connections that were still open at the drain deadline and were closed.
        forced: u64,
        /// Of those, the ones cut with a response in progress (the others lingered
        /// after their last response or were idle); 0 from a proxy that does not say.
        #[serde(default)]
        cut: u64,
        /// The requests those connections were answering (one per HTTP/1.1 connection,
        /// the open streams of an HTTP/2 connection); 0 from a proxy that does not say.
        #[serde(default)]
        cut_requests: u64,
    },
    /// A master's current worker died unexpectedly; the master starts a replacement after
    /// `respawn_in_ms` (0 at once; more when workers keep dying).
    WorkerLost {
        /// Generation of the worker that died.
        generation: u64,
        /// Its pid.
        worker_pid: u32,
        /// How it ended (e.g. `signal: 9 (SIGKILL)`).
        status: String,
        /// Delay before the replacement starts, in milliseconds.
        respawn_in_ms: u64,
    },
    /// A master replaced a worker that died: the new worker serves.
    WorkerRespawned {
        /// Generation of the new worker.
        generation: u64,
        /// Pid of the new worker.
        new_pid: u32,
    },
    /// What one serving generation counted (see [`ProxyCounters`]): printed once per
    /// generation when it exits or gives up; a master-worker worker prints its own.
    Counters {
        /// Generation of the process that counted.
        generation: u64,
        /// The counts.
        #[serde(flatten)]
        counters: ProxyCounters,
    },
    /// The tunnels (upgraded connections, e.g. WebSockets) of a draining process that had
    /// any: emitted when the drain starts and when it ends (`open` still then; the
    /// counts are the process's totals so far).
    Tunnels {
        /// Generation of the draining process.
        generation: u64,
        /// Tunnels open at this moment.
        open: u64,
        /// Tunnels ended with a WebSocket close frame 1001 (Going Away) so far.
        going_away: u64,
        /// Tunnels cut (closed without a close frame) at the drain deadline so far.
        cut: u64,
    },
    /// The process is about to exit.
    Exited {
        /// Generation of the exiting process.
        generation: u64,
        /// Exit code it is about to return.
        code: i32,
    },
}

impl Event {
    /// Parses one line of an event stream.
    pub fn parse_line(line: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(line.trim())
    }

    /// Serializes the event as one JSON line (with the trailing newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("events contain only serializable fields");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let e = Event {
            mono_ns: 5,
            pid: 42,
            kind: EventKind::Ready {
                generation: 1,
                addrs: vec!["127.0.0.1:8080".into()],
            },
        };
        let line = e.to_line();
        assert_eq!(
            line,
            "{\"mono_ns\":5,\"pid\":42,\"event\":\"ready\",\"generation\":1,\"addrs\":[\"127.0.0.1:8080\"]}\n"
        );
        assert_eq!(Event::parse_line(&line).unwrap(), e);
    }

    #[test]
    fn counters_line_round_trips() {
        let e = Event {
            mono_ns: 1,
            pid: 2,
            kind: EventKind::Counters {
                generation: 3,
                counters: ProxyCounters {
                    accepted: 4,
                    forwarded: 5,
                    completed: 5,
                    aborted: 0,
                    errors: [("connect".to_owned(), 1)].into(),
                },
            },
        };
        let line = e.to_line();
        assert!(line.contains("\"event\":\"counters\""), "{line}");
        assert!(line.contains("\"errors\":{\"connect\":1}"), "{line}");
        assert_eq!(Event::parse_line(&line).unwrap(), e);
    }

    #[test]
    fn reload_mode_parses_its_names() {
        for m in ReloadMode::ALL {
            assert_eq!(m.as_str().parse::<ReloadMode>().unwrap(), m);
        }
        assert!("graceful".parse::<ReloadMode>().is_err());
    }
}
