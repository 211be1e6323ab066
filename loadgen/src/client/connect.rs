//! Opening a connection, optionally from a chosen loopback source address,
//! and sorting connect failures into their [`FailureClass`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use reloadbench_model::outcome::FailureClass;
use tokio::net::{TcpSocket, TcpStream};

/// The class of a failed `connect` (or socket creation / bind).
///
/// `ECONNRESET` is [`FailureClass::Reset`], not a connect error: Linux
/// reports it only for a socket that had reached `ESTABLISHED` (a reset
/// answering the SYN is `ECONNREFUSED`), so the handshake completed, the
/// connection waited in the server's accept queue and was reset there, the
/// typical loss of a naive reload. Whether the client sees that reset in
/// `connect`, in the write or in the first read only depends on the client's
/// own scheduling, so all three are the same class.
pub(crate) fn classify_connect(e: &io::Error) -> FailureClass {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => FailureClass::ConnectRefused,
        Some(libc::ECONNRESET) => FailureClass::Reset,
        Some(libc::ETIMEDOUT) => FailureClass::ConnectTimeout,
        Some(
            libc::EADDRNOTAVAIL
            | libc::EADDRINUSE
            | libc::EMFILE
            | libc::ENFILE
            | libc::ENOBUFS
            | libc::ENOMEM
            | libc::EAGAIN,
        ) => FailureClass::ClientError,
        _ => FailureClass::ConnectError,
    }
}

/// Lets the kernel pick the source port at `connect` time, so that many
/// source addresses can share the ephemeral port range.
fn bind_address_no_port(socket: &TcpSocket) -> io::Result<()> {
    setsockopt(socket, sockopt::IpBindAddressNoPort, &true).map_err(io::Error::from)
}

/// Connects to `addr` within `timeout`, from `source` when given.
///
/// `TCP_NODELAY` is set for keep-alive connections only: a connection that
/// carries a single request written at once gains nothing from it.
pub(crate) async fn connect(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    timeout: Duration,
    nodelay: bool,
) -> Result<TcpStream, FailureClass> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|_| FailureClass::ClientError)?;
    if nodelay {
        let _ = socket.set_nodelay(true);
    }
    if let Some(ip) = source {
        bind_address_no_port(&socket).map_err(|_| FailureClass::ClientError)?;
        socket
            .bind(SocketAddr::new(ip.into(), 0))
            .map_err(|e| match classify_connect(&e) {
                FailureClass::ConnectError => FailureClass::ClientError,
                c => c,
            })?;
    }
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Err(_) => Err(FailureClass::ConnectTimeout),
        Ok(Err(e)) => Err(classify_connect(&e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_classes() {
        let c = |n| classify_connect(&io::Error::from_raw_os_error(n));
        assert_eq!(c(libc::ECONNREFUSED), FailureClass::ConnectRefused);
        assert_eq!(c(libc::EADDRNOTAVAIL), FailureClass::ClientError);
        assert_eq!(c(libc::EMFILE), FailureClass::ClientError);
        assert_eq!(c(libc::ETIMEDOUT), FailureClass::ConnectTimeout);
        assert_eq!(c(libc::EHOSTUNREACH), FailureClass::ConnectError);
        assert_eq!(c(libc::ECONNRESET), FailureClass::Reset);
    }

    #[test]
    fn bind_address_no_port_sets_the_option() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let socket = TcpSocket::new_v4().expect("socket");
        let get = || nix::sys::socket::getsockopt(&socket, sockopt::IpBindAddressNoPort);
        assert_eq!(get(), Ok(false));
        bind_address_no_port(&socket).expect("setsockopt");
        assert_eq!(get(), Ok(true));
    }
}
