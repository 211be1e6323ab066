//! The event stream of a case: every line the case's processes print,
//! stamped with the harness's clock, kept in memory and appended to
//! `events.jsonl`.
//!
//! Each child's stdout (and stderr) is read by its own task, which sends one
//! [`Stamped`] per line on an unbounded channel and writes the line to the
//! case's `events.jsonl` at once, so the file is complete even if the harness
//! is interrupted. The receiving side, [`EventLog`], keeps everything it has
//! seen so readiness checks and action timing can search it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::event::{Event, EventKind};
use serde::Serialize;
use tokio::sync::mpsc;

/// Errors of the event stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EventsError {
    /// The events file could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Which output stream of a process a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stream {
    /// Standard output (events).
    Stdout,
    /// Standard error (logs).
    Stderr,
}

/// What a process printed, or that its stream ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    /// A parsed event line.
    Event(Event),
    /// A line that is not an event (kept for `log` readiness).
    Line(String),
    /// The stream was closed (the process exited or closed it).
    Eof,
}

/// One item of the stream, stamped when the harness read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stamped {
    /// Monotonic clock when the harness read the line.
    pub recv_mono_ns: u64,
    /// Name of the process (e.g. `refproxy`, `origin`).
    pub source: String,
    /// Pid of the process the harness spawned (the line's own pid may differ:
    /// a master relays its workers' events).
    pub source_pid: u32,
    /// Which stream.
    pub stream: Stream,
    /// What was read.
    pub payload: Payload,
}

impl Stamped {
    /// The event, if this is one.
    pub(crate) fn event(&self) -> Option<&Event> {
        match &self.payload {
            Payload::Event(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is the end of the stdout of the process spawned as
    /// `source_pid`, or an event on it whose kind `kind` accepts.
    pub(crate) fn stdout_end_or(
        &self,
        source_pid: u32,
        kind: impl FnOnce(&EventKind) -> bool,
    ) -> bool {
        self.source_pid == source_pid
            && self.stream == Stream::Stdout
            && (self.payload == Payload::Eof || self.event().is_some_and(|e| kind(&e.kind)))
    }
}

/// The line written to `events.jsonl` for each [`Stamped`] stdout line.
#[derive(Serialize)]
struct FileLine<'a> {
    recv_mono_ns: u64,
    source: &'a str,
    source_pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
}

/// The sending side: cloned into every process's reader tasks.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    tx: mpsc::UnboundedSender<Stamped>,
    file: Option<Arc<Mutex<File>>>,
}

impl EventSink {
    /// Stamps and forwards one line read from a process.
    pub(crate) fn line(&self, source: &str, source_pid: u32, stream: Stream, line: &str) {
        let recv_mono_ns = monotonic_ns();
        let payload = match stream {
            Stream::Stdout => match Event::parse_line(line) {
                Ok(e) => Payload::Event(e),
                Err(_) => Payload::Line(line.to_owned()),
            },
            Stream::Stderr => Payload::Line(line.to_owned()),
        };
        if stream == Stream::Stdout {
            self.append(&FileLine {
                recv_mono_ns,
                source,
                source_pid,
                event: match &payload {
                    Payload::Event(e) => Some(e),
                    _ => None,
                },
                line: match &payload {
                    Payload::Line(l) => Some(l),
                    _ => None,
                },
            });
        }
        let _ = self.tx.send(Stamped {
            recv_mono_ns,
            source: source.to_owned(),
            source_pid,
            stream,
            payload,
        });
    }

    /// Reports that a stream of a process ended.
    pub(crate) fn eof(&self, source: &str, source_pid: u32, stream: Stream) {
        let _ = self.tx.send(Stamped {
            recv_mono_ns: monotonic_ns(),
            source: source.to_owned(),
            source_pid,
            stream,
            payload: Payload::Eof,
        });
    }

    fn append(&self, line: &FileLine<'_>) {
        let Some(file) = &self.file else { return };
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        if let Ok(mut f) = file.lock() {
            // A failed write loses one line of the record, never the run.
            let _ = f.write_all(text.as_bytes());
        }
    }
}

/// The receiving side: everything seen so far, and waiting for more.
#[derive(Debug)]
pub(crate) struct EventLog {
    rx: mpsc::UnboundedReceiver<Stamped>,
    seen: Vec<Stamped>,
}

impl EventLog {
    /// A new stream writing stdout lines to `path` (`None`: memory only).
    pub(crate) fn create(path: Option<&Path>) -> Result<(EventSink, EventLog), EventsError> {
        let file = match path {
            Some(p) => Some(Arc::new(Mutex::new(File::create(p).map_err(|source| {
                EventsError::Create {
                    path: p.to_owned(),
                    source,
                }
            })?))),
            None => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((
            EventSink { tx, file },
            EventLog {
                rx,
                seen: Vec::new(),
            },
        ))
    }

    /// Everything received so far (call [`EventLog::pump`] first to include
    /// what is waiting in the channel).
    pub(crate) fn seen(&self) -> &[Stamped] {
        &self.seen
    }

    /// Moves everything already waiting in the channel into [`EventLog::seen`].
    pub(crate) fn pump(&mut self) {
        while let Ok(s) = self.rx.try_recv() {
            self.seen.push(s);
        }
    }

    /// Waits until an item at index `>= from` matches `pred`, up to `timeout`.
    /// Returns its index, or `None` on timeout.
    pub(crate) async fn wait_for(
        &mut self,
        from: usize,
        timeout: Duration,
        mut pred: impl FnMut(&Stamped) -> bool,
    ) -> Option<usize> {
        self.pump();
        if let Some(i) = self.seen.iter().skip(from).position(&mut pred) {
            return Some(from + i);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(s)) => {
                    let hit = self.seen.len() >= from && pred(&s);
                    self.seen.push(s);
                    if hit {
                        return Some(self.seen.len() - 1);
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The current end of [`EventLog::seen`] after pumping: a cursor for
    /// "events from now on".
    pub(crate) fn cursor(&mut self) -> usize {
        self.pump();
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reloadbench_model::event::EventKind;

    // The paused clock: every wait here is on in-process channels, and the 10 ms one that
    // runs out takes no real time.
    #[tokio::test(start_paused = true)]
    async fn wait_for_finds_past_and_future_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let (sink, mut log) = EventLog::create(Some(&path)).unwrap();
        let ev = Event {
            mono_ns: 7,
            pid: 9,
            kind: EventKind::Exited {
                generation: 1,
                code: 0,
            },
        };
        sink.line("p", 9, Stream::Stdout, "hello");
        sink.line("p", 9, Stream::Stdout, ev.to_line().trim());
        let i = log
            .wait_for(0, Duration::from_secs(1), |s| s.event().is_some())
            .await;
        assert_eq!(i, Some(1));
        let s2 = sink.clone();
        tokio::spawn(async move { s2.eof("p", 9, Stream::Stdout) });
        let j = log
            .wait_for(2, Duration::from_secs(5), |s| s.payload == Payload::Eof)
            .await;
        assert_eq!(j, Some(2));
        assert_eq!(
            log.wait_for(3, Duration::from_millis(10), |_| true).await,
            None
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("\"event\":\"exited\""));
    }
}
