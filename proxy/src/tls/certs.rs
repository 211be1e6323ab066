//! Loading and checking a certificate chain and its private key (PEM files): readable,
//! parseable, the key matching the first certificate, the certificate valid now.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a certificate or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no PEM certificate, or a malformed one.
    #[error("{}: no usable PEM certificate: {reason}", path.display())]
    NoCert {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no PEM private key, or a malformed or unsupported one.
    #[error("{}: no usable PEM private key: {reason}", path.display())]
    NoKey {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("the private key does not match the certificate")]
    Mismatch,
    /// The certificate's validity could not be read.
    #[error("cannot read the certificate's validity: {0}")]
    Validity(&'static str),
    /// The certificate expired.
    #[error("the certificate expired {0} s ago (notAfter)")]
    Expired(u64),
    /// The certificate is not valid yet.
    #[error("the certificate is not valid for another {0} s (notBefore)")]
    NotYetValid(u64),
}

/// A certificate chain and its key, checked.
#[derive(PartialEq, Eq)]
pub struct CertAndKey {
    /// The chain, end-entity certificate first (DER).
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (DER).
    pub key: PrivateKeyDer<'static>,
}

impl Clone for CertAndKey {
    fn clone(&self) -> CertAndKey {
        CertAndKey {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The largest certificate or key file read (a chain of a few certificates is a
/// few KiB): more is refused as unreadable, so `/dev/zero` cannot fill the memory.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Reads a PEM file: a regular file of at most [`MAX_PEM_BYTES`] (a FIFO would block
/// a reloading master).
fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    use std::io::Read as _;
    let failed = |source| CertError::Read {
        path: path.to_path_buf(),
        source,
    };
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
    let meta = std::fs::metadata(path).map_err(failed)?;
    if !meta.is_file() {
        return Err(failed(invalid("not a regular file")));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(failed(invalid("larger than 1 MiB")));
    }
    Ok(bytes)
}

/// Reads the certificate chain at `cert`, checked to be valid now.
pub fn load_chain(cert: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = read(cert)?;
    let no_cert = |reason: String| CertError::NoCert {
        path: cert.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_cert(e.to_string()))?;
    let first = chain
        .first()
        .ok_or_else(|| no_cert("no CERTIFICATE block".to_owned()))?;
    check_validity(first, unix_now())?;
    Ok(chain)
}

/// Reads the private key at `key`.
pub fn load_key(key: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = read(key)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| CertError::NoKey {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Checks that `key` can sign (a supported type) and is the key of `chain`'s first
/// certificate.
pub fn check_pair(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    key_path: &Path,
) -> Result<(), CertError> {
    let provider = super::provider();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| CertError::NoKey {
            path: key_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    match CertifiedKey::new(chain.to_vec(), signing).keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(CertError::Mismatch)
        }
        // The provider cannot tell (no public key for this key type): rustls accepts it too.
        Err(rustls::Error::InconsistentKeys(_)) => Ok(()),
        Err(_) => Err(CertError::Validity("the certificate cannot be parsed")),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks `now` (unix seconds) against the certificate's notBefore and notAfter.
fn check_validity(cert: &CertificateDer<'_>, now: u64) -> Result<(), CertError> {
    let (not_before, not_after) = der::validity(cert.as_ref()).map_err(CertError::Validity)?;
    if now > not_after {
        return Err(CertError::Expired(now - not_after));
    }
    if now < not_before {
        return Err(CertError::NotYetValid(not_before - now));
    }
    Ok(())
}

/// Just enough DER to read an X.509 certificate's validity.
mod der {
    /// One TLV: (tag, contents, rest after it).
    fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
        let (&tag, rest) = input.split_first().ok_or("truncated")?;
        let (&first, rest) = rest.split_first().ok_or("truncated")?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("bad length");
            }
            let (bytes, rest) = rest.split_at(n);
            (
                bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
                rest,
            )
        };
        if rest.len() < len {
            return Err("truncated");
        }
        let (contents, rest) = rest.split_at(len);
        Ok((tag, contents, rest))
    }

    /// (notBefore, notAfter) of a DER certificate, in unix seconds.
    pub(super) fn validity(cert: &[u8]) -> Result<(u64, u64), &'static str> {
        let (_, certificate, _) = tlv(cert)?;
        let (_, mut tbs, _) = tlv(certificate)?;
        // [0] version (optional), serialNumber, signature, issuer, then validity.
        let (tag, _, rest) = tlv(tbs)?;
        if tag == 0xa0 {
            let (_, _, r) = tlv(rest)?;
            tbs = r;
        } else {
            tbs = rest;
        }
        let (_, _, rest) = tlv(tbs)?; // signature
        let (_, _, rest) = tlv(rest)?; // issuer
        let (tag, validity, _) = tlv(rest)?;
        if tag != 0x30 {
            return Err("no validity");
        }
        let (t1, before, rest) = tlv(validity)?;
        let (t2, after, _) = tlv(rest)?;
        Ok((time(t1, before)?, time(t2, after)?))
    }

    /// A UTCTime (tag 0x17, YYMMDDHHMMSSZ) or GeneralizedTime (0x18, YYYYMMDDHHMMSSZ).
    fn time(tag: u8, s: &[u8]) -> Result<u64, &'static str> {
        let digits = |r: std::ops::Range<usize>| -> Result<i64, &'static str> {
            let part = s.get(r).ok_or("bad time")?;
            std::str::from_utf8(part)
                .ok()
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or("bad time")
        };
        let (year, at) = match tag {
            0x17 => {
                let yy = digits(0..2)?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
            }
            0x18 => (digits(0..4)?, 4),
            _ => return Err("bad time tag"),
        };
        let month = digits(at..at + 2)?;
        let day = digits(at + 2..at + 4)?;
        let h = digits(at + 4..at + 6)?;
        let m = digits(at + 6..at + 8)?;
        let sec = digits(at + 8..at + 10)?;
        let days = days_from_civil(year, month, day);
        let t = days * 86400 + h * 3600 + m * 60 + sec;
        Ok(u64::try_from(t).unwrap_or(0))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn civil_days() {
            assert_eq!(super::days_from_civil(1970, 1, 1), 0);
            assert_eq!(super::days_from_civil(2000, 3, 1), 11_017);
            assert_eq!(super::time(0x17, b"991231235959Z").unwrap(), 946_684_799);
            assert_eq!(
                super::time(0x18, b"20380119031408Z").unwrap(),
                2_147_483_648
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn only_regular_files_of_at_most_a_mebibyte_are_read() {
        let e = load_chain(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("/dev/zero"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_PEM_BYTES + 1)
            .unwrap();
        assert!(load_chain(&big).is_err());
    }

    #[test]
    fn validity_is_read_and_checked() {
        let now = unix_now();
        let good = cert_with((2020, 1, 1), (2090, 1, 1));
        check_validity(&good, now).unwrap();
        let expired = cert_with((2020, 1, 1), (2021, 1, 1));
        assert!(matches!(
            check_validity(&expired, now),
            Err(CertError::Expired(_))
        ));
        let future = cert_with((2090, 1, 1), (2091, 1, 1));
        assert!(matches!(
            check_validity(&future, now),
            Err(CertError::NotYetValid(_))
        ));
        // The dates rcgen wrote are the ones read (2021-01-01T00:00:00Z).
        assert_eq!(der::validity(&expired).unwrap().1, 1_609_459_200);
    }
}
