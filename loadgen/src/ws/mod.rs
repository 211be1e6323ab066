//! `--ws`: long-lived WebSocket clients (RFC 6455, on tokio-tungstenite).
//!
//! Each of the run's clients holds one connection to the target for the
//! whole run (`-t`), sends a binary message of [`WsOptions::message_bytes`]
//! every [`WsOptions::message_interval`] and expects its echo. A connection
//! that ends is reopened after [`WsOptions::reconnect_delay`], as a real
//! client would. Every connection attempt and every message gets exactly one
//! outcome ([`reloadbench_model::ws`]), recorded per worker in a
//! `record::WsRecorder` and merged into the report's
//! [`WsReport`](reloadbench_model::ws::WsReport).
//!
//! `ws://` URLs are given as `http://` (and `wss://` as `https://`, over
//! loadgen's TLS client); the handshake, its timeout and its failure classes
//! are those of a request's connect (`client`).
//!
//! With `--h2` each WebSocket is an HTTP/2 extended CONNECT stream (RFC 8441)
//! on its own connection instead of an HTTP/1.1 upgrade (`over_h2`); the
//! session and its counting are the same.

mod client;
pub(crate) mod over_h2;
pub(crate) mod record;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::client::{ClientCtx, TlsConn};
use crate::error::LoadError;
use crate::record::Recorder;
use crate::run::Shared;
use crate::target::UrlParts;

/// Bytes of a message that carry its sequence number (the rest is padding).
pub(crate) const SEQ_BYTES: usize = 8;
/// The largest message a run sends.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// How a `--ws` run's clients talk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsOptions {
    /// Pause between two messages of a connection (`--message-interval`, default 100 ms).
    pub message_interval: Duration,
    /// Size of each binary message (`--message-bytes`, default 64, at least 8).
    pub message_bytes: usize,
    /// An echo not back within this makes the message late (`--message-timeout`, default 1 s).
    pub message_timeout: Duration,
    /// Pause between a connection's end and the next attempt (`--reconnect-delay`, default 0).
    pub reconnect_delay: Duration,
}

impl Default for WsOptions {
    fn default() -> WsOptions {
        WsOptions {
            message_interval: Duration::from_millis(100),
            message_bytes: 64,
            message_timeout: Duration::from_secs(1),
            reconnect_delay: Duration::ZERO,
        }
    }
}

/// The WebSocket settings every client of a run shares.
#[derive(Debug)]
pub(crate) struct WsCtx {
    /// The options.
    pub(crate) options: WsOptions,
    /// The handshake's request URL (`ws://host[:port]/path`).
    pub(crate) url: String,
    /// Width of a time bucket, ns.
    pub(crate) bucket_ns: u64,
    /// `--h2`: WebSockets over HTTP/2 (`over_h2`); `None`: over HTTP/1.1.
    pub(crate) h2: Option<Arc<over_h2::OverH2>>,
}

impl WsCtx {
    /// Checks `options` for the target `url`.
    pub(crate) fn new(
        options: &WsOptions,
        url: &UrlParts,
        bucket: Duration,
    ) -> Result<WsCtx, LoadError> {
        let bad = |field: &'static str, reason: &str| LoadError::InvalidConfig {
            field,
            reason: reason.to_owned(),
        };
        if !(SEQ_BYTES..=MAX_MESSAGE_BYTES).contains(&options.message_bytes) {
            return Err(bad(
                "ws.message_bytes",
                &format!("must be {SEQ_BYTES}..={MAX_MESSAGE_BYTES}"),
            ));
        }
        if options.message_interval < Duration::from_millis(1) {
            return Err(bad("ws.message_interval", "must be at least 1ms"));
        }
        if options.message_timeout.is_zero() {
            return Err(bad("ws.message_timeout", "must be more than 0"));
        }
        Ok(WsCtx {
            options: options.clone(),
            url: format!("ws://{}{}", url.host_header, url.path),
            bucket_ns: (bucket.as_nanos() as u64).max(1),
            h2: None,
        })
    }
}

/// The settings a `--ws` run cannot have: a request rate, a request mix, a
/// streamed response.
pub(crate) fn check(_ws: &WsOptions, config: &crate::LoadConfig) -> Result<(), LoadError> {
    over_h2::check(config)?;
    let reason = if config.rate.is_some() {
        "not with a request rate"
    } else if !config.mix.is_empty() {
        "not with a request mix"
    } else if config.stream {
        "not with stream"
    } else {
        return Ok(());
    };
    Err(LoadError::InvalidConfig {
        field: "ws",
        reason: reason.to_owned(),
    })
}

/// Spawns WebSocket client `id` on the current `LocalSet`, over TLS for an
/// `https://` target, over HTTP/2 with `--h2`.
pub(crate) fn run_for(
    id: u64,
    shared: Arc<Shared>,
    ctx: Arc<ClientCtx>,
    rec: Rc<RefCell<Recorder>>,
) -> tokio::task::JoinHandle<()> {
    let h2 = ctx.ws.as_ref().is_some_and(|w| w.h2.is_some());
    if h2 && ctx.tls.is_some() {
        type Over = over_h2::ExtendedConnect<TlsConn>;
        tokio::task::spawn_local(client::run::<Over>(id, shared, ctx, rec))
    } else if h2 {
        type Over = over_h2::ExtendedConnect<TcpStream>;
        tokio::task::spawn_local(client::run::<Over>(id, shared, ctx, rec))
    } else if ctx.tls.is_some() {
        tokio::task::spawn_local(client::run::<TlsConn>(id, shared, ctx, rec))
    } else {
        tokio::task::spawn_local(client::run::<TcpStream>(id, shared, ctx, rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadConfig;

    #[test]
    fn settings_are_checked_up_front() {
        let mut c = LoadConfig::new("http://127.0.0.1:1/ws").unwrap();
        c.ws = Some(WsOptions::default());
        assert!(c.check().is_ok());
        let refused = |f: &dyn Fn(&mut LoadConfig)| {
            let mut c = c.clone();
            f(&mut c);
            c.check().unwrap_err().to_string()
        };
        let e = refused(&|c| c.ws.as_mut().unwrap().message_bytes = 7);
        assert!(e.contains("ws.message_bytes"), "{e}");
        let e = refused(&|c| c.ws.as_mut().unwrap().message_interval = Duration::ZERO);
        assert!(e.contains("ws.message_interval"), "{e}");
        let e = refused(&|c| c.ws.as_mut().unwrap().message_timeout = Duration::ZERO);
        assert!(e.contains("ws.message_timeout"), "{e}");
        let e = refused(&|c| c.rate = Some(10.0));
        assert!(e.contains("not with a request rate"), "{e}");
        let e = refused(&|c| c.stream = true);
        assert!(e.contains("not with stream"), "{e}");
    }
}
