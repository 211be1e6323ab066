//! The validated parts of a scenario: origin, load and system under test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use reloadbench_loadgen::{RequestKind, RetryPolicy, TlsVersion};

use super::template::Template;

/// The origin server behind the system under test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OriginSpec {
    /// The built-in origin (`reloadbench origin`), started as its own process.
    BuiltIn {
        /// Size of every response body in bytes.
        body_bytes: u64,
        /// Delay before each response.
        delay: Duration,
    },
    /// An external origin started from a command template.
    Command(CommandOrigin),
    /// No origin: a `kind = "external"` server without an `[origin]` table
    /// serves on its own (or from origins the user runs).
    None,
}

/// An external origin.
///
/// Its port is reserved by the orchestrator (bind `127.0.0.1:0`, read the
/// port, close) just before start and given as `{origin}` / `{origin_port}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandOrigin {
    /// The command line; split into words, no shell.
    pub command: Template,
    /// How to know it is ready.
    pub ready: ReadySpec,
    /// The program that must be installed, if any (checked before the run).
    pub binary: Option<String>,
    /// How to install `binary`, shown when it is missing.
    pub install: Option<String>,
}

/// The load of a case (already merged with the case's `[case.load]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadSpec {
    /// Concurrent clients (closed loop) or connections (open loop).
    pub concurrency: u64,
    /// Stop after this many requests, if set.
    pub requests: Option<u64>,
    /// Stop after this long, if set. At least one of `requests` and `duration` is set.
    pub duration: Option<Duration>,
    /// Open loop at this many requests per second, if set; closed loop otherwise.
    pub rate: Option<f64>,
    /// Keep connections alive between requests.
    pub keep_alive: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Request path, starting with `/`.
    pub path: String,
    /// Width of the time buckets of the load report.
    pub bucket: Duration,
    /// Method of every request without a mix (`method`, default `GET`).
    pub method: String,
    /// Headers sent with every request (of every kind of a mix).
    pub headers: Vec<(String, String)>,
    /// Body of every request without a mix (`body` or the bytes of `body_file`).
    pub body: Option<Vec<u8>>,
    /// Content type of that body.
    pub content_type: Option<String>,
    /// The weighted mix of `[[load.request]]` (empty: every request is `method` on `path`).
    pub mix: Vec<RequestKind>,
    /// Pause of each client between its requests (`think_time`).
    pub think_time: Option<Duration>,
    /// How retryable failures are retried (`retry`).
    pub retry: RetryPolicy,
    /// TLS to the system under test (`tls = true`), if the load speaks it.
    pub tls: Option<LoadTls>,
    /// HTTP/2 to the system under test (`http2 = true`), if the load speaks it.
    pub http2: Option<LoadH2>,
    /// What the load holds (`kind`, default requests).
    pub kind: LoadKind,
}

/// What a load holds (`kind = "requests" | "websocket" | "stream"` in `[load]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LoadKind {
    /// Short requests (the default).
    #[default]
    Requests,
    /// WebSocket clients, each holding one connection for the run
    /// (`loadgen --ws`; with `http2 = true`, over HTTP/2 extended CONNECT
    /// streams, `loadgen --ws --h2`).
    WebSocket(LoadWs),
    /// Requests whose responses last (`loadgen --stream`): a response cut
    /// mid-body is `truncated`.
    Stream,
}

/// The WebSocket settings of a `kind = "websocket"` load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoadWs {
    /// Pause between two messages of a connection (`message_interval`, default 100 ms).
    pub message_interval: Duration,
    /// Bytes per message (`message_bytes`, default 64).
    pub message_bytes: u64,
    /// An echo later than this makes the message late (`message_timeout`, default 1 s).
    pub message_timeout: Duration,
    /// Pause between a connection's end and the next attempt (`reconnect_delay`, default 0).
    pub reconnect_delay: Duration,
}

/// What a draining reference proxy does with its tunnels (`drain_tunnels`,
/// refproxy's `drain.tunnels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DrainTunnels {
    /// Run on until they end or the drain deadline cuts them (the default).
    #[default]
    Keep,
    /// End each WebSocket at drain start with a close frame 1001.
    Close,
}

impl DrainTunnels {
    /// The value in refproxy's config (`"keep"` or `"close"`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            DrainTunnels::Keep => "keep",
            DrainTunnels::Close => "close",
        }
    }
}

/// How the load speaks HTTP/2 (`http2 = true` in `[load]`): h2c with prior
/// knowledge, or ALPN `h2` with `tls = true`. `concurrency` is then the
/// number of connections, and every connection is kept (keep-alive is
/// inherent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoadH2 {
    /// Concurrent streams per connection (`streams`, default 1).
    pub streams: u64,
    /// Retry a stream refused by a GOAWAY once on a new connection
    /// (`retry_refused`, default off: the load measures).
    pub retry_refused: bool,
}

/// How the load speaks TLS (`tls = true` in `[load]`). The harness makes the
/// run's CA and server certificate; the load verifies against that CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadTls {
    /// Resume sessions from one store shared by all connections (`tls_resume`, default on).
    pub resume: bool,
    /// The one version offered (`tls_version = "1.2" | "1.3"`); `None`: both.
    pub version: Option<TlsVersion>,
}

impl LoadSpec {
    /// The distinct methods the load sends, in order of first appearance.
    pub(crate) fn methods(&self) -> Vec<&str> {
        if self.mix.is_empty() {
            return vec![self.method.as_str()];
        }
        let mut out: Vec<&str> = Vec::new();
        for k in &self.mix {
            if !out.contains(&k.method.as_str()) {
                out.push(&k.method);
            }
        }
        out
    }
}

/// The system under test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ProxySpec {
    /// The reference proxy `refproxy`; each reload action names its mode.
    Reference(ReferenceProxy),
    /// Any other server, driven by command templates.
    Command(Box<CommandProxy>),
    /// A server reloadbench does not start or stop (`kind = "external"`):
    /// only loaded, observed and acted on through the timeline's `exec`
    /// and `signal` actions.
    External(Box<ExternalProxy>),
}

/// A running server the harness attaches to (`kind = "external"`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExternalProxy {
    /// `target`: where the load goes.
    pub target: Target,
    /// With an `https://` target: the CA file the load verifies the server
    /// against (`ca_file`, relative to the scenario's directory).
    pub ca_file: Option<PathBuf>,
    /// With an `https://` target: accept any certificate (`insecure = true`).
    pub insecure: bool,
    /// How to know the server is ready before the load starts (default: the
    /// port accepts).
    pub ready: ReadySpec,
    /// A command printing the server's version, recorded in the environment.
    pub version: Option<Template>,
    /// The server reloads in its own processes (`reloads_in_place = true`,
    /// e.g. a configuration reloaded through an admin API): a reload that
    /// changes no process is then not marked as not done.
    pub reloads_in_place: bool,
}

/// The `target` URL of an external server, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The URL as written.
    pub url: String,
    /// `https://`.
    pub tls: bool,
    /// Host as written (a name or an IP address, without brackets).
    pub host: String,
    /// Port (80 / 443 when not written).
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
    /// The addresses the host resolved to when the run checked them (empty
    /// until then): the run resolves the host once, and the runner and the
    /// load connect to the first of these, never to a fresh resolution.
    pub addrs: Vec<std::net::SocketAddr>,
}

/// Settings of the reference proxy for the config the harness writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReferenceProxy {
    /// Drain deadline of an old process (`[drain] deadline`).
    pub drain_deadline: Duration,
    /// Idle keep-alive connections of a draining process are closed after this
    /// (`[drain] idle_close`).
    pub idle_close: Duration,
    /// How long a new process may take to become ready (`[reload] ready_timeout`).
    pub ready_timeout: Duration,
    /// Whether responses carry the proxy's generation header.
    pub generation_header: bool,
    /// With a TLS load: hand the session-ticket keys to the next generation
    /// (`[tls] share_ticket_keys`, default on; off is the control case).
    pub share_ticket_keys: bool,
    /// With a TLS load: the ticket key file of `[tls] ticket_keys_file`, if any.
    pub ticket_keys_file: Option<TicketKeysFile>,
    /// What a draining process does with its tunnels (`drain_tunnels`).
    pub drain_tunnels: DrainTunnels,
}

/// Where the reference proxy's ticket key file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TicketKeysFile {
    /// `ticket_keys_file = true`: a random 80-byte file the harness writes
    /// into the case directory.
    Generated,
    /// `ticket_keys_file = "PATH"` (relative to the scenario's directory).
    Path(PathBuf),
}

/// A server driven by command templates (HAProxy, nginx, ...).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandProxy {
    /// The program that must be installed (looked up in `PATH`).
    pub binary: String,
    /// How to install it, shown when it is missing (e.g. `scripts/install-peers haproxy`).
    pub install: Option<String>,
    /// A command printing the version, recorded in the environment (e.g. `haproxy -v`).
    pub version: Option<Template>,
    /// Config template file (absolute path), rendered into the case dir.
    pub config_template: Option<PathBuf>,
    /// File name of the rendered config inside the case dir (`{config}`).
    pub config_name: String,
    /// The pid file (`{pidfile}`), a template usually under `{dir}`.
    pub pidfile: Template,
    /// The control socket (`{stats_socket}`), a template usually under `{dir}`.
    pub stats_socket: Template,
    /// Where the main pid (`{pid}`) comes from.
    pub main_pid: MainPid,
    /// Starts the server (a long-running process, split into words, no shell).
    pub start: Template,
    /// How to know the started server is ready.
    pub ready: ReadySpec,
    /// Stops the server; the main pid must exit within `stop_timeout`.
    pub stop: Step,
    /// How long a stop may take before the process group is killed.
    pub stop_timeout: Duration,
    /// Restarts the server; `None` means stop, then start.
    pub restart: Option<Vec<Step>>,
    /// Named reload variants, each a sequence of steps.
    pub reload: BTreeMap<String, ReloadVariant>,
}

/// How the orchestrator knows the main pid of a command proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MainPid {
    /// The process it spawned last (the start command, or a reload's `spawn` step).
    Child,
    /// The pid read from `{pidfile}` once ready: after start (the start
    /// command may exit once the file is written, e.g. a wrapper that leaves
    /// the server running) and again after each reload, when it may be the
    /// same pid (nginx after SIGHUP) or a new one (nginx after a binary
    /// upgrade). A reload never has to change it.
    PidFile,
}

/// One way to reload a command proxy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReloadVariant {
    /// The steps, in order; each waits for its own `wait` condition if it has
    /// one. The reload is complete (its "ready" time) when the last step is done.
    pub steps: Vec<Step>,
}

/// One step of a stop, restart or reload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    /// What to do.
    pub action: StepAction,
    /// What to wait for after doing it, if anything.
    pub wait: Option<ReadySpec>,
}

/// The action of a [`Step`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StepAction {
    /// Spawn a long-running process that becomes the new main process (words, no shell).
    Spawn(Template),
    /// Run a command to completion with `/bin/sh -c`; it must exit 0 within the timeout.
    Run {
        /// The command.
        command: Template,
        /// Its deadline.
        timeout: Duration,
    },
    /// Send a signal.
    Signal {
        /// Which signal.
        signal: Signal,
        /// To which process.
        target: PidTarget,
    },
}

/// The process a signal goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidTarget {
    /// The current main pid (`{pid}`).
    Main,
    /// The main pid as it was when the reload began (after a step replaced it).
    Previous,
    /// The whole process group of the system under test.
    Group,
}

/// A readiness condition with its deadline. Every one is a signalled event,
/// never a fixed sleep.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadySpec {
    /// What to wait for.
    pub how: Readiness,
    /// Give up (and fail the step) after this long.
    pub timeout: Duration,
}

/// What "ready" means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Readiness {
    /// A JSON `ready` event line on stdout (reloadbench-model `Event`).
    Event,
    /// The pid file exists and names a live pid; after a step, a pid different
    /// from the one it held before the step.
    PidFile(Template),
    /// The listen port accepts a TCP connection.
    Port,
    /// `GET path` on the listen address answers 2xx.
    Http(String),
    /// A line printed (stdout or stderr) by any process of the system under
    /// test after the step began contains this text, e.g. HAProxy's
    /// `Proxy fe stopped` from the old process after a `-sf` reload.
    Log(String),
    /// A line appended to a file after the wait began contains this text
    /// (`{ log_file = "PATH", log = "TEXT" }`): a server the harness did
    /// not start writes its log there.
    LogFile {
        /// The file (absolute).
        path: PathBuf,
        /// The text.
        text: String,
    },
}
