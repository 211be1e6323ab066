//! The system under test as the timeline sees it: start it, act on it, stop
//! it. [`Runner`] has one implementation per kind of proxy
//! ([`super::reference::ReferenceRunner`], [`super::command::CommandRunner`])
//! and a scripted one (`FakeRunner`, built only for tests).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::scenario::{ActionSpec, Vars};

use crate::orchestrator::events::EventLog;
use crate::orchestrator::os::process::ProcessContext;

/// Why the system under test could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunnerError {
    /// A process could not be spawned, stopped or signalled.
    #[error(transparent)]
    Process(#[from] crate::orchestrator::os::process::ProcessError),
    /// A process did not become ready.
    #[error(transparent)]
    Readiness(#[from] super::readiness::ReadinessError),
    /// A file of the case (config, ...) could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template could not be rendered.
    #[error("{what}: {source}")]
    Template {
        /// Which template.
        what: String,
        /// Why.
        source: crate::scenario::TemplateError,
    },
    /// A template could not be rendered (a step's command).
    #[error(transparent)]
    Render(#[from] crate::scenario::TemplateError),
    /// A host action (a step's shell command, a sysctl) failed.
    #[error(transparent)]
    Host(#[from] crate::orchestrator::os::host::HostError),
    /// A file the scenario names could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The pid of a `signal` action could not be found.
    #[error(transparent)]
    Pid(#[from] super::external::PidError),
    /// No port could be reserved for the system under test or an origin.
    #[error("cannot reserve a port: {0}")]
    Port(#[source] std::io::Error),
    /// The scenario needs something of the runner it does not have
    /// (`no listen address`, `no pid file configured`, `no main pid`, ...).
    #[error("{0}")]
    Missing(&'static str),
    /// The pid to signal was not started by this case.
    #[error("pid {0} was not started by this case")]
    NotOurs(u32),
    /// A signal could not be sent.
    #[error("cannot send {signal} to {pid}: {source}")]
    Signal {
        /// The signal.
        signal: nix::sys::signal::Signal,
        /// The process.
        pid: u32,
        /// Why.
        source: nix::errno::Errno,
    },
    /// A process exited before it was ready.
    #[error("pid {pid} exited with status {code} before it was ready")]
    ExitedEarly {
        /// The process.
        pid: u32,
        /// Its exit code.
        code: i32,
    },
    /// The main process did not exit within the stop timeout.
    #[error("pid {pid} did not exit within {limit:?}")]
    StopTimeout {
        /// The process.
        pid: u32,
        /// The stop timeout.
        limit: std::time::Duration,
    },
    /// The system under test did not become ready after a start.
    #[error("{source}{note}")]
    NotReady {
        /// Why.
        source: Box<RunnerError>,
        /// What else is known, each part starting with `; `: how the process
        /// exited, what it said, where its stderr log is.
        note: String,
    },
}

/// What one action did, on the monotonic clock, as far as known when it
/// returned. Later phases of retired processes (drained, exited) are looked
/// up in the event log when the case ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ActOutcome {
    /// When the harness triggered it.
    pub trigger_mono_ns: u64,
    /// When the new process (or generation) reported ready.
    pub ready_mono_ns: Option<u64>,
    /// When the replaced process was seen to exit, if the action waited for it.
    pub exited_mono_ns: Option<u64>,
    /// Pids of the processes being replaced (their drained / exited events count).
    pub old_pids: Vec<u32>,
    /// Pid of the process that serves afterwards, if it changed.
    pub new_pid: Option<u32>,
    /// Why the action failed (a reload rolled back, a command failed, ...).
    pub error: Option<String>,
}

impl ActOutcome {
    /// An outcome triggered now.
    pub(crate) fn triggered_now() -> ActOutcome {
        ActOutcome {
            trigger_mono_ns: reloadbench_model::clock::monotonic_ns(),
            ..ActOutcome::default()
        }
    }

    /// Marks the outcome failed.
    pub(crate) fn fail(mut self, why: impl std::fmt::Display) -> ActOutcome {
        self.error = Some(why.to_string());
        self
    }

    /// The outcome, marked failed by `e` (with every cause).
    pub(crate) fn fail_by(self, e: &(dyn std::error::Error + 'static)) -> ActOutcome {
        self.fail(crate::cause::chain(e))
    }

    /// The outcome, marked failed when `res` is an error.
    pub(crate) fn check<E: std::error::Error + 'static>(self, res: Result<(), E>) -> ActOutcome {
        match res {
            Ok(()) => self,
            Err(e) => self.fail_by(&e),
        }
    }
}

/// Drives one system under test through a case.
///
/// Every method bounds its waits; a failed action is reported in its
/// [`ActOutcome`], not as an error, so the case goes on measuring.
#[allow(async_fn_in_trait)]
pub(crate) trait Runner {
    /// Starts the system under test and waits until it is ready; returns the
    /// address clients connect to.
    async fn start(&mut self, log: &mut EventLog) -> Result<SocketAddr, RunnerError>;

    /// Performs one action of the timeline.
    async fn act(&mut self, action: &ActionSpec, log: &mut EventLog) -> ActOutcome;

    /// Stops everything it started (old generations get their drain time
    /// first, bounded), reaps it and undoes host changes (sysctls).
    async fn stop(&mut self, log: &mut EventLog) -> Result<(), RunnerError>;

    /// When the harness saw a process it retired exit, if it did.
    fn exit_seen(&self, pid: u32) -> Option<u64>;

    /// Why the system under test is no longer serving, if its serving
    /// process died without an action of the timeline stopping it (a crash,
    /// or killed from outside). Asked once the load has ended, before
    /// [`Runner::stop`].
    fn lost(&mut self) -> Option<String> {
        None
    }
}

/// What a runner needs to know about its case.
#[derive(Debug, Clone)]
pub(crate) struct CaseEnv {
    /// The case directory (absolute): configs, sockets, logs.
    pub dir: PathBuf,
    /// Address of the origin.
    pub origin: SocketAddr,
    /// Where processes report.
    pub ctx: ProcessContext,
    /// Directory of the scenario file (absolute).
    pub scenario_dir: PathBuf,
    /// The run's certificates, when the case's load speaks TLS.
    pub tls: Option<crate::orchestrator::pki::TlsFiles>,
    /// The case's load speaks HTTP/2 (`http2 = true`): the reference proxy
    /// is configured to serve it.
    pub http2: bool,
}

impl CaseEnv {
    /// Placeholder values known before the proxy starts.
    pub(crate) fn vars(&self) -> Vars {
        let mut v = Vars::new();
        v.set("origin", self.origin.to_string())
            .set("origin_port", self.origin.port().to_string())
            .set("dir", self.dir.display().to_string())
            .set("scenario_dir", self.scenario_dir.display().to_string())
            .set("generation", "1");
        if let Some(t) = &self.tls {
            v.set("cert", t.cert.display().to_string())
                .set("key", t.key.display().to_string())
                .set("cert_pem_bundle", t.bundle.display().to_string())
                .set("ca", t.ca.display().to_string());
        }
        v
    }
}
