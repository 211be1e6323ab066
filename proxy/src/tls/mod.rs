//! TLS termination: the rustls server config of a process (TLS 1.2 and 1.3, ALPN
//! `http/1.1`, or `h2` then `http/1.1` with `http2 = true`, the `ring` provider), its
//! session-ticket keys ([`tickets`]) and the certificate checks of the config ([`certs`]).
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

/// Key exchange groups, X25519 first, then P-256 and P-384: the order nginx and HAProxy
/// (OpenSSL) and every browser use. rustls's ring provider lists P-384 first. rustls 0.23
/// picks the first group of the *client's* list that the server supports, so this order
/// decides only when a future rustls honours the server's preference; a client that lists
/// P-384 first (a rustls client on the ring default) still gets P-384.
const KX_GROUPS: [&dyn rustls::crypto::SupportedKxGroup; 3] = [
    rustls::crypto::ring::kx_group::X25519,
    rustls::crypto::ring::kx_group::SECP256R1,
    rustls::crypto::ring::kx_group::SECP384R1,
];

/// The `ring` crypto provider (rustls 0.23.48 deprecates it only because it has no
/// post-quantum key exchange; refproxy uses it as the issue asks, see the README), with
/// [`KX_GROUPS`].
#[allow(deprecated)]
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = KX_GROUPS.to_vec();
    provider
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

    /// The same, offering ALPN `h2` before `http/1.1` (refproxy's `http2 = true`).
    pub fn offering_h2(self) -> Terminator {
        let mut server = rustls::ServerConfig::clone(self.acceptor.config());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Terminator {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            ..self
        }
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

#[cfg(test)]
mod kx_tests {
    use std::sync::Arc;

    use rustls::NamedGroup;
    use rustls::crypto::ring::kx_group;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    use super::provider;

    #[test]
    fn the_server_offers_x25519_then_p256_then_p384() {
        let names: Vec<NamedGroup> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            names,
            [
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
    }

    /// Completes a TLS 1.3 handshake in memory between refproxy's provider and a client
    /// offering `client_groups` (in that order); the group negotiated.
    fn negotiated(client_groups: &[&'static dyn rustls::crypto::SupportedKxGroup]) -> NamedGroup {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = CertificateDer::from(made.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        #[allow(deprecated)]
        let mut client_provider = rustls::crypto::ring::default_provider();
        client_provider.kx_groups = client_groups.to_vec();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(client_provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut c = rustls::ClientConnection::new(
            Arc::new(client),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut s = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        let mut buf = Vec::new();
        for _ in 0..10 {
            if !c.is_handshaking() && !s.is_handshaking() {
                break;
            }
            buf.clear();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut r = &buf[..];
            while !r.is_empty() {
                s.read_tls(&mut r).unwrap();
            }
            s.process_new_packets().unwrap();
            buf.clear();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut r = &buf[..];
            while !r.is_empty() {
                c.read_tls(&mut r).unwrap();
            }
            c.process_new_packets().unwrap();
        }
        assert!(!s.is_handshaking());
        s.negotiated_key_exchange_group().unwrap().name()
    }

    #[test]
    fn a_client_offering_x25519_first_gets_x25519_and_rustls_follows_the_clients_order() {
        let browser = [kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
        assert_eq!(negotiated(&browser), NamedGroup::X25519);
        // rustls 0.23 picks by the client's order, whatever the server's: a client that
        // lists P-384 first (rustls's ring default) gets it (see KX_GROUPS).
        let ring_default = [kx_group::SECP384R1, kx_group::X25519, kx_group::SECP256R1];
        assert_eq!(negotiated(&ring_default), NamedGroup::secp384r1);
    }
}
