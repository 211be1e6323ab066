//! The one translation of a case's [`LoadSpec`] into loadgen's
//! [`LoadConfig`], shared by scenario validation (which runs loadgen's own
//! [`LoadConfig::check`] on it, so `validate` enforces every limit the load
//! generator enforces) and the orchestrator (which starts it).

use std::net::SocketAddr;
use std::path::Path;

use reloadbench_loadgen::{LoadConfig, LoadError, TlsOptions, WsOptions};

use super::{ExternalProxy, LoadSpec};

impl LoadSpec {
    /// The loadgen configuration of this load against `addr`; a TLS load
    /// verifies the server's certificate against the CA file `ca`.
    pub(crate) fn loadgen_config(
        &self,
        addr: SocketAddr,
        ca: Option<&Path>,
    ) -> Result<LoadConfig, LoadError> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.config_for(&format!("{scheme}://{addr}{}", self.path), ca, false)
    }

    /// The loadgen configuration of this load against an external server's
    /// target, as written (its host name is the TLS server name and the
    /// `Host` header), with the target's path or `[load] path` (validation
    /// made them agree). The load connects to `addr`, the address the run
    /// checked, and never resolves the host again.
    pub(crate) fn external_loadgen_config(
        &self,
        x: &ExternalProxy,
        addr: SocketAddr,
    ) -> Result<LoadConfig, LoadError> {
        let t = &x.target;
        let scheme = if t.tls { "https" } else { "http" };
        let host = if t.host.contains(':') {
            format!("[{}]", t.host)
        } else {
            t.host.clone()
        };
        let url = format!("{scheme}://{host}:{}{}", t.port, self.path);
        let mut c = self.config_for(&url, x.ca_file.as_deref(), x.insecure)?;
        c.connect_to = Some(addr);
        Ok(c)
    }

    fn config_for(
        &self,
        url: &str,
        ca: Option<&Path>,
        insecure: bool,
    ) -> Result<LoadConfig, LoadError> {
        let mut c = LoadConfig::new(url)?;
        if let Some(t) = &self.tls {
            c.tls = TlsOptions {
                ca_file: ca.map(Path::to_owned),
                insecure,
                version: t.version,
                resume: t.resume,
            };
        }
        c.concurrency = self.concurrency;
        c.requests = self.requests;
        c.duration = self.duration;
        c.rate = self.rate;
        c.keep_alive = self.keep_alive;
        c.timeout = self.timeout;
        c.bucket = self.bucket;
        c.method.clone_from(&self.method);
        c.headers.clone_from(&self.headers);
        c.body.clone_from(&self.body);
        c.content_type.clone_from(&self.content_type);
        c.mix.clone_from(&self.mix);
        c.think_time = self.think_time;
        c.retry = self.retry;
        if let Some(h) = self.http2 {
            c.h2 = true;
            c.streams = h.streams;
            c.retry_refused = h.retry_refused;
        }
        match self.kind {
            super::LoadKind::Requests => {}
            super::LoadKind::Stream => c.stream = true,
            super::LoadKind::WebSocket(w) => {
                c.ws = Some(WsOptions {
                    message_interval: w.message_interval,
                    message_bytes: usize::try_from(w.message_bytes).unwrap_or(usize::MAX),
                    message_timeout: w.message_timeout,
                    reconnect_delay: w.reconnect_delay,
                });
            }
        }
        // The ledger matches failed requests to the origin's answers by id.
        c.request_ids = true;
        Ok(c)
    }

    /// Runs loadgen's checks on this load (against a placeholder address:
    /// nothing is resolved or connected).
    pub(crate) fn check_loadgen(&self) -> Result<(), LoadError> {
        self.loadgen_config(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            Some(Path::new("ca.pem")),
        )?
        .check()
    }
}
