//! The run's one client session store, shared by every connection of every
//! worker, as a browser's or an HTTP library's is.
//!
//! rustls's `ClientSessionMemoryCache` keeps at most 8 TLS 1.3 tickets per
//! server, and a ticket is used once (RFC 8446 §C.4): with more than 8
//! connections opening at once, the others would make full handshakes
//! although the server offered to resume them. This store keeps up to two
//! tickets per concurrent connection (a rustls server sends two per
//! handshake), oldest dropped first, and the TLS 1.2 session (id or ticket)
//! and key-exchange hint per server as rustls's does.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;

/// Fewest TLS 1.3 tickets kept per server (rustls's own number).
const MIN_TICKETS: usize = 8;
/// Most TLS 1.3 tickets kept per server (a few MB of tickets).
const MAX_TICKETS: usize = 1 << 16;

/// What is kept for one server name.
#[derive(Debug, Default)]
struct Entry {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

/// Sessions per server name (a run has one), behind one lock taken once or
/// twice per handshake.
#[derive(Debug)]
pub(crate) struct SessionStore {
    tickets: usize,
    servers: Mutex<HashMap<ServerName<'static>, Entry>>,
}

impl SessionStore {
    /// A store for a run of `concurrency` connections at once.
    pub(crate) fn new(concurrency: u64) -> SessionStore {
        let tickets = usize::try_from(concurrency.saturating_mul(2))
            .unwrap_or(MAX_TICKETS)
            .clamp(MIN_TICKETS, MAX_TICKETS);
        SessionStore {
            tickets,
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on the entry of `name` (created when absent).
    fn with<T>(&self, name: ServerName<'static>, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut servers = self
            .servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(servers.entry(name).or_default())
    }

    /// Runs `f` on the entry of `name`, if there is one.
    fn get<T>(&self, name: &ServerName<'_>, f: impl FnOnce(&mut Entry) -> Option<T>) -> Option<T> {
        let mut servers = self
            .servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        servers.get_mut(&name.to_owned()).and_then(f)
    }
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.with(server_name, |e| e.kx_hint = Some(group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.get(server_name, |e| e.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with(server_name, |e| e.tls12 = Some(value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.get(server_name, |e| e.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.get(server_name, |e| e.tls12.take());
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let cap = self.tickets;
        self.with(server_name, |e| {
            if e.tls13.len() >= cap {
                e.tls13.pop_front();
            }
            e.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        // The newest first: the least likely to have expired.
        self.get(server_name, |e| e.tls13.pop_back())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_scale_with_concurrency_within_bounds() {
        assert_eq!(SessionStore::new(1).tickets, MIN_TICKETS);
        assert_eq!(SessionStore::new(100).tickets, 200);
        assert_eq!(SessionStore::new(1_000_000).tickets, MAX_TICKETS);
    }

    #[test]
    fn kx_hint_is_kept_per_server() {
        let s = SessionStore::new(10);
        let a = ServerName::try_from("a.test").unwrap();
        let b = ServerName::try_from("b.test").unwrap();
        s.set_kx_hint(a.clone(), NamedGroup::X25519);
        assert_eq!(s.kx_hint(&a), Some(NamedGroup::X25519));
        assert_eq!(s.kx_hint(&b), None);
        assert!(s.take_tls13_ticket(&a).is_none());
    }
}
