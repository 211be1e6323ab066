//! Session-ticket keys that live in memory, rotate on a schedule to fresh random keys, and
//! are handed to the next generation.
//!
//! A process holds a current key and the previous one (each 32 random bytes with a random
//! 8-byte id). Tickets are sealed with the current key (AES-256-GCM, a random 96-bit nonce,
//! the key id in the clear as the ticket's first bytes and as associated data) and opened
//! with the current or the previous key: a ticket made before a rotation still resumes
//! after it, not after two.
//!
//! Every key is drawn from the system random generator: nothing derives the next key from
//! an earlier one, so whoever reads a process's memory learns its current and previous keys
//! but not its future ones. Processes agree because the keys are handed over:
//! - **master-worker**: the master alone rotates (a timer every `tls.ticket_key_rotation`,
//!   deferred while a reload runs) and pushes the new set to every worker over its
//!   socketpair ([`crate::control::protocol::Message::TicketKeys`]); a worker never rotates
//!   on its own ([`Schedule::Pushed`]). A new worker gets the current set in its `Welcome`.
//! - **fd-pass**: the serving process rotates on its own schedule ([`Schedule::Own`],
//!   checked at each ticket sealed or opened) and hands current + previous + the time of the
//!   last rotation to its successor. Rotation is held while a handoff runs (from the
//!   `Welcome` until the successor confirms it accepts, or the handoff fails), so that the
//!   two processes, which both accept for a moment, use the same keys; a process that was
//!   taken over never rotates again.
//! - **a key file** (`tls.ticket_keys_file`, 48 or 80 bytes as nginx's
//!   `ssl_session_ticket_key`): one fixed key (and id) from the file's bytes, never rotated,
//!   as nginx does with its key files: rotating means writing a new file and reloading.
//!
//! Key bytes are overwritten with zeros when dropped (the `zeroize` crate), in the keys of
//! a process and in the [`TicketState`] handed over.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Bytes of a ticket key.
const KEY_LEN: usize = 32;
/// Bytes of the key id at the start of a ticket.
const ID_LEN: usize = 8;

/// One key as handed over: its id and its bytes (zeroed when dropped). Its `Debug` shows
/// no key bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedKey {
    /// The key id (the first bytes of every ticket sealed with it).
    pub id: u64,
    /// The key bytes.
    pub key: Vec<u8>,
}

impl Drop for HandedKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for HandedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandedKey")
            .field("id", &format_args!("{:016x}", self.id))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The ticket keys handed from one process to another: the current key, the previous one,
/// and the schedule. Its `Debug` shows no key bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketState {
    /// The rotation period in seconds.
    pub rotation_secs: u64,
    /// Unix time (seconds) of the last rotation: the next is due one period later.
    pub rotated_at: u64,
    /// Whether the receiver rotates on its own schedule (an fd-pass successor) or waits for
    /// the sender to push the next keys (a master's worker).
    pub self_rotating: bool,
    /// The key that seals tickets.
    pub current: HandedKey,
    /// The previous key, still opening tickets.
    pub previous: Option<HandedKey>,
}

/// Who rotates a process's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// The process itself, every rotation period.
    Own,
    /// Someone else, by [`TicketKeys::rotate_at`] (a master) or [`TicketKeys::install`]
    /// (a master's worker).
    Pushed,
    /// Nobody: keys from a key file.
    Fixed,
}

/// One key in memory: zeroed when dropped.
struct Key {
    id: [u8; ID_LEN],
    bytes: [u8; KEY_LEN],
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl Key {
    fn random(rng: &SystemRandom) -> Key {
        let mut key = Key {
            id: [0; ID_LEN],
            bytes: [0; KEY_LEN],
        };
        // A failing system RNG leaves zero bytes; ring's SystemRandom fails only where no
        // OS random generator exists at all.
        if rng.fill(&mut key.bytes).is_err() || rng.fill(&mut key.id).is_err() {
            tracing::error!("the system random generator failed: ticket key not random");
        }
        key
    }

    fn handed(&self) -> HandedKey {
        HandedKey {
            id: u64::from_be_bytes(self.id),
            key: self.bytes.to_vec(),
        }
    }

    fn from_handed(h: &HandedKey) -> Option<Key> {
        Some(Key {
            id: h.id.to_be_bytes(),
            bytes: h.key.as_slice().try_into().ok()?,
        })
    }
}

/// The keys of a process and their schedule.
struct Set {
    current: Key,
    previous: Option<Key>,
    rotated_at: u64,
    schedule: Schedule,
    /// Rotation held (a handoff runs, or this process was taken over).
    held: bool,
}

/// The ticket keys of a process: rustls's [`rustls::server::ProducesTickets`].
pub struct TicketKeys {
    rotation: u64,
    set: Mutex<Set>,
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
        n => {
            bytes.zeroize();
            Err(KeyFileError::Size(n))
        }
    }
}

/// The current unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `label`'s 32 bytes derived from a key file's bytes (fixed: no period or counter).
fn file_derived(file: &[u8], label: &[u8]) -> [u8; KEY_LEN] {
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, file), label);
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(mac.as_ref());
    out
}

impl TicketKeys {
    fn with(rotation: Duration, set: Set) -> TicketKeys {
        TicketKeys {
            rotation: rotation.as_secs().max(1),
            set: Mutex::new(set),
            rng: SystemRandom::new(),
        }
    }

    /// Fresh random keys that rotate on their own every `rotation` (at least 1 s).
    pub fn random(rotation: Duration) -> TicketKeys {
        Self::random_at(rotation, unix_now(), Schedule::Own)
    }

    /// Fresh random keys rotated only by [`TicketKeys::rotate_at`]: a master's.
    pub fn for_master(rotation: Duration) -> TicketKeys {
        Self::random_at(rotation, unix_now(), Schedule::Pushed)
    }

    fn random_at(rotation: Duration, now: u64, schedule: Schedule) -> TicketKeys {
        let rng = SystemRandom::new();
        let set = Set {
            current: Key::random(&rng),
            previous: None,
            rotated_at: now,
            schedule,
            held: false,
        };
        Self::with(rotation, set)
    }

    /// One fixed key from a key file's bytes (see the module docs): never rotated.
    pub fn from_file(bytes: &[u8], rotation: Duration) -> TicketKeys {
        let mut id_bytes = file_derived(bytes, b"refproxy ticket key id");
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&id_bytes[..ID_LEN]);
        id_bytes.zeroize();
        let set = Set {
            current: Key {
                id,
                bytes: file_derived(bytes, b"refproxy ticket key"),
            },
            previous: None,
            rotated_at: unix_now(),
            schedule: Schedule::Fixed,
            held: false,
        };
        Self::with(rotation, set)
    }

    /// The keys handed over in `state`. A state counted in another rotation period, or with
    /// a malformed key, is not used (`None`: the caller makes fresh keys, and tickets of
    /// the previous generation will not resume). A self-rotating state (an fd-pass
    /// successor's) starts held: call [`TicketKeys::resume`] once the takeover is confirmed.
    pub fn adopt(state: &TicketState, rotation: Duration) -> Option<TicketKeys> {
        if state.rotation_secs != rotation.as_secs().max(1) {
            return None;
        }
        let previous = match &state.previous {
            Some(p) => Some(Key::from_handed(p)?),
            None => None,
        };
        let set = Set {
            current: Key::from_handed(&state.current)?,
            previous,
            rotated_at: state.rotated_at,
            schedule: if state.self_rotating {
                Schedule::Own
            } else {
                Schedule::Pushed
            },
            held: state.self_rotating,
        };
        Some(Self::with(rotation, set))
    }

    /// The rotation period.
    pub fn rotation(&self) -> Duration {
        Duration::from_secs(self.rotation)
    }

    /// Who rotates these keys.
    pub fn schedule(&self) -> Schedule {
        self.lock().schedule
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Set> {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The keys to hand to another process (`None` for keys from a key file: the next
    /// generation reads the file itself). Keys that rotate on their own hand over a
    /// self-rotating state; a master's keys a pushed one.
    pub fn export(&self) -> Option<TicketState> {
        self.export_at(unix_now())
    }

    fn export_at(&self, now: u64) -> Option<TicketState> {
        let mut set = self.lock();
        self.tick(&mut set, now);
        (set.schedule != Schedule::Fixed).then(|| TicketState {
            rotation_secs: self.rotation,
            rotated_at: set.rotated_at,
            self_rotating: set.schedule == Schedule::Own,
            current: set.current.handed(),
            previous: set.previous.as_ref().map(Key::handed),
        })
    }

    /// Replaces the keys with the ones pushed in `state` (a master's worker); false (and
    /// nothing changed) for a malformed state or keys that are not [`Schedule::Pushed`].
    pub fn install(&self, state: &TicketState) -> bool {
        let Some(current) = Key::from_handed(&state.current) else {
            return false;
        };
        let previous = match &state.previous {
            Some(p) => match Key::from_handed(p) {
                Some(k) => Some(k),
                None => return false,
            },
            None => None,
        };
        let mut set = self.lock();
        if set.schedule != Schedule::Pushed {
            return false;
        }
        set.current = current;
        set.previous = previous;
        set.rotated_at = state.rotated_at;
        true
    }

    /// Rotates now: a fresh random current key, the current one kept as the previous
    /// (a master's timer). Keys from a key file do not rotate.
    pub fn rotate_at(&self, now: u64) {
        let mut set = self.lock();
        if set.schedule != Schedule::Fixed {
            self.rotate(&mut set, now);
        }
    }

    fn rotate(&self, set: &mut Set, now: u64) {
        let fresh = Key::random(&self.rng);
        set.previous = Some(std::mem::replace(&mut set.current, fresh));
        set.rotated_at = now;
    }

    /// Unix time at which the next rotation is due.
    pub fn due_at(&self) -> u64 {
        self.lock().rotated_at.saturating_add(self.rotation)
    }

    /// Holds rotation (a handoff runs, or this process was taken over).
    pub fn hold(&self) {
        self.lock().held = true;
    }

    /// Lets the keys rotate on their schedule again (a handoff failed, or the successor
    /// confirmed it accepts).
    pub fn resume(&self) {
        self.lock().held = false;
    }

    /// Rotates self-rotating keys that are due at `now`: once per period passed; after two
    /// or more, both keys are fresh (the old ones are too old to open anything).
    fn tick(&self, set: &mut Set, now: u64) {
        if set.schedule != Schedule::Own || set.held || now < set.rotated_at + self.rotation {
            return;
        }
        let periods = (now - set.rotated_at) / self.rotation;
        let at = set.rotated_at + periods * self.rotation;
        self.rotate(set, at);
        if periods >= 2 {
            set.previous = None;
        }
    }

    /// Seals `plain` into a ticket with the current key at `now`.
    pub(crate) fn encrypt_at(&self, now: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let (id, sealing) = {
            let mut set = self.lock();
            self.tick(&mut set, now);
            let unbound = UnboundKey::new(&AES_256_GCM, &set.current.bytes).ok()?;
            (set.current.id, LessSafeKey::new(unbound))
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
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

    /// Opens a ticket sealed with the current or the previous key at `now`.
    pub(crate) fn decrypt_at(&self, now: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        let id: [u8; ID_LEN] = ticket.get(..ID_LEN)?.try_into().ok()?;
        let nonce: [u8; NONCE_LEN] = ticket.get(ID_LEN..ID_LEN + NONCE_LEN)?.try_into().ok()?;
        let sealed = ticket.get(ID_LEN + NONCE_LEN..)?;
        let opening = {
            let mut set = self.lock();
            self.tick(&mut set, now);
            let key = if set.current.id == id {
                &set.current
            } else {
                set.previous.as_ref().filter(|p| p.id == id)?
            };
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key.bytes).ok()?)
        };
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

    /// A ticket stays valid at least one rotation period (it opens with the current key and,
    /// after one rotation, the previous), at most the 7 days RFC 8446 §4.6.1 allows a TLS
    /// 1.3 ticket's lifetime.
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
mod tests;
