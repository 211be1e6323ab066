//! The TLS settings of an `https://` run ([`TlsOptions`]) and the one rustls
//! client configuration built from them, shared by every connection of the
//! run (ring provider, ALPN `http/1.1`, SNI from the URL host, one session
//! store, see [`store`]).

mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::kx_group;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::LoadError;

/// A TLS protocol version to offer (`--tls-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// Parses `1.2` or `1.3`.
    pub fn from_key(key: &str) -> Option<TlsVersion> {
        match key {
            "1.2" => Some(TlsVersion::Tls12),
            "1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

/// How an `https://` run speaks TLS (ignored for `http://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA certificates the server's certificate must chain
    /// to (`--cacert`). Required unless [`TlsOptions::insecure`].
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (`--insecure`): no verification at all.
    pub insecure: bool,
    /// The one version to offer (`--tls-version`); `None`: TLS 1.2 and 1.3.
    pub version: Option<TlsVersion>,
    /// Resume sessions (TLS 1.3 tickets, TLS 1.2 session ids and tickets)
    /// from one session store shared by all connections of the run, as a
    /// browser or an HTTP client library does; off with `--no-resume`.
    pub resume: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_file: None,
            insecure: false,
            version: None,
            resume: true,
        }
    }
}

/// The rustls configuration of a run to `concurrency` connections at once.
pub(crate) fn client_config(
    options: &TlsOptions,
    concurrency: u64,
) -> Result<Arc<ClientConfig>, LoadError> {
    let provider = Arc::new(provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match options.version {
        None => rustls::DEFAULT_VERSIONS,
        Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| LoadError::Tls {
            reason: e.to_string(),
        })?;
    let mut config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        let Some(path) = &options.ca_file else {
            return Err(LoadError::InvalidConfig {
                field: "tls.ca_file",
                reason: "an https:// URL needs a CA file (--cacert FILE) or --insecure".to_owned(),
            });
        };
        builder
            .with_root_certificates(roots(path)?)
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = if options.resume {
        rustls::client::Resumption::store(Arc::new(store::SessionStore::new(concurrency)))
    } else {
        rustls::client::Resumption::disabled()
    };
    Ok(Arc::new(config))
}

/// Key exchange groups in the order real clients offer them (browsers,
/// curl and Go: X25519 first).
const KX_GROUPS: [&dyn SupportedKxGroup; 3] =
    [kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];

/// rustls's ring provider (as #12 asks; deprecated in rustls 0.23.48 only
/// because ring has no post-quantum key exchange), offering [`KX_GROUPS`].
///
/// Its own default puts P-384 first, which a server that follows the
/// client's order (nginx, OpenSSL) then uses: measured against nginx, that
/// cost the server 1.8 ms of CPU per handshake instead of 0.36 ms, and
/// loadgen a fifth of the handshakes per second a real client makes.
fn provider() -> CryptoProvider {
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = KX_GROUPS.to_vec();
    provider
}

/// The name the server is asked for and verified against: a DNS name (sent
/// as SNI) or an IP address (no SNI, as rustls does).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, LoadError> {
    ServerName::try_from(host.to_owned()).map_err(|e| LoadError::InvalidUrl {
        url: host.to_owned(),
        reason: format!("not a TLS server name: {e}"),
    })
}

/// The CA certificates of the PEM file at `path`.
fn roots(path: &Path) -> Result<RootCertStore, LoadError> {
    let bad = |reason: String| LoadError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no CERTIFICATE in it".to_owned()));
    }
    Ok(roots)
}

/// `--insecure`: accepts any certificate, but still checks the handshake
/// signatures (so the handshake costs what a verified one does, less the chain).
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x25519_is_offered_first() {
        let names: Vec<_> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            names,
            [
                rustls::NamedGroup::X25519,
                rustls::NamedGroup::secp256r1,
                rustls::NamedGroup::secp384r1
            ]
        );
    }
}
