//! The proxy's lifecycle errors and how they map to exit codes.

use std::path::PathBuf;

/// Errors of refproxy's process lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The config file is invalid (exit code 2).
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    /// The command line is incomplete (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Binding or inheriting listening sockets failed.
    #[error(transparent)]
    Listeners(#[from] crate::listeners::ListenerError),
    /// Sending or receiving listening sockets failed.
    #[error(transparent)]
    FdPass(#[from] crate::fdpass::FdPassError),
    /// The control socket failed.
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// The HTTP server failed to start.
    #[error("cannot start serving: {0}")]
    Serve(#[from] crate::serve::ServeError),
    /// The events file cannot be opened.
    #[error("cannot open events file {path}: {source}")]
    Events {
        /// The path given with `--events`.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Installing a signal handler failed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The upgrade failed before the new process was ready.
    #[error("upgrade failed: {0}")]
    Upgrade(String),
    /// A master-worker operation failed.
    #[error("master: {0}")]
    Master(String),
    /// The fault injected by `--fail-before-ready`.
    #[error("--fail-before-ready: exiting before READY as asked")]
    InjectedFailure,
    /// Any other I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<crate::config::ConfigError> for ProxyError {
    fn from(e: crate::config::ConfigError) -> Self {
        ProxyError::Config(Box::new(e))
    }
}

impl ProxyError {
    /// The process exit code for this error: 2 for invalid config or usage (a
    /// `control_socket` path that is not a socket included), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ProxyError::Config(_)
            | ProxyError::Usage(_)
            | ProxyError::Control(crate::control::ControlError::NotASocket { .. }) => 2,
            _ => 1,
        }
    }

    /// Wraps an I/O error with a description of what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ProxyError::Io {
            what: what.into(),
            source,
        }
    }
}
