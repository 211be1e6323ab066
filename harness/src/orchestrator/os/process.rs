//! Child processes of a case: spawned into their own process group, read
//! continuously, killed on every path.
//!
//! [`ProcessGuard`] owns one child. Its stdout and stderr are read by tasks
//! for the child's whole life (a full pipe would block it): stdout lines go
//! to the case's [`EventSink`] (and `events.jsonl`), stderr lines to
//! `logs/<name>-<pid>.stderr.log` and to the sink. Dropping the guard sends
//! `SIGKILL` to the whole process group, so workers and other grandchildren
//! die with it even when the harness panics. Every spawned pid is appended to
//! the run's pid list ([`PidLog`]) before anything else happens, which also
//! hands it to the [`super::watchdog`] for the case the harness is killed;
//! every child carries the run's marker ([`super::watchdog::MARKER_VAR`]).

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use reloadbench_model::clock::monotonic_ns;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

pub(crate) use super::pids::PidLog;
use crate::orchestrator::events::{EventSink, Stream};

/// Errors of spawning and stopping processes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcessError {
    /// The program could not be started.
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        /// Process name.
        name: String,
        /// The program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log file could not be created.
    #[error("cannot create log file {path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process did not exit in time.
    #[error("{name} (pid {pid}) did not exit within {timeout:?}")]
    Timeout {
        /// Process name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The deadline.
        timeout: Duration,
    },
    /// Waiting for the process failed.
    #[error("waiting for {name} (pid {pid}): {source}")]
    Wait {
        /// Process name.
        name: String,
        /// Its pid.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
    /// A signal could not be sent.
    #[error("cannot send {signal} to {name} (pid {pid}): {source}")]
    Signal {
        /// Process name.
        name: String,
        /// Target pid.
        pid: u32,
        /// The signal.
        signal: Signal,
        /// Why.
        source: nix::Error,
    },
}

/// How to start one process.
#[derive(Debug, Clone)]
pub(crate) struct ProcessSpec {
    /// Short name used in logs and events (`origin`, `refproxy`, ...).
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Working directory, if not inherited.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Copy stdout as bytes to `<name>-<pid>.stdout.log` in the log
    /// directory instead of reading it as lines into the event log (a
    /// user's command whose output is no event: kept whole, held nowhere
    /// in memory).
    pub stdout_log: bool,
}

impl ProcessSpec {
    /// A spec for `program args...`.
    pub(crate) fn new(name: &str, program: impl Into<PathBuf>) -> ProcessSpec {
        ProcessSpec {
            name: name.to_owned(),
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            stdout_log: false,
        }
    }

    /// Adds an argument.
    pub(crate) fn arg(mut self, a: impl Into<OsString>) -> ProcessSpec {
        self.args.push(a.into());
        self
    }
}

/// Where a case's processes report: event sink, log directory, pid list.
#[derive(Debug, Clone)]
pub(crate) struct ProcessContext {
    /// Where output lines go.
    pub sink: EventSink,
    /// Directory of the `*.stderr.log` files.
    pub log_dir: PathBuf,
    /// The run's pid list.
    pub pids: PidLog,
}

/// One running child in its own process group; killed (the whole group)
/// when dropped.
#[derive(Debug)]
pub(crate) struct ProcessGuard {
    name: String,
    pid: u32,
    child: Child,
    status: Option<ExitStatus>,
    exit_mono_ns: Option<u64>,
    stderr_path: PathBuf,
    readers: Vec<JoinHandle<()>>,
    pids: PidLog,
}

impl ProcessGuard {
    /// Spawns the process in a new process group and starts reading its output.
    pub(crate) fn spawn(
        spec: &ProcessSpec,
        ctx: &ProcessContext,
    ) -> Result<ProcessGuard, ProcessError> {
        let mut cmd = Command::new(&spec.program);
        // Logs go to files: no terminal colours (honoured by tracing and others).
        cmd.args(&spec.args)
            .env("NO_COLOR", "1")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        if let Some((var, value)) = super::watchdog::marker() {
            cmd.env(var, value);
        }
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: spec.name.clone(),
            program: spec.program.clone(),
            source,
        })?;
        let Some(pid) = child.id() else {
            return Err(ProcessError::Spawn {
                name: spec.name.clone(),
                program: spec.program.clone(),
                source: std::io::Error::other("exited before its pid was known"),
            });
        };
        ctx.pids.record(pid, &spec.name);
        let stderr_path = ctx.log_dir.join(format!("{}-{pid}.stderr.log", spec.name));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // From here on the guard kills the group if anything fails.
        let mut guard = ProcessGuard {
            name: spec.name.clone(),
            pid,
            child,
            status: None,
            exit_mono_ns: None,
            stderr_path: stderr_path.clone(),
            readers: Vec::new(),
            pids: ctx.pids.clone(),
        };
        let log = File::create(&stderr_path).map_err(|source| ProcessError::Log {
            path: stderr_path.clone(),
            source,
        })?;
        if let Some(out) = stdout {
            if spec.stdout_log {
                let path = ctx.log_dir.join(format!("{}-{pid}.stdout.log", spec.name));
                let file =
                    File::create(&path).map_err(|source| ProcessError::Log { path, source })?;
                guard.readers.push(spawn_copier(
                    out,
                    spec.name.clone(),
                    pid,
                    ctx.sink.clone(),
                    file,
                ));
            } else {
                guard.readers.push(spawn_reader(
                    out,
                    spec.name.clone(),
                    pid,
                    Stream::Stdout,
                    ctx.sink.clone(),
                    None,
                ));
            }
        }
        if let Some(err) = stderr {
            guard.readers.push(spawn_reader(
                err,
                spec.name.clone(),
                pid,
                Stream::Stderr,
                ctx.sink.clone(),
                Some(log),
            ));
        }
        Ok(guard)
    }

    /// The pid (also the process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Path of the stderr log.
    pub(crate) fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The line of the stderr log that most likely says why the process
    /// failed: the first one mentioning an alert, emergency, fatal or error,
    /// else the last one. `None` when the log is empty.
    pub(crate) fn stderr_excerpt(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.stderr_path).ok()?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let pick = lines
            .clone()
            .find(|l| {
                let l = l.to_ascii_lowercase();
                ["alert", "emerg", "fatal", "error"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .or_else(|| lines.next_back())?;
        Some(pick.chars().take(300).collect())
    }

    /// What to add to a failure of the process: `; it said: ` its
    /// [`ProcessGuard::stderr_excerpt`], if any, and `; stderr in ` the log.
    pub(crate) fn stderr_note(&self) -> String {
        let said = self
            .stderr_excerpt()
            .map(|l| format!("; it said: {l}"))
            .unwrap_or_default();
        format!("{said}; stderr in {}", self.stderr_path.display())
    }

    /// The exit status, once reaped.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Monotonic clock when the harness saw the exit, once reaped.
    pub(crate) fn exit_mono_ns(&self) -> Option<u64> {
        self.exit_mono_ns
    }

    /// Sends `signal` to the process itself.
    pub(crate) fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        if self.status.is_some() {
            return Ok(());
        }
        kill(Pid::from_raw(self.pid as i32), signal).map_err(|source| ProcessError::Signal {
            name: self.name.clone(),
            pid: self.pid,
            signal,
            source,
        })
    }

    /// Sends `signal` to the process group.
    pub(crate) fn signal_group(&self, signal: Signal) -> Result<(), ProcessError> {
        match killpg(Pid::from_raw(self.pid as i32), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(source) => Err(ProcessError::Signal {
                name: self.name.clone(),
                pid: self.pid,
                signal,
                source,
            }),
        }
    }

    /// Reaps the process if it has exited, without waiting.
    pub(crate) fn try_reap(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(st)) = self.child.try_wait()
        {
            self.mark_exited(st);
        }
        self.status
    }

    /// Waits for the process to exit, up to `timeout`.
    pub(crate) async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> Result<ExitStatus, ProcessError> {
        if let Some(st) = self.status {
            return Ok(st);
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(st)) => {
                self.mark_exited(st);
                Ok(st)
            }
            Ok(Err(source)) => Err(ProcessError::Wait {
                name: self.name.clone(),
                pid: self.pid,
                source,
            }),
            Err(_) => Err(ProcessError::Timeout {
                name: self.name.clone(),
                pid: self.pid,
                timeout,
            }),
        }
    }

    /// Sends `signal` to the group and waits up to `timeout` for the exit;
    /// then kills the group with `SIGKILL` and reaps the process.
    pub(crate) async fn stop(
        &mut self,
        signal: Signal,
        timeout: Duration,
    ) -> Result<ExitStatus, ProcessError> {
        if let Some(st) = self.status {
            let _ = self.signal_group(Signal::SIGKILL);
            return Ok(st);
        }
        self.signal_group(signal)?;
        let res = self.wait_exit(timeout).await;
        // Whatever is left of the group (workers, helpers) goes too.
        let _ = self.signal_group(Signal::SIGKILL);
        match res {
            Ok(st) => Ok(st),
            Err(ProcessError::Timeout { .. }) => {
                self.wait_exit(Duration::from_secs(5)).await?;
                res
            }
            Err(e) => Err(e),
        }
    }

    /// Waits (bounded) for the output readers to see the end of both streams.
    pub(crate) async fn join_readers(&mut self, timeout: Duration) {
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(timeout, r).await;
        }
    }

    fn mark_exited(&mut self, st: ExitStatus) {
        self.status = Some(st);
        self.exit_mono_ns = Some(monotonic_ns());
        self.pids.retire(self.pid);
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        // The group may hold grandchildren even after the leader exited.
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        self.pids.retire(self.pid);
        super::watchdog::forget(self.pid);
        for r in &self.readers {
            r.abort();
        }
    }
}

/// Copies `stream` to `file` as it comes (bounded memory), then reports
/// its end.
fn spawn_copier(
    mut stream: impl AsyncRead + Unpin + Send + 'static,
    name: String,
    pid: u32,
    sink: EventSink,
    file: File,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut file = tokio::fs::File::from_std(file);
        let _ = tokio::io::copy(&mut stream, &mut file).await;
        sink.eof(&name, pid, Stream::Stdout);
    })
}

fn spawn_reader(
    stream: impl AsyncRead + Unpin + Send + 'static,
    name: String,
    pid: u32,
    which: Stream,
    sink: EventSink,
    mut log: Option<File>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            sink.line(&name, pid, which, &line);
        }
        sink.eof(&name, pid, which);
    })
}
