//! The library's error type: configuration problems and run-time failures of
//! the load generator itself (never failures of the server under test, which
//! are data, see [`reloadbench_model::outcome::FailureClass`]).

use std::io;

/// Why a load run could not be configured, started or finished.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL is not of the form `http://host[:port][/path]`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL uses a scheme other than `http`.
    #[error("unsupported scheme in {url:?}: only http:// (HTTP/1.1 over plain TCP) is supported")]
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
}
