//! The throwaway certificates of a TLS run: a CA made for the run and a
//! server certificate it signs for `127.0.0.1` and `localhost`, written into
//! the run directory. loadgen verifies against the CA; the system under test
//! serves the certificate (the reference proxy through its `[tls]`, peers
//! through `{cert}`, `{key}`, `{cert_pem_bundle}` and `{ca}`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};

/// The files of a run's certificates (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// Certificate then key in one PEM file (HAProxy's `crt`).
    pub bundle: PathBuf,
}

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PkiError {
    /// rcgen refused to make a key or certificate.
    #[error("cannot make the run's TLS certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Writes `bytes` to `path` readable by its owner only (mode 0600, also when the
/// file was there): a private key, or a ticket key file from which every
/// session key can be computed.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// Makes a CA and a server certificate in `dir` (created if needed, mode 0700),
/// every file readable by its owner only.
pub(crate) fn generate(dir: &Path) -> Result<TlsFiles, PkiError> {
    let write = |name: &str, text: &str| -> Result<PathBuf, PkiError> {
        let path = dir.join(name);
        write_private(&path, text.as_bytes()).map_err(|source| PkiError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let made = std::fs::create_dir_all(dir).and_then(|()| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    });
    made.map_err(|source| PkiError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name = name("reloadbench run CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    params.distinguished_name = name("localhost");
    let cert = params.signed_by(&key, &ca)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    Ok(TlsFiles {
        ca: write("ca.pem", &ca.pem())?,
        cert: write("server.pem", &cert_pem)?,
        key: write("server.key", &key_pem)?,
        bundle: write("server-bundle.pem", &format!("{cert_pem}{key_pem}"))?,
    })
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common);
    dn
}

/// Writes a random 80-byte session-ticket key file (nginx's
/// `ssl_session_ticket_key` format, refproxy's `tls.ticket_keys_file`).
pub(crate) fn write_ticket_keys(path: &Path) -> std::io::Result<()> {
    let mut key = [0u8; 80];
    let mut random = std::fs::File::open("/dev/urandom")?;
    std::io::Read::read_exact(&mut random, &mut key)?;
    write_private(path, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_ca_and_a_certificate_for_the_loopback_address() {
        let dir = tempfile::tempdir().unwrap();
        let f = generate(&dir.path().join("tls")).unwrap();
        let cert = std::fs::read_to_string(&f.cert).unwrap();
        let key = std::fs::read_to_string(&f.key).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        assert!(
            std::fs::read_to_string(&f.ca)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        assert_eq!(std::fs::read_to_string(&f.bundle).unwrap(), cert + &key);
        let keys = dir.path().join("ticket.key");
        write_ticket_keys(&keys).unwrap();
        assert_eq!(std::fs::metadata(&keys).unwrap().len(), 80);
        // Keys and key files are the owner's alone.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for p in [&f.key, &f.bundle, &keys] {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
        assert_eq!(mode(&dir.path().join("tls")), 0o700);
    }
}
