//! A careful client's look at an idle keep-alive connection before it reuses
//! it ([`RetryPolicy::Safe`](reloadbench_model::load::RetryPolicy::Safe)):
//! Go's transport, urllib3 and browsers do not send a request on a connection
//! the server closed while it sat idle (Go's read loop sees the EOF, urllib3
//! polls the socket), so a drain that closes idle connections costs such a
//! client a new connection, not a failed POST. Without a retry policy loadgen
//! sends on the connection as it is: that is the race the server is measured on.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};
use tokio::net::TcpStream;

/// Whether the server has closed `stream` (EOF or a reset), or sent bytes no
/// request asked for: either way it cannot carry the next request. One
/// non-blocking peek; nothing is consumed.
pub(crate) fn unusable(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    !matches!(
        recv(stream.as_raw_fd(), &mut byte, peek),
        Err(Errno::EAGAIN)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn open_closed_and_talkative_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert!(!unusable(&client), "open and quiet");
        server.write_all(b"x").await.unwrap();
        client.readable().await.unwrap();
        assert!(unusable(&client), "unexpected bytes");
        let client2 = TcpStream::connect(addr).await.unwrap();
        let (server2, _) = listener.accept().await.unwrap();
        drop(server2);
        client2.readable().await.unwrap();
        assert!(unusable(&client2), "closed by the server");
        assert!(unusable(&client2), "the peek consumed nothing");
        drop(server);
    }
}
