//! Session-ticket keys that live in memory, rotate on a schedule, and can be handed to
//! the next generation.
//!
//! Time is cut into periods of `tls.ticket_key_rotation` (period `e` = unix time / rotation).
//! Tickets made in period `e` are sealed with that period's key (AES-256-GCM, a random
//! 96-bit nonce, the period number in the clear as the key id and as associated data), and
//! are opened in period `e` and `e + 1` only: the previous key is kept for decryption, older
//! ones are erased.
//!
//! Where the keys come from:
//! - **in memory** (the default): a random 32-byte key for the current period, and every
//!   next period's key derived from the one before with HMAC-SHA256 (a one-way ratchet).
//!   Every process that holds the same state derives the same keys at the same time, so a
//!   generation handed the state ([`TicketState`], over the control socket or the master's
//!   socketpair) opens the tickets of the one before it. A key that is erased cannot be
//!   recomputed from the later ones.
//! - **a key file** (`tls.ticket_keys_file`, nginx's `ssl_session_ticket_key` format: 48 or
//!   80 bytes): period `e`'s key is HMAC-SHA256(file bytes, `e`). Any process that reads the
//!   file derives the same keys, across restarts too; whoever reads the file can compute
//!   every period's key.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Bytes of a ticket key.
const KEY_LEN: usize = 32;
/// Bytes of the period number at the start of a ticket.
const ID_LEN: usize = 8;
/// More ratchet steps than this at once (a state older than this many periods) start over
/// with a fresh random key instead.
const MAX_STEPS: u64 = 1 << 20;

/// The ticket-key state handed from one generation to the next: the current period, its
/// key and the previous period's key. Its `Debug` shows no key bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketState {
    /// The rotation period in seconds the periods are counted in.
    pub rotation_secs: u64,
    /// The current period number.
    pub period: u64,
    /// The current period's key.
    pub key: Vec<u8>,
    /// The previous period's key, if known.
    pub previous: Option<Vec<u8>>,
}

impl fmt::Debug for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketState")
            .field("rotation_secs", &self.rotation_secs)
            .field("period", &self.period)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Where the keys come from.
enum Source {
    /// A ratchet from a random key (see the module docs).
    Ratchet {
        period: u64,
        key: [u8; KEY_LEN],
        previous: Option<[u8; KEY_LEN]>,
    },
    /// Derived from the bytes of a key file.
    File(hmac::Key),
}

/// The ticket keys of a process: rustls's [`rustls::server::ProducesTickets`].
pub struct TicketKeys {
    rotation: u64,
    source: Mutex<Source>,
    rng: SystemRandom,
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKeys")
            .field("rotation_secs", &self.rotation)
            .finish_non_exhaustive()
    }
}

/// Why a key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// It could not be read.
    #[error("cannot read ticket key file: {0}")]
    Read(#[source] std::io::Error),
    /// It has the wrong size.
    #[error("ticket key file must hold 48 or 80 bytes (nginx's format), it holds {0}")]
    Size(usize),
}

/// The longest lifetime a TLS 1.3 ticket may announce (RFC 8446 §4.6.1): 7 days.
pub const MAX_TICKET_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// Reads and checks a ticket key file (48 or 80 bytes, as nginx's `ssl_session_ticket_key`).
/// At most 81 bytes are read, so `/dev/zero` or a huge file is refused by its size at once.
pub fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, KeyFileError> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).map_err(KeyFileError::Read)?;
    if !meta.is_file() {
        // A FIFO would block here (a reloading master with it).
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(KeyFileError::Read(e));
    }
    let file = std::fs::File::open(path).map_err(KeyFileError::Read)?;
    let mut bytes = Vec::with_capacity(81);
    file.take(81)
        .read_to_end(&mut bytes)
        .map_err(KeyFileError::Read)?;
    match bytes.len() {
        48 | 80 => Ok(bytes),
        n => Err(KeyFileError::Size(n)),
    }
}

/// The current unix time in seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The next key of the ratchet.
fn next_key(key: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        b"refproxy ticket key ratchet",
    );
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(mac.as_ref());
    out
}

/// Period `period`'s key derived from a key file's bytes.
fn file_key(file: &hmac::Key, period: u64) -> [u8; KEY_LEN] {
    let mut ctx = hmac::Context::with_key(file);
    ctx.update(b"refproxy ticket key period ");
    ctx.update(&period.to_be_bytes());
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

fn to_key(bytes: &[u8]) -> Option<[u8; KEY_LEN]> {
    bytes.try_into().ok()
}

impl TicketKeys {
    /// Fresh random keys rotated every `rotation` (at least 1 s).
    pub fn random(rotation: Duration) -> TicketKeys {
        let rotation = rotation.as_secs().max(1);
        let rng = SystemRandom::new();
        TicketKeys {
            source: Mutex::new(Self::fresh(&rng, rotation, unix_now())),
            rotation,
            rng,
        }
    }

    /// Keys derived from a key file's bytes.
    pub fn from_file(bytes: &[u8], rotation: Duration) -> TicketKeys {
        TicketKeys {
            rotation: rotation.as_secs().max(1),
            source: Mutex::new(Source::File(hmac::Key::new(hmac::HMAC_SHA256, bytes))),
            rng: SystemRandom::new(),
        }
    }

    /// Continues the ratchet of `state` (handed over by the previous generation). A state
    /// counted in another rotation period, or with a malformed key, is not used: fresh
    /// random keys are made instead (tickets of the previous generation will not resume),
    /// and `None` says so.
    pub fn adopt(state: &TicketState, rotation: Duration) -> Option<TicketKeys> {
        let rotation = rotation.as_secs().max(1);
        if state.rotation_secs != rotation {
            return None;
        }
        let key = to_key(&state.key)?;
        let previous = match &state.previous {
            Some(p) => Some(to_key(p)?),
            None => None,
        };
        Some(TicketKeys {
            rotation,
            source: Mutex::new(Source::Ratchet {
                period: state.period,
                key,
                previous,
            }),
            rng: SystemRandom::new(),
        })
    }

    fn fresh(rng: &SystemRandom, rotation: u64, now: u64) -> Source {
        let mut key = [0u8; KEY_LEN];
        // A failing system RNG leaves a zero key, which only the ticket seal could expose;
        // ring's SystemRandom fails only where no OS RNG exists at all.
        if rng.fill(&mut key).is_err() {
            tracing::error!("the system random generator failed: session tickets are off");
        }
        Source::Ratchet {
            period: now / rotation,
            key,
            previous: None,
        }
    }

    /// The rotation period.
    pub fn rotation(&self) -> Duration {
        Duration::from_secs(self.rotation)
    }

    /// The state to hand to the next generation (`None` for keys from a key file: the
    /// next generation reads the file itself).
    pub fn export(&self) -> Option<TicketState> {
        self.export_at(unix_now())
    }

    fn export_at(&self, now: u64) -> Option<TicketState> {
        let mut source = self.lock();
        self.advance(&mut source, now);
        match &*source {
            Source::Ratchet {
                period,
                key,
                previous,
            } => Some(TicketState {
                rotation_secs: self.rotation,
                period: *period,
                key: key.to_vec(),
                previous: previous.map(|p| p.to_vec()),
            }),
            Source::File(_) => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Source> {
        self.source
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the ratchet to the period of `now`.
    fn advance(&self, source: &mut Source, now: u64) {
        let target = now / self.rotation;
        if let Source::Ratchet {
            period,
            key,
            previous,
        } = source
        {
            if target <= *period {
                return;
            }
            if target - *period > MAX_STEPS {
                *source = Self::fresh(&self.rng, self.rotation, now);
                return;
            }
            while *period < target {
                *previous = Some(*key);
                *key = next_key(key);
                *period += 1;
            }
        }
    }

    /// The key of `period`, if it is the current or the previous one at `now`.
    fn key_for(&self, now: u64, period: u64) -> Option<[u8; KEY_LEN]> {
        let mut source = self.lock();
        self.advance(&mut source, now);
        let current = now / self.rotation;
        match &*source {
            Source::Ratchet {
                period: p,
                key,
                previous,
            } => {
                if period == *p {
                    Some(*key)
                } else if period.checked_add(1) == Some(*p) {
                    *previous
                } else {
                    None
                }
            }
            Source::File(file) => {
                // `period` comes from the client's ticket: any value.
                (period == current || period.checked_add(1) == Some(current))
                    .then(|| file_key(file, period))
            }
        }
    }

    /// The current period at `now` (the ratchet's, which never goes back).
    fn current_period(&self, now: u64) -> u64 {
        let mut source = self.lock();
        self.advance(&mut source, now);
        match &*source {
            Source::Ratchet { period, .. } => *period,
            Source::File(_) => now / self.rotation,
        }
    }

    /// Seals `plain` into a ticket with the current key at `now`.
    pub(crate) fn encrypt_at(&self, now: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let period = self.current_period(now);
        let key = self.key_for(now, period)?;
        let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let id = period.to_be_bytes();
        let mut out = Vec::with_capacity(ID_LEN + NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    /// Opens a ticket made in the current or the previous period at `now`.
    pub(crate) fn decrypt_at(&self, now: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        let id: [u8; ID_LEN] = ticket.get(..ID_LEN)?.try_into().ok()?;
        let nonce: [u8; NONCE_LEN] = ticket.get(ID_LEN..ID_LEN + NONCE_LEN)?.try_into().ok()?;
        let sealed = ticket.get(ID_LEN + NONCE_LEN..)?;
        let key = self.key_for(now, u64::from_be_bytes(id))?;
        let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
        let mut body = sealed.to_vec();
        let plain = opening
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id),
                &mut body,
            )
            .ok()?;
        let len = plain.len();
        body.truncate(len);
        Some(body)
    }
}

impl rustls::server::ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        true
    }

    /// A ticket stays valid at least one rotation period (it opens in its period and the next),
    /// at most the 7 days RFC 8446 §4.6.1 allows a TLS 1.3 ticket's lifetime.
    fn lifetime(&self) -> u32 {
        u32::try_from(self.rotation.min(MAX_TICKET_LIFETIME_SECS)).unwrap_or(u32::MAX)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.encrypt_at(unix_now(), plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.decrypt_at(unix_now(), cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_forged_key_id_is_refused_not_a_panic() {
        // The key id is the ticket's first bytes, chosen by the client.
        let mut forged = vec![0xff; ID_LEN];
        forged.extend_from_slice(&[0u8; 64]);
        let t0 = unix_now();
        let ratchet = TicketKeys::random(HOUR);
        assert!(ratchet.decrypt_at(t0, &forged).is_none());
        let file = TicketKeys::from_file(&[7u8; 80], HOUR);
        assert!(file.decrypt_at(t0, &forged).is_none());
    }

    #[test]
    fn the_announced_lifetime_is_at_most_seven_days() {
        use rustls::server::ProducesTickets;
        assert_eq!(TicketKeys::random(HOUR).lifetime(), 3600);
        let month = TicketKeys::random(Duration::from_secs(30 * 24 * 3600));
        assert_eq!(month.lifetime(), 604_800);
    }

    #[test]
    fn a_key_file_is_a_regular_file_read_no_further_than_its_largest_size() {
        let e = read_key_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, KeyFileError::Read(_)), "{e:?}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.key");
        std::fs::write(&big, [1u8; 4096]).unwrap();
        let e = read_key_file(&big).unwrap_err();
        assert!(matches!(e, KeyFileError::Size(81)), "{e:?}");
    }

    #[test]
    fn a_ticket_opens_in_its_period_and_the_next_only() {
        let keys = TicketKeys::random(HOUR);
        let t0 = unix_now();
        let ticket = keys.encrypt_at(t0, b"session").unwrap();
        assert_eq!(keys.decrypt_at(t0, &ticket).unwrap(), b"session");
        // After one rotation the previous key still opens it.
        assert_eq!(keys.decrypt_at(t0 + 3600, &ticket).unwrap(), b"session");
        // After two it is erased.
        assert!(keys.decrypt_at(t0 + 7200, &ticket).is_none());
        // A new ticket is sealed with the new key and opens.
        let fresh = keys.encrypt_at(t0 + 7200, b"again").unwrap();
        assert_eq!(keys.decrypt_at(t0 + 7200, &fresh).unwrap(), b"again");
        assert_ne!(fresh[..ID_LEN], ticket[..ID_LEN]);
    }

    #[test]
    fn an_adopted_state_opens_the_old_tickets_and_derives_the_same_next_keys() {
        let old = TicketKeys::random(HOUR);
        let t0 = unix_now();
        let ticket = old.encrypt_at(t0, b"s1").unwrap();
        let state = old.export_at(t0).unwrap();
        let new = TicketKeys::adopt(&state, HOUR).unwrap();
        assert_eq!(new.decrypt_at(t0, &ticket).unwrap(), b"s1");
        // Both rotate on their own, to the same keys.
        let later = old.encrypt_at(t0 + 3600, b"s2").unwrap();
        assert_eq!(new.decrypt_at(t0 + 3600, &later).unwrap(), b"s2");
        assert_eq!(new.decrypt_at(t0 + 3600, &ticket).unwrap(), b"s1");
        // Another rotation period, or another process's random keys: nothing opens.
        assert!(TicketKeys::adopt(&state, 2 * HOUR).is_none());
        assert!(TicketKeys::random(HOUR).decrypt_at(t0, &ticket).is_none());
    }

    #[test]
    fn tampered_or_short_tickets_do_not_open() {
        let keys = TicketKeys::random(HOUR);
        let t0 = unix_now();
        let mut ticket = keys.encrypt_at(t0, b"session").unwrap();
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert!(keys.decrypt_at(t0, &ticket).is_none());
        assert!(keys.decrypt_at(t0, &ticket[..5]).is_none());
        assert!(keys.decrypt_at(t0, b"").is_none());
    }

    #[test]
    fn keys_from_the_same_file_agree_and_rotate() {
        let bytes = [7u8; 80];
        let a = TicketKeys::from_file(&bytes, HOUR);
        let b = TicketKeys::from_file(&bytes, HOUR);
        let t0 = unix_now();
        let ticket = a.encrypt_at(t0, b"s").unwrap();
        assert_eq!(b.decrypt_at(t0 + 3600, &ticket).unwrap(), b"s");
        assert!(b.decrypt_at(t0 + 7200, &ticket).is_none());
        assert!(a.export().is_none());
        assert!(
            TicketKeys::from_file(&[8u8; 48], HOUR)
                .decrypt_at(t0, &ticket)
                .is_none()
        );
    }

    #[test]
    fn the_state_debug_shows_no_key() {
        let state = TicketKeys::random(HOUR).export().unwrap();
        let shown = format!("{state:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&format!("{:?}", state.key)));
    }
}
