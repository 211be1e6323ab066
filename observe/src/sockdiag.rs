//! TCP sockets on an address, from the kernel's socket monitoring interface
//! (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY` with an `inet_diag_req_v2`).
//!
//! One [`dump`] asks for every TCP socket of one address family in the
//! wanted states whose local port is the address's port (the kernel filters
//! by port; the local address is checked here), and returns one [`TcpSocket`]
//! each. For a listening socket the kernel reports the accept queue's current
//! length as `rqueue` and its backlog (the `listen()` argument, capped by
//! `net.core.somaxconn`) as `wqueue`; for a connected socket they are the
//! bytes in the receive and send queues.
//!
//! The messages are built and parsed as bytes (no `unsafe`): the request is
//! sent to the kernel (netlink port 0, the default destination of an
//! unconnected netlink socket) and the reply read until `NLMSG_DONE`.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// `NETLINK_SOCK_DIAG` (linux/netlink.h).
const NETLINK_SOCK_DIAG: i32 = 4;
/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// Size of `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// Size of `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// Size of `struct inet_diag_msg`.
const MSG_LEN: usize = 72;
/// Receive buffer: the kernel fills at most a few pages per dump message.
const RECV_BUF: usize = 64 * 1024;

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    /// The netlink socket could not be opened, written or read.
    #[error("sock_diag: {what}: {source}")]
    Io {
        /// The step that failed.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel answered with an error.
    #[error("sock_diag: the kernel refused the dump: {0}")]
    Kernel(std::io::Error),
    /// The reply could not be parsed.
    #[error("sock_diag: malformed reply: {0}")]
    Malformed(&'static str),
}

/// TCP states as the kernel numbers them (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    /// `TCP_ESTABLISHED`.
    Established,
    /// `TCP_SYN_SENT`.
    SynSent,
    /// `TCP_SYN_RECV`.
    SynRecv,
    /// `TCP_FIN_WAIT1`.
    FinWait1,
    /// `TCP_FIN_WAIT2`.
    FinWait2,
    /// `TCP_TIME_WAIT`.
    TimeWait,
    /// `TCP_CLOSE`.
    Close,
    /// `TCP_CLOSE_WAIT`.
    CloseWait,
    /// `TCP_LAST_ACK`.
    LastAck,
    /// `TCP_LISTEN`.
    Listen,
    /// `TCP_CLOSING`.
    Closing,
    /// `TCP_NEW_SYN_RECV`.
    NewSynRecv,
}

impl TcpState {
    /// Every state.
    pub const ALL: [TcpState; 12] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
    ];

    /// The kernel's number for the state.
    pub fn code(self) -> u8 {
        match self {
            TcpState::Established => 1,
            TcpState::SynSent => 2,
            TcpState::SynRecv => 3,
            TcpState::FinWait1 => 4,
            TcpState::FinWait2 => 5,
            TcpState::TimeWait => 6,
            TcpState::Close => 7,
            TcpState::CloseWait => 8,
            TcpState::LastAck => 9,
            TcpState::Listen => 10,
            TcpState::Closing => 11,
            TcpState::NewSynRecv => 12,
        }
    }

    /// The state numbered `code`, if it is one.
    pub fn from_code(code: u8) -> Option<TcpState> {
        TcpState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The kernel's name without `TCP_`, e.g. `LISTEN`.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
        }
    }
}

/// A set of TCP states to ask for (the dump's `idiag_states` mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct States(u32);

impl States {
    /// Every state.
    pub fn all() -> States {
        States(TcpState::ALL.iter().fold(0, |m, s| m | 1 << s.code()))
    }

    /// Exactly the states given.
    pub fn of(states: &[TcpState]) -> States {
        States(states.iter().fold(0, |m, s| m | 1 << s.code()))
    }

    /// Whether `s` is in the set.
    pub fn contains(self, s: TcpState) -> bool {
        self.0 & (1 << s.code()) != 0
    }
}

/// One TCP socket as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Its state.
    pub state: TcpState,
    /// Local address.
    pub local: SocketAddr,
    /// Remote address (unspecified, port 0, for a listening socket).
    pub remote: SocketAddr,
    /// Inode of the socket (`socket:[INODE]` in `/proc/PID/fd`); 0 for a
    /// socket no file refers to (a connection not accepted yet, TIME_WAIT).
    pub inode: u64,
    /// Owner's uid.
    pub uid: u32,
    /// Listening: connections in the accept queue. Otherwise: bytes not yet read.
    pub rqueue: u32,
    /// Listening: the accept queue's limit (backlog). Otherwise: bytes not yet acknowledged.
    pub wqueue: u32,
}

/// Which sockets a [`dump`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// Local address; a listening socket bound to the unspecified address of
    /// the same family and port matches too.
    pub local: SocketAddr,
    /// States wanted.
    pub states: States,
}

impl Filter {
    /// Sockets in `states` whose local address is `local`.
    pub fn local(local: SocketAddr, states: States) -> Filter {
        Filter { local, states }
    }

    fn matches(&self, s: &TcpSocket) -> bool {
        if !self.states.contains(s.state) || s.local.port() != self.local.port() {
            return false;
        }
        // A dual-stack IPv6 socket shows IPv4 peers as `::ffff:a.b.c.d`.
        let ip = match s.local.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        ip == self.local.ip() || (s.state == TcpState::Listen && ip.is_unspecified())
    }
}

/// How long one read of a dump may wait for the kernel.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A netlink socket for sock_diag dumps, reusable across dumps.
#[derive(Debug)]
pub struct Diag {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Diag {
    /// Opens the netlink socket.
    pub fn open() -> Result<Diag, DiagError> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::DGRAM,
            Some(Protocol::from(NETLINK_SOCK_DIAG)),
        )
        .map_err(|source| DiagError::Io {
            what: "open a NETLINK_SOCK_DIAG socket",
            source,
        })?;
        // Every wait has a bound: a dump that stalls is an error, not a hang.
        sock.set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|source| DiagError::Io {
                what: "set a read timeout on the NETLINK_SOCK_DIAG socket",
                source,
            })?;
        Ok(Diag {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// TCP sockets matching `filter`, in the kernel's order. For an IPv4
    /// address the IPv6 sockets on the port are read too: a server that
    /// listens on `[::]` (dual stack) takes IPv4 clients on an IPv6 socket.
    pub fn dump(&mut self, filter: &Filter) -> Result<Vec<TcpSocket>, DiagError> {
        match filter.local {
            SocketAddr::V4(_) => {
                let mut out = self.dump_family(filter, libc::AF_INET)?;
                // A kernel without IPv6 answers the IPv6 dump with an error:
                // then there is no dual-stack socket to find.
                if let Ok(v6) = self.dump_family(filter, libc::AF_INET6) {
                    out.extend(v6);
                }
                Ok(out)
            }
            SocketAddr::V6(_) => self.dump_family(filter, libc::AF_INET6),
        }
    }

    fn dump_family(&mut self, filter: &Filter, family: i32) -> Result<Vec<TcpSocket>, DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(filter, family, self.seq);
        self.sock.send(&req).map_err(|source| DiagError::Io {
            what: "send the dump request",
            source,
        })?;
        let mut out = Vec::new();
        loop {
            let n = (&self.sock)
                .read(&mut self.buf)
                .map_err(|source| DiagError::Io {
                    what: "read the dump",
                    source,
                })?;
            if n == 0 {
                return Err(DiagError::Malformed("empty read before NLMSG_DONE"));
            }
            if parse_batch(&self.buf[..n], self.seq, filter, &mut out)? {
                return Ok(out);
            }
        }
    }
}

/// One-shot [`Diag::dump`].
pub fn dump(filter: &Filter) -> Result<Vec<TcpSocket>, DiagError> {
    Diag::open()?.dump(filter)
}

/// The request: `nlmsghdr` + `inet_diag_req_v2` for TCP in `family`, the
/// filter's states and local port (`id.idiag_sport`, network order, which
/// the kernel compares with each socket's local port).
fn request(filter: &Filter, family: i32, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDR + REQ_LEN);
    let family = family as u8;
    b.extend_from_slice(&((NLMSG_HDR + REQ_LEN) as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    // inet_diag_req_v2
    b.push(family);
    b.push(libc::IPPROTO_TCP as u8);
    b.push(0); // idiag_ext: no extensions
    b.push(0); // pad
    b.extend_from_slice(&filter.states.0.to_ne_bytes());
    // inet_diag_sockid: sport, dport, src[16], dst[16], if, cookie[2]
    b.extend_from_slice(&filter.local.port().to_be_bytes());
    b.extend_from_slice(&[0u8; 2 + 16 + 16 + 4 + 8]);
    debug_assert_eq!(b.len(), NLMSG_HDR + REQ_LEN);
    b
}

fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses one datagram of the reply into `out`; true at `NLMSG_DONE`.
fn parse_batch(
    mut b: &[u8],
    seq: u32,
    filter: &Filter,
    out: &mut Vec<TcpSocket>,
) -> Result<bool, DiagError> {
    while b.len() >= NLMSG_HDR {
        let len = u32_ne(b, 0) as usize;
        if len < NLMSG_HDR || len > b.len() {
            return Err(DiagError::Malformed("message length out of bounds"));
        }
        let kind = u16_ne(b, 4);
        let msg_seq = u32_ne(b, 8);
        let body = &b[NLMSG_HDR..len];
        if msg_seq == seq {
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    if body.len() < 4 {
                        return Err(DiagError::Malformed("short NLMSG_ERROR"));
                    }
                    let errno = -(u32_ne(body, 0) as i32);
                    return Err(DiagError::Kernel(std::io::Error::from_raw_os_error(errno)));
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(s) = parse_msg(body)?
                        && filter.matches(&s)
                    {
                        out.push(s);
                    }
                }
                _ => {}
            }
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or_default();
    }
    Ok(false)
}

/// One `inet_diag_msg` (attributes after it are ignored).
fn parse_msg(m: &[u8]) -> Result<Option<TcpSocket>, DiagError> {
    if m.len() < MSG_LEN {
        return Err(DiagError::Malformed("short inet_diag_msg"));
    }
    let family = i32::from(m[0]);
    let Some(state) = TcpState::from_code(m[1]) else {
        return Ok(None);
    };
    // id at 4: sport(2) dport(2) src(16) dst(16) if(4) cookie(8)
    let sport = u16::from_be_bytes([m[4], m[5]]);
    let dport = u16::from_be_bytes([m[6], m[7]]);
    let addr = |at: usize| -> Option<IpAddr> {
        if family == libc::AF_INET {
            let o: [u8; 4] = m[at..at + 4].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(o)))
        } else if family == libc::AF_INET6 {
            let o: [u8; 16] = m[at..at + 16].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        } else {
            None
        }
    };
    let (Some(src), Some(dst)) = (addr(8), addr(24)) else {
        return Ok(None);
    };
    // after id (4 + 48 = 52): expires, rqueue, wqueue, uid, inode
    Ok(Some(TcpSocket {
        state,
        local: SocketAddr::new(src, sport),
        remote: SocketAddr::new(dst, dport),
        rqueue: u32_ne(m, 56),
        wqueue: u32_ne(m, 60),
        uid: u32_ne(m, 64),
        inode: u64::from(u32_ne(m, 68)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_mask_holds_what_was_asked() {
        let s = States::of(&[TcpState::Listen, TcpState::Established]);
        assert!(s.contains(TcpState::Listen));
        assert!(s.contains(TcpState::Established));
        assert!(!s.contains(TcpState::TimeWait));
        assert_eq!(s.0, (1 << 10) | (1 << 1));
        assert!(TcpState::ALL.iter().all(|t| States::all().contains(*t)));
    }

    #[test]
    fn request_is_an_inet_diag_req_v2_for_the_port() {
        let f = Filter::local("127.0.0.1:8080".parse().expect("addr"), States::all());
        let r = request(&f, libc::AF_INET, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32_ne(&r, 0), 72);
        assert_eq!(u16_ne(&r, 4), SOCK_DIAG_BY_FAMILY);
        assert_eq!(u32_ne(&r, 8), 7);
        assert_eq!(r[16], libc::AF_INET as u8);
        assert_eq!(r[17], libc::IPPROTO_TCP as u8);
        assert_eq!(u16::from_be_bytes([r[24], r[25]]), 8080);
    }

    #[test]
    fn filter_takes_the_unspecified_address_for_listeners_only() {
        let f = Filter::local("127.0.0.1:80".parse().expect("addr"), States::all());
        let sock = |state, local: &str| TcpSocket {
            state,
            local: local.parse().expect("addr"),
            remote: "0.0.0.0:0".parse().expect("addr"),
            inode: 1,
            uid: 0,
            rqueue: 0,
            wqueue: 0,
        };
        assert!(f.matches(&sock(TcpState::Listen, "0.0.0.0:80")));
        assert!(f.matches(&sock(TcpState::Established, "127.0.0.1:80")));
        assert!(!f.matches(&sock(TcpState::Established, "0.0.0.0:80")));
        assert!(!f.matches(&sock(TcpState::Listen, "127.0.0.2:80")));
        assert!(!f.matches(&sock(TcpState::Listen, "127.0.0.1:81")));
    }
}
