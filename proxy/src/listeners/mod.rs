//! Listening sockets: bind new ones, or match inherited ones to the config by address.
//!
//! Every socket refproxy binds has `SO_REUSEADDR` and `SO_REUSEPORT`, so a naive reload can
//! bind the same address next to the old process. Inherited sockets (from an fd-passing
//! upgrade or from a master) are matched to the config's `listen` addresses: an address the
//! config has that was not handed over is bound fresh, and a handed-over socket the config
//! does not need is closed. A configured port 0 matches any handed-over socket with the same
//! IP, so a config written with port 0 keeps serving on the port the first process got.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Backlog of every listening socket refproxy binds.
pub const BACKLOG: i32 = 4096;

/// Errors of binding and inheriting listening sockets.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// Binding an address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// An inherited fd is not a listening TCP socket.
    #[error("inherited fd for {name} is not a listening TCP socket: {reason}")]
    NotAListener {
        /// The name the fd came with.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Duplicating a socket failed.
    #[error("cannot duplicate the socket of {addr}: {source}")]
    Dup {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A listening TCP socket and the address it is bound to (port 0 resolved).
#[derive(Debug)]
pub struct Listener {
    /// The bound address.
    pub addr: SocketAddr,
    /// The socket.
    pub fd: OwnedFd,
}

impl Listener {
    /// Binds `addr` with `SO_REUSEADDR` + `SO_REUSEPORT`, non-blocking and close-on-exec.
    pub fn bind(addr: SocketAddr) -> Result<Listener, ListenerError> {
        let err = |source| ListenerError::Bind { addr, source };
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(err)?;
        socket.set_reuse_address(true).map_err(err)?;
        socket.set_reuse_port(true).map_err(err)?;
        socket.set_nonblocking(true).map_err(err)?;
        socket.bind(&addr.into()).map_err(err)?;
        socket.listen(BACKLOG).map_err(err)?;
        let bound = socket
            .local_addr()
            .map_err(err)?
            .as_socket()
            .ok_or_else(|| err(std::io::Error::other("bound address is not IP")))?;
        Ok(Listener {
            addr: bound,
            fd: socket.into(),
        })
    }

    /// Checks that `fd` (received under `name`) is a listening TCP socket; makes it non-blocking.
    pub fn from_inherited(name: &str, fd: OwnedFd) -> Result<Listener, ListenerError> {
        let bad = |reason: String| ListenerError::NotAListener {
            name: name.to_owned(),
            reason,
        };
        let sock = SockRef::from(&fd);
        if !sock.is_listener().map_err(|e| bad(e.to_string()))? {
            return Err(bad("not listening".into()));
        }
        if sock.r#type().map_err(|e| bad(e.to_string()))? != Type::STREAM {
            return Err(bad("not a stream socket".into()));
        }
        let addr = sock
            .local_addr()
            .map_err(|e| bad(e.to_string()))?
            .as_socket()
            .ok_or_else(|| bad("not an IP socket".into()))?;
        sock.set_nonblocking(true).map_err(|e| bad(e.to_string()))?;
        sock.set_cloexec(true).map_err(|e| bad(e.to_string()))?;
        Ok(Listener { addr, fd })
    }

    /// A `std` listener on a duplicate of the socket (for the HTTP server).
    pub fn to_std(&self) -> Result<TcpListener, ListenerError> {
        let fd = self
            .fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| ListenerError::Dup {
                addr: self.addr,
                source,
            })?;
        Ok(TcpListener::from(fd))
    }
}

/// Binds every address.
pub fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<Listener>, ListenerError> {
    addrs.iter().map(|a| Listener::bind(*a)).collect()
}

/// Whether a configured address is served by a socket bound to `bound`.
pub fn addr_matches(wanted: SocketAddr, bound: SocketAddr) -> bool {
    wanted == bound || (wanted.port() == 0 && wanted.ip() == bound.ip())
}

/// Resolves each configured address against addresses already in use: port 0 takes the
/// port of a not yet taken address with the same IP. Used by naive reloads, which must bind
/// exactly the old process's addresses.
pub fn resolve_against(wanted: &[SocketAddr], existing: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut taken = vec![false; existing.len()];
    let mut out = Vec::with_capacity(wanted.len());
    // Exact matches first, so that a port-0 entry never steals an address named explicitly.
    let mut resolved: Vec<Option<SocketAddr>> = wanted
        .iter()
        .map(|w| {
            let i = existing.iter().position(|e| e == w)?;
            taken[i] = true;
            Some(*w)
        })
        .collect();
    for (w, r) in wanted.iter().zip(resolved.iter_mut()) {
        if r.is_none()
            && w.port() == 0
            && let Some(i) =
                (0..existing.len()).find(|&i| !taken[i] && addr_matches(*w, existing[i]))
        {
            taken[i] = true;
            *r = Some(existing[i]);
        }
    }
    for (w, r) in wanted.iter().zip(resolved) {
        out.push(r.unwrap_or(*w));
    }
    out
}

/// Matches inherited sockets to the configured addresses: reuses matches, binds the rest
/// fresh, and closes inherited sockets that no configured address wants.
///
/// Returns the listeners in config order and how many inherited sockets were closed.
pub fn adopt(
    wanted: &[SocketAddr],
    inherited: Vec<Listener>,
) -> Result<(Vec<Listener>, usize), ListenerError> {
    let existing: Vec<SocketAddr> = inherited.iter().map(|l| l.addr).collect();
    let resolved = resolve_against(wanted, &existing);
    let mut pool: Vec<Option<Listener>> = inherited.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(wanted.len());
    for addr in resolved {
        let found = pool
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|l| l.addr == addr))
            .and_then(Option::take);
        match found {
            Some(l) => out.push(l),
            None => out.push(Listener::bind(addr)?),
        }
    }
    let closed = pool.into_iter().flatten().count();
    Ok((out, closed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn port_zero_resolves_to_an_existing_port_with_the_same_ip() {
        let got = resolve_against(
            &[a("127.0.0.1:0"), a("127.0.0.2:80")],
            &[a("127.0.0.2:80"), a("127.0.0.1:4000")],
        );
        assert_eq!(got, vec![a("127.0.0.1:4000"), a("127.0.0.2:80")]);
        assert_eq!(
            resolve_against(&[a("127.0.0.1:0")], &[]),
            vec![a("127.0.0.1:0")]
        );
    }

    #[test]
    fn adopt_reuses_binds_and_closes() {
        let l1 = Listener::bind(a("127.0.0.1:0")).unwrap();
        let l2 = Listener::bind(a("127.0.0.1:0")).unwrap();
        let keep = l1.addr;
        let (got, closed) = adopt(&[keep, a("127.0.0.3:0")], vec![l1, l2]).unwrap();
        assert_eq!(closed, 1);
        assert_eq!(got[0].addr, keep);
        assert_eq!(got[1].addr.ip(), a("127.0.0.3:0").ip());
        assert_ne!(got[1].addr.port(), 0);
    }

    #[test]
    fn inherited_fd_must_be_a_listener() {
        let l = Listener::bind(a("127.0.0.1:0")).unwrap();
        let addr = l.addr;
        let back = Listener::from_inherited("x", l.fd).unwrap();
        assert_eq!(back.addr, addr);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(Listener::from_inherited("udp", OwnedFd::from(udp)).is_err());
    }
}
