//! refproxy: a reference HTTP/1.1 reverse proxy that can be replaced in four ways.
//!
//! The HTTP side ([`config`], [`forward`], [`serve`]) proxies requests to the origins; the
//! HTTP/1.1 wire format (heads, chunked bodies, trailers) is the `reloadbench-http1` crate.
//! The lifecycle side replaces a running process without (or, for comparison, with)
//! losing requests:
//!
//! - [`listeners`]: bind listening sockets or match inherited ones to the config;
//! - [`fdpass`]: send and receive named listening sockets with `SCM_RIGHTS`;
//! - [`control`]: the unix control socket and its handoff protocol (old-process side);
//! - [`upgrade`]: the new-process side of a naive or fd-passing reload;
//! - [`master`]: the master-worker mode;
//! - [`instance`]: one serving process (plain, upgraded or worker) from ready to exit;
//! - [`tls`]: TLS termination, certificates and session-ticket keys;
//! - [`tunnel`]: upgraded connections (WebSockets) relayed as bytes, and their drain policy;
//! - [`signals`]: the signal table; [`phase`]: events on stdout and systemd notifications.
//!
//! [`run`] is the entry point used by the `refproxy` binary.

pub mod cli;
pub mod config;
pub mod control;
mod deadline;
pub mod error;
pub mod fdpass;
pub mod forward;
pub mod instance;
pub mod listeners;
pub mod master;
pub mod phase;
pub mod pidfd;
pub mod serve;
pub mod signals;
pub mod tls;
pub mod tunnel;
pub mod upgrade;

mod run;

pub use run::run;
