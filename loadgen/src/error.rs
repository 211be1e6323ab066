//! The library's error type: configuration problems and run-time failures of
//! the load generator itself (never failures of the server under test, which
//! are data, see [`reloadbench_model::outcome::FailureClass`]).

use std::io;
use std::net::SocketAddr;

/// Why a load run could not be configured, started or finished.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL is not of the form `http[s]://host[:port][/path]`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL uses a scheme other than `http` or `https`.
    #[error("unsupported scheme in {url:?}: only http:// and https:// (HTTP/1.1) are supported")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
    },
    /// The host name did not resolve to an IPv4 or IPv6 address.
    #[error("cannot resolve {host}:{port}")]
    Resolve {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// Resolver error, if any.
        #[source]
        source: Option<io::Error>,
    },
    /// A setting is out of range or settings contradict each other.
    #[error("invalid setting {field}: {reason}")]
    InvalidConfig {
        /// The setting (a [`crate::LoadConfig`] field).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file (`--cacert`) cannot be read or holds no CA certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings could not be turned into a client configuration.
    #[error("TLS configuration: {reason}")]
    Tls {
        /// rustls's reason.
        reason: String,
    },
    /// A worker thread or its runtime could not be created.
    #[error("cannot start worker thread {index}")]
    Worker {
        /// Worker index.
        index: usize,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A worker thread ended without delivering its results (it panicked).
    #[error("worker thread {index} failed: {reason}")]
    WorkerFailed {
        /// Worker index.
        index: usize,
        /// What happened.
        reason: String,
    },
    /// The open-file limit is too low for the connections asked for, even
    /// with the soft limit raised to the hard one.
    #[error(
        "{connections} connections need about {need} open files, but the hard limit is {hard}: \
         raise it (as root: `ulimit -Hn {need}`; for a service: LimitNOFILE={need})"
    )]
    FdLimit {
        /// Connections asked for.
        connections: u64,
        /// Open files needed ([`crate::limits::FD_RESERVE`] more than connections).
        need: u64,
        /// The hard limit.
        hard: u64,
    },
    /// The open-file limit could not be read or raised.
    #[error("cannot raise the open-file limit")]
    FdLimitUnknown {
        /// The system call's error.
        #[source]
        source: io::Error,
    },
    /// More keep-alive connections than the source addresses have ports.
    #[error(
        "{connections} keep-alive connections to {addr} need {need} source addresses \
         (--source-ips {need}, loopback targets only): each has {ports} ephemeral ports \
         (net.ipv4.ip_local_port_range), and {sources} given"
    )]
    SourcePorts {
        /// Connections asked for.
        connections: u64,
        /// The target.
        addr: SocketAddr,
        /// Ephemeral ports per source address.
        ports: u64,
        /// Source addresses the run would use.
        sources: u64,
        /// Source addresses needed.
        need: u64,
    },
}
