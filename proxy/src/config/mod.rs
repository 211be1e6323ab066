//! refproxy's configuration file: TOML parsed into a raw serde form and validated
//! into a typed [`Config`].
//!
//! ```toml
//! listen = ["127.0.0.1:8080"]            # one or more listening addresses (port 0 allowed)
//! origins = ["127.0.0.1:9000"]           # one or more origins, used round robin
//! control_socket = "/tmp/refproxy.sock"  # optional unix control socket
//! generation_header = false              # add `X-Served-By: gen=<g> pid=<pid>` to responses
//! http2 = false                          # HTTP/2 from clients: h2c, and ALPN h2 on TLS
//!
//! [timeouts]             # humantime durations; every field is optional
//! connect = "1s"         # connecting to an origin; failure -> 502
//! header_read = "10s"    # a client must send its request head within this
//! idle = "60s"           # an idle keep-alive client connection is closed after this
//! request = "30s"        # origin response head deadline once the request is sent; exceeded -> 504
//! body = "60s"           # longest pause in a body or write, either way; exceeded -> 408 or close
//! h2_ping_interval = "30s"  # HTTP/2: a keep-alive PING this often
//! h2_ping_timeout = "10s"   # HTTP/2: no ACK within this closes the connection
//!
//! [drain]
//! deadline = "10s"       # hard deadline of a draining process
//! idle_close = "1s"      # a draining process closes keep-alive connections idle this long
//! linger = "500ms"       # after closing its side, read what the client still sends this long
//! tunnels = "keep"       # upgraded connections (WebSockets): "keep" until the deadline, or "close" (1001)
//!
//! [reload]
//! ready_timeout = "5s"   # a new generation not READY within this is abandoned
//! takeover_timeout = "1s" # a committed successor silent this long is given up
//! max_old_generations = 4
//!
//! [limits]
//! origin_connections = 1024  # connections in use per origin; more requests wait up to timeouts.connect
//! tunnels = 4096             # tunnels (WebSockets) open at once; more upgrades get 503
//! min_send_rate = 128        # bytes/s a client must take of a response it keeps waiting; 0: off
//! min_send_rate_window = "30s"  # at least 1s; measured over this much time spent waiting on the client
//! h2_max_concurrent_streams = 100      # SETTINGS_MAX_CONCURRENT_STREAMS
//! h2_max_header_list_size = 32768      # SETTINGS_MAX_HEADER_LIST_SIZE (also bounds CONTINUATION)
//! h2_initial_stream_window = 262144    # SETTINGS_INITIAL_WINDOW_SIZE
//! h2_initial_connection_window = 1048576
//! h2_max_pending_reset_streams = 20    # rapid reset: streams reset before taken
//! h2_max_local_error_reset_streams = 1024  # streams refproxy may reset for errors
//! h2_premature_reset_window = "1s"     # a client reset of a stream forwarded less than this ago is premature (at least 1ms)
//! h2_max_premature_resets = 250        # more among a connection's last 500 forwarded streams: GOAWAY; 0: off
//! h2_address_premature_resets_per_second = 100  # premature ends per client address (across its connections): refill rate; 0: off
//! h2_address_premature_resets_burst = 1000      # ... and bucket size (at least 1): an empty bucket refuses the address's new h2 connections
//! h2_max_send_buffer = 65536           # response bytes h2 may hold per stream
//! # h2_max_origin_slots_per_connection = 64  # default: origin_connections / 16, at least 1
//!
//! [tls]                  # optional: terminate TLS (see `crate::tls`)
//! cert = "server.pem"    # PEM chain, end-entity first (relative paths: to the config's directory)
//! key = "server.key"     # PEM private key (PKCS#8, PKCS#1 or SEC1)
//! listen = ["127.0.0.1:8443"]  # which `listen` entries speak TLS (addresses, or indices
//!                                # such as 1 for two entries written alike); default: all
//! handshake_timeout = "10s"
//! ticket_key_rotation = "12h"
//! share_ticket_keys = true     # hand the ticket keys to the next generation
//! # ticket_keys_file = "ticket.key"  # 48 or 80 bytes (nginx's format), read at start
//!
//! [[tls.sni]]            # optional, repeatable: a certificate for the SNI names it lists
//! names = ["api.example.com", "*.example.org"]
//! cert = "api.pem"
//! key = "api.key"
//! ```
//!
//! Every error names the file, the line and column, and the field, e.g.
//! `proxy.toml:1:11: listen[0]: invalid socket address "127.0.0.1:x"`. Unknown
//! fields are errors.

mod error;
mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

pub use error::{ConfigError, Position};
use raw::RawConfig;

/// A validated refproxy configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Addresses to listen on (`listen`), at least one; port 0 lets the kernel pick.
    pub listen: Vec<SocketAddr>,
    /// Origin servers (`origins`), at least one; requests go to them round robin.
    pub origins: Vec<SocketAddr>,
    /// Unix control socket (`control_socket`), used for fd passing and commands; none by default.
    pub control_socket: Option<PathBuf>,
    /// When true (`generation_header`), every response carries
    /// `X-Served-By: gen=<generation> pid=<pid>`. Default false.
    pub generation_header: bool,
    /// Client and origin timeouts (`[timeouts]`).
    pub timeouts: Timeouts,
    /// How a replaced process finishes its connections (`[drain]`).
    pub drain: DrainConfig,
    /// Limits of reloads (`[reload]`).
    pub reload: ReloadConfig,
    /// Limits of origin connections (`[limits]`).
    pub limits: Limits,
    /// HTTP/2 from clients (`http2`, the `h2_*` keys of `[limits]` and `[timeouts]`).
    pub http2: Http2Config,
    /// TLS termination (`[tls]`); none by default.
    pub tls: Option<TlsConfig>,
}

/// Bytes that must not show in logs (`Debug` prints their length only).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} secret bytes>", self.0.len())
    }
}

/// `[tls]`: TLS termination on some or all listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `cert`: the PEM certificate chain file, as resolved.
    pub cert_path: PathBuf,
    /// `key`: the PEM private key file, as resolved.
    pub key_path: PathBuf,
    /// The chain and key read from them, checked (valid now, key matches).
    pub cert: crate::tls::certs::CertAndKey,
    /// `listen`: indices of the `listen` entries that speak TLS; `None` (the default): all.
    pub listeners: Option<Vec<usize>>,
    /// `handshake_timeout` (default 10s): a client must complete its handshake within this.
    pub handshake_timeout: Duration,
    /// `ticket_key_rotation` (default 12h, whole seconds, at least 1s): a new ticket key each
    /// period; the previous one still opens tickets.
    pub ticket_key_rotation: Duration,
    /// `share_ticket_keys` (default true): hand the ticket keys to the next generation.
    pub share_ticket_keys: bool,
    /// `ticket_keys_file`: the bytes of the key file (48 or 80), read at start.
    pub ticket_keys_file: Option<Secret>,
    /// `[[tls.sni]]`: certificates chosen by the client's SNI name, in config order (the
    /// first match wins); `cert` and `key` serve every other name, and clients without SNI.
    pub sni: Vec<SniCert>,
}

/// One `[[tls.sni]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCert {
    /// `names`: lowercase host names, or `*.suffix` (one more label).
    pub names: Vec<String>,
    /// `cert` and `key`, read and checked as `tls.cert` and `tls.key`.
    pub cert: crate::tls::certs::CertAndKey,
}

/// `[timeouts]`: humantime durations such as `"1s"` or `"250ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `connect` (default 1s): connecting to an origin; a failed or timed-out
    /// connect is answered with 502 Bad Gateway.
    pub connect: Duration,
    /// `header_read` (default 10s): a client must send its whole request head
    /// within this of its first byte (on a new connection: of the accept), or the
    /// connection is closed.
    pub header_read: Duration,
    /// `idle` (default 60s): a keep-alive client connection with no request in
    /// progress is closed after this long.
    pub idle: Duration,
    /// `request` (default 30s): deadline for the origin's response head, counted from
    /// when the whole request (head and body) has been sent; when exceeded the client
    /// gets 504 Gateway Timeout.
    pub request: Duration,
    /// `body` (default 60s): longest pause in a body being relayed, either way: no byte
    /// from the sending side, or none taken by the receiving side; it also bounds every
    /// write of a head (to the origin, or of the proxy's own answers). When exceeded the
    /// exchange ends: a client stalled in its request body before any response gets 408,
    /// otherwise the connections are closed (the client sees a truncated response).
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(1),
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            request: Duration::from_secs(30),
            body: Duration::from_secs(60),
        }
    }
}

/// `[drain]`: how a process that stopped accepting finishes its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainConfig {
    /// `deadline` (default 10s): hard deadline of the whole drain; connections
    /// still open then are closed.
    pub deadline: Duration,
    /// `idle_close` (default 1s): during a drain, a keep-alive connection that has
    /// been idle this long (counted from the drain's start at the earliest) is
    /// closed, as nginx's `keepalive_min_timeout` does. A client that sends a request
    /// just before the close gets it answered with `Connection: close`; one whose request
    /// is on the wire as the close goes out sees the connection end (EOF, never a reset):
    /// that is the residual risk of draining keep-alive clients.
    pub idle_close: Duration,
    /// `linger` (default 500ms): a draining process closes a connection gracefully (an
    /// idle one, or one after its last `Connection: close` response): it shuts its
    /// sending side down (FIN) and reads and drops what the client still sends, until
    /// the client closes or this long has passed, so that bytes arriving after the close
    /// get no reset. The idle timeout (`timeouts.idle`) closes the same way. Longer than
    /// a round trip of the clients; `deadline` bounds it.
    pub linger: Duration,
    /// `tunnels` (default `keep`): what a draining process does with its tunnels
    /// (upgraded connections, see [`crate::tunnel`]).
    pub tunnels: TunnelPolicy,
}

/// `drain.tunnels`: the drain policy of tunnels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TunnelPolicy {
    /// `keep`: tunnels run on until they end or `drain.deadline` cuts them.
    #[default]
    Keep,
    /// `close`: each WebSocket tunnel is ended at the drain's start with a close frame
    /// 1001 (Going Away) to the client; other tunnels are kept as with `keep`.
    Close,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            deadline: Duration::from_secs(10),
            idle_close: Duration::from_secs(1),
            linger: Duration::from_millis(500),
            tunnels: TunnelPolicy::Keep,
        }
    }
}

/// `[reload]`: limits of a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadConfig {
    /// `ready_timeout` (default 5s): a new generation that has not reported READY
    /// within this is abandoned and the old one keeps serving (rollback).
    pub ready_timeout: Duration,
    /// `takeover_timeout` (default 1s): after the commit, the new generation must confirm
    /// that it accepts within this, and, while the old one drains, answer its heartbeat
    /// within this; otherwise the old generation serves again.
    pub takeover_timeout: Duration,
    /// `max_old_generations` (default 4, at least 1): how many replaced
    /// generations may still be draining at once.
    pub max_old_generations: u32,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            ready_timeout: Duration::from_secs(5),
            takeover_timeout: Duration::from_secs(1),
            max_old_generations: 4,
        }
    }
}

/// `[limits]`: bounds on what refproxy asks of its origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `origin_connections` (default 1024, at least 1): connections to one origin in use
    /// at once, over all serving threads of the process (idle pooled connections are not
    /// counted). A request that finds them all in use waits for one to be released, for
    /// at most `timeouts.connect`, then gets 502. It keeps a burst of requests from
    /// turning into a burst of connects that overflows the origin's accept queue.
    /// Tunnels are not counted here once switched (see `tunnels`).
    pub origin_connections: u32,
    /// `tunnels` (default 4096, at least 1): tunnels (upgraded connections, e.g.
    /// WebSockets) open at once, over all serving threads of the process. An upgrade
    /// request beyond it is answered 503 without being forwarded. A tunnel's origin
    /// connection counts here instead of against `origin_connections`, so that
    /// long-lived tunnels never hold the slots ordinary requests wait for.
    pub tunnels: u32,
    /// `min_send_rate` (default 128 bytes per second, 0 turns it off): the least a
    /// client must take of a response body while refproxy has bytes of it waiting for
    /// the client, measured over `min_send_rate_window`. A slower client has its response
    /// cut (see [`crate::forward`]), so that it cannot hold an origin slot at will by
    /// reading a few bytes a second. Tunnels are not subject to it.
    pub min_send_rate: u32,
    /// `min_send_rate_window` (default 30s, at least 1s): the stretch of time spent waiting on the
    /// client over which `min_send_rate` is measured (time waiting for the origin does
    /// not count).
    pub min_send_rate_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            origin_connections: 1024,
            tunnels: 4096,
            min_send_rate: 128,
            min_send_rate_window: Duration::from_secs(30),
        }
    }
}

/// HTTP/2 from clients: whether it is on (`http2`), and its limits (the `h2_*` keys of
/// `[limits]`) and timers (the `h2_*` keys of `[timeouts]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Config {
    /// `http2` (default false): h2c with prior knowledge on cleartext listeners (next to
    /// HTTP/1.1, told apart by the client preface) and ALPN `h2` on TLS listeners.
    pub enabled: bool,
    /// `limits.h2_max_concurrent_streams` (default 100): streams a client may have open at
    /// once; one more is refused (`RST_STREAM REFUSED_STREAM`).
    pub max_concurrent_streams: u32,
    /// `limits.h2_max_header_list_size` (default 32768 bytes, RFC 9113's size: names,
    /// values and 32 per field): a larger request head gets 431; it also bounds the
    /// CONTINUATION frames of one head.
    pub max_header_list_size: u32,
    /// `limits.h2_initial_stream_window` (default 262144, at most 2^31-1): the flow-control
    /// window of each stream's request body.
    pub initial_stream_window: u32,
    /// `limits.h2_initial_connection_window` (default 1048576, at most 2^31-1).
    pub initial_connection_window: u32,
    /// `limits.h2_max_pending_reset_streams` (default 20): streams the client opened and
    /// reset before refproxy accepted them; more close the connection with
    /// `GOAWAY ENHANCE_YOUR_CALM` (rapid reset, CVE-2023-44487).
    pub max_pending_reset_streams: u32,
    /// `limits.h2_max_local_error_reset_streams` (default 1024): streams refproxy reset
    /// because the client broke the protocol in them; more close the connection with
    /// `GOAWAY ENHANCE_YOUR_CALM`.
    pub max_local_error_reset_streams: u32,
    /// `limits.h2_premature_reset_window` (default 1s, at least 1ms): a stream the client
    /// resets less than this after refproxy forwarded it (took an origin slot for it),
    /// before its response ended (for a WebSocket: before its tunnel was established),
    /// was reset prematurely (its origin connection closed mid-exchange for nothing).
    pub premature_reset_window: Duration,
    /// `limits.h2_max_premature_resets` (default 250, at most
    /// [`Http2Config::MAX_PREMATURE_RESETS`]; 0: off): more premature resets than this
    /// among a connection's last twice as many forwarded streams that ended close it with
    /// `GOAWAY ENHANCE_YOUR_CALM` (counted `premature_reset`). Streams never forwarded
    /// (answered by refproxy itself, or ended while waiting for an origin slot) are not
    /// counted at all.
    pub max_premature_resets: u32,
    /// `limits.h2_address_premature_resets_per_second` (default 100; 0: off): the refill
    /// rate of each client address's bucket of premature ends, across its HTTP/2
    /// connections (an IPv4 address, an IPv6 /64): a forwarded stream the client resets
    /// or cuts by ending its connection, younger than `premature_reset_window` and
    /// before its response ended, is a premature end; when a connection ends, its
    /// address pays a token for each beyond the forwarded streams it let live. Every new
    /// HTTP/2 connection from an address whose bucket has less than a token is closed
    /// with `GOAWAY ENHANCE_YOUR_CALM` (last-stream-id 0; counted
    /// `address_premature_reset`).
    pub address_premature_resets_per_second: u32,
    /// `limits.h2_address_premature_resets_burst` (default 1000, at least 1): the tokens
    /// an address's bucket holds at most.
    pub address_premature_resets_burst: u32,
    /// `limits.h2_max_send_buffer` (default 65536 bytes): response bytes h2 may hold for
    /// one stream that the client's window or its connection has not taken yet
    /// (`h2::server::Builder::max_send_buffer_size`); refproxy reads no more from the
    /// origin for the stream until they leave.
    pub max_send_buffer: u32,
    /// `limits.h2_max_origin_slots_per_connection` (default `None`: a sixteenth of
    /// `limits.origin_connections`, at least 1): origin slots the streams of one client
    /// connection may hold at once, see [`Config::h2_origin_share`].
    pub max_origin_slots_per_connection: Option<u32>,
    /// `timeouts.h2_ping_interval` (default 30s): a keep-alive PING is sent after this long.
    pub ping_interval: Duration,
    /// `timeouts.h2_ping_timeout` (default 10s): a PING not acknowledged within this closes
    /// the connection.
    pub ping_timeout: Duration,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            enabled: false,
            max_concurrent_streams: 100,
            max_header_list_size: 32 * 1024,
            initial_stream_window: 256 * 1024,
            initial_connection_window: 1024 * 1024,
            max_pending_reset_streams: 20,
            max_local_error_reset_streams: 1024,
            premature_reset_window: Duration::from_secs(1),
            max_premature_resets: 250,
            address_premature_resets_per_second: 100,
            address_premature_resets_burst: 1000,
            max_send_buffer: 64 * 1024,
            max_origin_slots_per_connection: None,
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
        }
    }
}

impl Http2Config {
    /// The largest `limits.h2_max_premature_resets`: a connection's account keeps one
    /// 8-byte entry per premature reset it judges.
    pub const MAX_PREMATURE_RESETS: u32 = 10_000;
}

impl TlsConfig {
    /// Default of `tls.handshake_timeout`.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of `tls.ticket_key_rotation`.
    pub const DEFAULT_TICKET_KEY_ROTATION: Duration = Duration::from_secs(12 * 3600);
}

impl Config {
    /// A config with the given addresses and every other setting at its default.
    pub fn new(listen: Vec<SocketAddr>, origins: Vec<SocketAddr>) -> Config {
        Config {
            listen,
            origins,
            control_socket: None,
            generation_header: false,
            timeouts: Timeouts::default(),
            drain: DrainConfig::default(),
            reload: ReloadConfig::default(),
            limits: Limits::default(),
            http2: Http2Config::default(),
            tls: None,
        }
    }
}

impl Config {
    /// How many origin slots the streams of one HTTP/2 client connection may hold at once
    /// (of each origin's `limits.origin_connections`):
    /// `limits.h2_max_origin_slots_per_connection`, by default a sixteenth of
    /// `limits.origin_connections` (at least 1), so that one connection cannot take more
    /// than that fraction of an origin's connections.
    pub fn h2_origin_share(&self) -> u32 {
        self.http2
            .max_origin_slots_per_connection
            .unwrap_or((self.limits.origin_connections / 16).max(1))
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates config `text`; `path` is used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| error::from_toml(path, text, &e))?;
    Validator { text, path }.validate(raw)
}

/// Turns spans into positions while checking values.
struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Validator<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Position {
        Position::at(self.path, self.text, Some(spanned.span().start))
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = self.addrs("listen", &raw.listen)?;
        for (i, addr) in listen.iter().enumerate() {
            if let Some(first) = listen[..i].iter().position(|a| a == addr && a.port() != 0) {
                return Err(ConfigError::Duplicate {
                    at: self.at(&raw.listen.get_ref()[i]),
                    field: format!("listen[{i}]"),
                    addr: addr.to_string(),
                    first: format!("listen[{first}]"),
                });
            }
        }
        let origins = self.addrs("origins", &raw.origins)?;
        let control_socket = match &raw.control_socket {
            Some(s) if s.get_ref().is_empty() => {
                return Err(self.invalid(s, "control_socket", "empty path"));
            }
            Some(s) => Some(PathBuf::from(s.get_ref())),
            None => None,
        };
        let d = Timeouts::default();
        let t = &raw.timeouts;
        let timeouts = Timeouts {
            connect: self.duration("timeouts.connect", &t.connect, d.connect)?,
            header_read: self.duration("timeouts.header_read", &t.header_read, d.header_read)?,
            idle: self.duration("timeouts.idle", &t.idle, d.idle)?,
            request: self.duration("timeouts.request", &t.request, d.request)?,
            body: self.duration("timeouts.body", &t.body, d.body)?,
        };
        let d = DrainConfig::default();
        let drain = DrainConfig {
            deadline: self.duration("drain.deadline", &raw.drain.deadline, d.deadline)?,
            idle_close: self.duration("drain.idle_close", &raw.drain.idle_close, d.idle_close)?,
            linger: self.duration("drain.linger", &raw.drain.linger, d.linger)?,
            tunnels: match &raw.drain.tunnels {
                None => d.tunnels,
                Some(v) if v.get_ref() == "keep" => TunnelPolicy::Keep,
                Some(v) if v.get_ref() == "close" => TunnelPolicy::Close,
                Some(v) => {
                    return Err(self.invalid(
                        v,
                        "drain.tunnels",
                        "expected \"keep\" or \"close\", got",
                    ));
                }
            },
        };
        let d = ReloadConfig::default();
        let max_old_generations = self.at_least_one(
            "reload.max_old_generations",
            &raw.reload.max_old_generations,
            d.max_old_generations,
        )?;
        let limits = Limits {
            origin_connections: self.at_least_one(
                "limits.origin_connections",
                &raw.limits.origin_connections,
                Limits::default().origin_connections,
            )?,
            tunnels: self.at_least_one(
                "limits.tunnels",
                &raw.limits.tunnels,
                Limits::default().tunnels,
            )?,
            min_send_rate: self.whole(
                "limits.min_send_rate",
                &raw.limits.min_send_rate,
                Limits::default().min_send_rate,
            )?,
            min_send_rate_window: self.min_send_rate_window(&raw.limits.min_send_rate_window)?,
        };
        let http2 = self.http2(&raw)?;
        let reload = ReloadConfig {
            ready_timeout: self.duration(
                "reload.ready_timeout",
                &raw.reload.ready_timeout,
                d.ready_timeout,
            )?,
            takeover_timeout: self.duration(
                "reload.takeover_timeout",
                &raw.reload.takeover_timeout,
                d.takeover_timeout,
            )?,
            max_old_generations,
        };
        let tls = match &raw.tls {
            Some(t) => Some(self.tls(t, &listen)?),
            None => None,
        };
        Ok(Config {
            listen,
            origins,
            control_socket,
            generation_header: raw.generation_header,
            timeouts,
            drain,
            reload,
            limits,
            http2,
            tls,
        })
    }

    /// `http2` and the `h2_*` keys of `[limits]` and `[timeouts]`.
    fn http2(&self, raw: &RawConfig) -> Result<Http2Config, ConfigError> {
        /// RFC 9113 6.9.1: the largest flow-control window.
        const MAX_WINDOW: u32 = (1 << 31) - 1;
        let d = Http2Config::default();
        let l = &raw.limits;
        let t = &raw.timeouts;
        let window = |field: &str, value: &Option<Spanned<i64>>, default: u32| {
            let v = self.at_least_one(field, value, default)?;
            match value {
                Some(n) if v > MAX_WINDOW => Err(ConfigError::InvalidValue {
                    at: self.at(n),
                    field: field.to_owned(),
                    value: v.to_string(),
                    message: "must be at most 2147483647 (RFC 9113 6.9.1), got".to_owned(),
                }),
                _ => Ok(v),
            }
        };
        Ok(Http2Config {
            enabled: raw.http2,
            max_concurrent_streams: self.at_least_one(
                "limits.h2_max_concurrent_streams",
                &l.h2_max_concurrent_streams,
                d.max_concurrent_streams,
            )?,
            max_header_list_size: self.at_least_one(
                "limits.h2_max_header_list_size",
                &l.h2_max_header_list_size,
                d.max_header_list_size,
            )?,
            initial_stream_window: window(
                "limits.h2_initial_stream_window",
                &l.h2_initial_stream_window,
                d.initial_stream_window,
            )?,
            initial_connection_window: window(
                "limits.h2_initial_connection_window",
                &l.h2_initial_connection_window,
                d.initial_connection_window,
            )?,
            max_pending_reset_streams: self.at_least_one(
                "limits.h2_max_pending_reset_streams",
                &l.h2_max_pending_reset_streams,
                d.max_pending_reset_streams,
            )?,
            max_local_error_reset_streams: self.at_least_one(
                "limits.h2_max_local_error_reset_streams",
                &l.h2_max_local_error_reset_streams,
                d.max_local_error_reset_streams,
            )?,
            premature_reset_window: self.premature_reset_window(&l.h2_premature_reset_window)?,
            max_premature_resets: self.max_premature_resets(&l.h2_max_premature_resets)?,
            address_premature_resets_per_second: self.whole(
                "limits.h2_address_premature_resets_per_second",
                &l.h2_address_premature_resets_per_second,
                d.address_premature_resets_per_second,
            )?,
            address_premature_resets_burst: self.at_least_one(
                "limits.h2_address_premature_resets_burst",
                &l.h2_address_premature_resets_burst,
                d.address_premature_resets_burst,
            )?,
            max_send_buffer: self.at_least_one(
                "limits.h2_max_send_buffer",
                &l.h2_max_send_buffer,
                d.max_send_buffer,
            )?,
            max_origin_slots_per_connection: match &l.h2_max_origin_slots_per_connection {
                None => None,
                some => {
                    Some(self.at_least_one("limits.h2_max_origin_slots_per_connection", some, 1)?)
                }
            },
            ping_interval: self.duration(
                "timeouts.h2_ping_interval",
                &t.h2_ping_interval,
                d.ping_interval,
            )?,
            ping_timeout: self.duration(
                "timeouts.h2_ping_timeout",
                &t.h2_ping_timeout,
                d.ping_timeout,
            )?,
        })
    }

    /// A path of the config, relative ones taken from the config file's directory.
    fn resolve(&self, value: &Spanned<String>, field: &str) -> Result<PathBuf, ConfigError> {
        let p = value.get_ref();
        if p.trim().is_empty() {
            return Err(self.invalid(value, field, "empty path"));
        }
        let path = Path::new(p);
        Ok(match self.path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        })
    }

    fn tls(&self, t: &raw::RawTls, listen: &[SocketAddr]) -> Result<TlsConfig, ConfigError> {
        let (cert_path, key_path, cert) = self.cert_and_key(&t.cert, &t.key, "tls")?;
        let mut sni = Vec::with_capacity(t.sni.len());
        for (i, s) in t.sni.iter().enumerate() {
            let field = format!("tls.sni[{i}]");
            if s.names.get_ref().is_empty() {
                return Err(ConfigError::Empty {
                    at: self.at(&s.names),
                    field: format!("{field}.names"),
                });
            }
            let mut names = Vec::new();
            for (j, n) in s.names.get_ref().iter().enumerate() {
                let name = n.get_ref().trim().to_ascii_lowercase();
                let bare = name.strip_prefix("*.").unwrap_or(&name);
                let valid = !bare.is_empty()
                    && bare.split('.').all(|l| {
                        !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !valid {
                    return Err(self.invalid(
                        n,
                        &format!("{field}.names[{j}]"),
                        "invalid host name",
                    ));
                }
                names.push(name);
            }
            let (_, _, cert) = self.cert_and_key(&s.cert, &s.key, &field)?;
            sni.push(SniCert { names, cert });
        }
        let listeners = match &t.listen {
            None => None,
            Some(list) => Some(self.tls_listeners(list, listen)?),
        };
        let d = TlsConfig::DEFAULT_HANDSHAKE_TIMEOUT;
        let handshake_timeout = self.duration("tls.handshake_timeout", &t.handshake_timeout, d)?;
        let ticket_key_rotation = self.duration(
            "tls.ticket_key_rotation",
            &t.ticket_key_rotation,
            TlsConfig::DEFAULT_TICKET_KEY_ROTATION,
        )?;
        if let Some(r) = &t.ticket_key_rotation
            && (ticket_key_rotation.subsec_nanos() != 0 || ticket_key_rotation.as_secs() < 1)
        {
            return Err(self.invalid(
                r,
                "tls.ticket_key_rotation",
                "must be whole seconds, at least 1s, got",
            ));
        }
        let ticket_keys_file = match &t.ticket_keys_file {
            None => None,
            Some(f) => {
                let path = self.resolve(f, "tls.ticket_keys_file")?;
                let bytes = crate::tls::tickets::read_key_file(&path).map_err(|source| {
                    ConfigError::TicketKeys {
                        at: self.at(f),
                        field: "tls.ticket_keys_file".to_owned(),
                        source,
                    }
                })?;
                Some(Secret(bytes))
            }
        };
        Ok(TlsConfig {
            cert_path,
            key_path,
            cert,
            listeners,
            handshake_timeout,
            ticket_key_rotation,
            share_ticket_keys: t.share_ticket_keys.unwrap_or(true),
            ticket_keys_file,
            sni,
        })
    }

    /// Reads and checks a certificate chain and its key, named by the fields `cert` and
    /// `key` of table `table`; errors point at the field that names the bad file.
    fn cert_and_key(
        &self,
        cert: &Spanned<String>,
        key: &Spanned<String>,
        table: &str,
    ) -> Result<(PathBuf, PathBuf, crate::tls::certs::CertAndKey), ConfigError> {
        use crate::tls::certs;
        let cert_field = format!("{table}.cert");
        let key_field = format!("{table}.key");
        let cert_path = self.resolve(cert, &cert_field)?;
        let key_path = self.resolve(key, &key_field)?;
        let at_cert = |source| ConfigError::Tls {
            at: self.at(cert),
            field: cert_field.clone(),
            source: Box::new(source),
        };
        let at_key = |source| ConfigError::Tls {
            at: self.at(key),
            field: key_field.clone(),
            source: Box::new(source),
        };
        let chain = certs::load_chain(&cert_path).map_err(at_cert)?;
        let key = certs::load_key(&key_path).map_err(at_key)?;
        certs::check_pair(&chain, &key, &key_path).map_err(at_key)?;
        Ok((cert_path, key_path, certs::CertAndKey { chain, key }))
    }

    /// A whole number of at least 1 (and at most `u32::MAX`), or `default` when absent.
    fn at_least_one(
        &self,
        field: &str,
        value: &Option<Spanned<i64>>,
        default: u32,
    ) -> Result<u32, ConfigError> {
        self.whole_from(1, field, value, default)
    }

    /// A whole number (0 allowed) that fits in 32 bits, or `default` when absent.
    fn whole(
        &self,
        field: &str,
        value: &Option<Spanned<i64>>,
        default: u32,
    ) -> Result<u32, ConfigError> {
        self.whole_from(0, field, value, default)
    }

    /// A whole number from `min` to `u32::MAX`, or `default` when absent.
    fn whole_from(
        &self,
        min: u32,
        field: &str,
        value: &Option<Spanned<i64>>,
        default: u32,
    ) -> Result<u32, ConfigError> {
        let Some(n) = value else {
            return Ok(default);
        };
        match u32::try_from(*n.get_ref()) {
            Ok(v) if v >= min => Ok(v),
            _ => Err(ConfigError::InvalidValue {
                at: self.at(n),
                field: field.to_owned(),
                value: n.get_ref().to_string(),
                message: if min == 1 {
                    "must be a whole number of at least 1, got".to_owned()
                } else {
                    format!("must be a whole number from {min} to {}, got", u32::MAX)
                },
            }),
        }
    }

    /// `limits.min_send_rate_window`: at least a second. A window of a few ms would cut
    /// clients that take bytes steadily but in steps (TCP opens a closed window only
    /// once a segment's worth of room is free: 64 KiB on loopback).
    fn min_send_rate_window(
        &self,
        value: &Option<Spanned<String>>,
    ) -> Result<Duration, ConfigError> {
        let field = "limits.min_send_rate_window";
        let d = self.duration(field, value, Limits::default().min_send_rate_window)?;
        match value {
            Some(v) if d < Duration::from_secs(1) => {
                Err(self.invalid(v, field, "must be at least 1s, got"))
            }
            _ => Ok(d),
        }
    }

    /// `limits.h2_max_premature_resets`: 0 (off) to
    /// [`Http2Config::MAX_PREMATURE_RESETS`].
    fn max_premature_resets(&self, value: &Option<Spanned<i64>>) -> Result<u32, ConfigError> {
        let field = "limits.h2_max_premature_resets";
        let max = Http2Config::MAX_PREMATURE_RESETS;
        let Some(n) = value else {
            return Ok(Http2Config::default().max_premature_resets);
        };
        match u32::try_from(*n.get_ref()) {
            Ok(v) if v <= max => Ok(v),
            _ => Err(ConfigError::InvalidValue {
                at: self.at(n),
                field: field.to_owned(),
                value: n.get_ref().to_string(),
                message: format!("must be a whole number from 0 (off) to {max}, got"),
            }),
        }
    }

    /// `limits.h2_premature_reset_window`: at least 1ms. A shorter window would turn the
    /// guard off without saying so (no stream is reset that soon after it was forwarded).
    fn premature_reset_window(
        &self,
        value: &Option<Spanned<String>>,
    ) -> Result<Duration, ConfigError> {
        let field = "limits.h2_premature_reset_window";
        let d = self.duration(field, value, Http2Config::default().premature_reset_window)?;
        match value {
            Some(v) if d < Duration::from_millis(1) => {
                Err(self.invalid(v, field, "must be at least 1ms, got"))
            }
            _ => Ok(d),
        }
    }

    fn invalid(&self, value: &Spanned<String>, field: &str, message: &str) -> ConfigError {
        ConfigError::InvalidValue {
            at: self.at(value),
            field: field.to_owned(),
            value: value.get_ref().clone(),
            message: message.to_owned(),
        }
    }

    /// The indices of the `listen` entries named by `tls.listen` (addresses or indices).
    fn tls_listeners(
        &self,
        list: &Spanned<Vec<Spanned<raw::RawListenRef>>>,
        listen: &[SocketAddr],
    ) -> Result<Vec<usize>, ConfigError> {
        if list.get_ref().is_empty() {
            return Err(ConfigError::Empty {
                at: self.at(list),
                field: "tls.listen".to_owned(),
            });
        }
        let mut indices = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            let field = format!("tls.listen[{i}]");
            let invalid = |value: String, message: &str| ConfigError::InvalidValue {
                at: self.at(entry),
                field: field.clone(),
                value,
                message: message.to_owned(),
            };
            match entry.get_ref() {
                raw::RawListenRef::Index(n) => match usize::try_from(*n) {
                    Ok(n) if n < listen.len() => indices.push(n),
                    _ => {
                        let message = format!(
                            "not the index of a `listen` entry (0 to {}):",
                            listen.len() - 1
                        );
                        return Err(invalid(n.to_string(), &message));
                    }
                },
                raw::RawListenRef::Addr(text) => {
                    let Ok(addr) = text.trim().parse::<SocketAddr>() else {
                        return Err(invalid(text.clone(), "invalid socket address"));
                    };
                    let found: Vec<usize> =
                        (0..listen.len()).filter(|&j| listen[j] == addr).collect();
                    match found[..] {
                        [] => {
                            let message = "not one of the `listen` addresses:";
                            return Err(invalid(text.clone(), message));
                        }
                        [one] => indices.push(one),
                        [.., last] => {
                            let entries: Vec<String> =
                                found.iter().map(|j| format!("listen[{j}]")).collect();
                            let message = format!(
                                "ambiguous, written more than once in `listen` ({}): write the index of the one meant (e.g. listen = [{last}]) instead of",
                                entries.join(", ")
                            );
                            return Err(invalid(text.clone(), &message));
                        }
                    }
                }
            }
        }
        indices.sort_unstable();
        indices.dedup();
        Ok(indices)
    }

    fn addrs(
        &self,
        field: &str,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<SocketAddr>, ConfigError> {
        if list.get_ref().is_empty() {
            return Err(ConfigError::Empty {
                at: self.at(list),
                field: field.to_owned(),
            });
        }
        list.get_ref()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
                    self.invalid(s, &format!("{field}[{i}]"), "invalid socket address")
                })
            })
            .collect()
    }

    fn duration(
        &self,
        field: &str,
        value: &Option<Spanned<String>>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(self.invalid(value, field, "duration must be positive, got")),
            Err(_) => Err(self.invalid(
                value,
                field,
                "invalid duration (expected e.g. \"500ms\" or \"10s\")",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
