//! TLS termination: the rustls server config of a process (TLS 1.2 and 1.3, ALPN
//! `http/1.1`, the `ring` provider), its session-ticket keys ([`tickets`]) and the
//! certificate checks of the config ([`certs`]).
//!
//! One [`Terminator`] is made per serving process and shared by its serving threads: the
//! TLS 1.2 session-id cache (rustls's in-memory cache) is therefore the process's, and
//! resumes within one generation only; tickets resume across generations that share their
//! keys (see [`tickets`]).

pub mod certs;
mod sni;
pub mod tickets;

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
pub use tickets::{TicketKeys, TicketState};

/// Sessions kept in the TLS 1.2 session-id cache of a process.
const SESSION_CACHE: usize = 20_000;

/// The `ring` crypto provider (rustls 0.23.48 deprecates it only because it has no
/// post-quantum key exchange; refproxy uses it as the issue asks, see the README).
#[allow(deprecated)]
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsSetupError(#[source] rustls::Error);

/// The TLS side of a serving process: the acceptor, the handshake timeout and which
/// listeners (by index in the config's `listen`) terminate TLS.
#[derive(Clone)]
pub struct Terminator {
    /// The acceptor (rustls server config).
    pub acceptor: TlsAcceptor,
    /// `tls.handshake_timeout`.
    pub handshake_timeout: Duration,
    /// For each listener in config order: whether it terminates TLS.
    pub on_listener: Vec<bool>,
}

impl std::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminator")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("on_listener", &self.on_listener)
            .finish_non_exhaustive()
    }
}

impl Terminator {
    /// The TLS side for `cfg` (checked at config load), sealing tickets with `keys`.
    pub fn new(
        cfg: &TlsConfig,
        listeners: usize,
        keys: Arc<TicketKeys>,
    ) -> Result<Terminator, TlsSetupError> {
        let provider = Arc::new(provider());
        let certified = |c: &certs::CertAndKey| {
            rustls::sign::CertifiedKey::from_der(c.chain.clone(), c.key.clone_key(), &provider)
                .map(Arc::new)
                .map_err(TlsSetupError)
        };
        let resolver = sni::SniResolver {
            default: certified(&cfg.cert)?,
            by_name: cfg
                .sni
                .iter()
                .map(|s| Ok((s.names.clone(), certified(&s.cert)?)))
                .collect::<Result<Vec<_>, TlsSetupError>>()?
                .into_iter()
                .flat_map(|(names, c)| names.into_iter().map(move |n| (n, c.clone())))
                .collect(),
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsSetupError)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        server.ticketer = keys;
        server.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
        let on_listener = (0..listeners)
            .map(|i| cfg.listeners.as_ref().is_none_or(|l| l.contains(&i)))
            .collect();
        Ok(Terminator {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            handshake_timeout: cfg.handshake_timeout,
            on_listener,
        })
    }

    /// The ticket keys a process starts with: from the key file if the config names one,
    /// else the state the previous generation handed over (when `share_ticket_keys`), else
    /// fresh random keys.
    pub fn ticket_keys(cfg: &TlsConfig, handed: Option<&TicketState>) -> TicketKeys {
        if let Some(bytes) = &cfg.ticket_keys_file {
            return TicketKeys::from_file(&bytes.0, cfg.ticket_key_rotation);
        }
        match handed.filter(|_| cfg.share_ticket_keys) {
            Some(state) => TicketKeys::adopt(state, cfg.ticket_key_rotation).unwrap_or_else(|| {
                tracing::info!(
                    "tls.ticket_key_rotation changed: new ticket keys, tickets of the previous generation do not resume"
                );
                TicketKeys::random(cfg.ticket_key_rotation)
            }),
            None => TicketKeys::random(cfg.ticket_key_rotation),
        }
    }
}
