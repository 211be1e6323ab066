//! Closing a client connection without a reset.
//!
//! The kernel answers with a reset (RST) instead of a FIN when a socket is closed with
//! unread bytes in its receive queue, or when bytes arrive for a socket already closed.
//! Either way the client loses what it had sent, and a reset can also make it drop a
//! response it had not read yet. Every close that refproxy decides on its own while the
//! client may still be sending goes through here:
//!
//! - [`linger`]: shut the sending side down (the client reads EOF after everything
//!   written before), then read and drop what still comes until the client closes or
//!   the time is up (nginx's `lingering_close`);
//! - [`idle`]: how to close an idle keep-alive connection (idle timeout, or drain). A
//!   request that is already in the receive queue when the timer fires is served
//!   instead ([`IdleClose::Request`]); otherwise the connection lingers, so that a
//!   request that raced the close is read and dropped: the client sees EOF, not a reset.

use std::mem::MaybeUninit;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// What is waiting in a socket's receive queue, looked at without waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queued {
    /// At least one byte.
    Bytes,
    /// The client closed its side, and nothing is left before that.
    Eof,
    /// Nothing yet (or the socket cannot be read: treated as nothing).
    Nothing,
}

/// Peeks at the receive queue (the socket is non-blocking: this never waits). Unlike
/// tokio's `try_read`, this asks the kernel and not the reactor's cached readiness, which
/// can lag behind bytes that have just arrived.
fn queued(stream: &TcpStream) -> Queued {
    let mut one = [MaybeUninit::<u8>::uninit()];
    match socket2::SockRef::from(stream).peek(&mut one) {
        Ok(0) => Queued::Eof,
        Ok(_) => Queued::Bytes,
        Err(_) => Queued::Nothing,
    }
}

/// What to do when the idle timer of a connection fires ([`idle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IdleClose {
    /// A request has already arrived: do not close, read and serve it.
    Request,
    /// The client has closed its side, with nothing before that: dropping the
    /// connection is a clean close, nothing can arrive any more.
    ClientGone,
    /// Nothing has arrived: close with [`linger`]. Bytes it reads are a request that
    /// raced the close (the client had sent before it could see the FIN); read and
    /// dropped, they make the client see EOF and no reset.
    Linger,
}

/// Decides how to close an idle connection whose idle timer expired, by looking at its
/// receive queue.
pub(super) fn idle(stream: &TcpStream) -> IdleClose {
    match queued(stream) {
        Queued::Bytes => IdleClose::Request,
        Queued::Eof => IdleClose::ClientGone,
        Queued::Nothing => IdleClose::Linger,
    }
}

/// Shuts the sending side down (FIN after everything written), then reads and drops what
/// arrives until the client closes (EOF), an error, or `until`. Returns the bytes dropped.
/// The caller drops the stream afterwards.
/// Over TLS, the shutdown sends `close_notify` first; it too waits at most until `until`
/// (a client that reads nothing leaves it unwritten).
pub(super) async fn linger<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    until: Instant,
) -> u64 {
    let _ = tokio::time::timeout_at(until.into(), stream.shutdown()).await;
    let mut scratch = [0u8; 16 * 1024];
    let mut dropped = 0u64;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until.into(), stream.read(&mut scratch)).await {
        if n == 0 {
            break;
        }
        dropped += n as u64;
    }
    dropped
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::serve::tests::limit;

    /// A connected pair on loopback: (client, server side).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn a_request_queued_when_the_idle_timer_fires_is_served_not_closed() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"POST / HTTP/1.1\r\n").await.unwrap();
        // The bytes are in the server's receive queue once it is readable.
        tokio::time::timeout(limit(), server.readable())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(idle(&server), IdleClose::Request);
        // Nothing was shut down: the server still reads the request and can answer.
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"POST / HTTP/1.1\r\n");
        server.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"HTTP/1.1 200 OK\r\n");
    }

    #[tokio::test]
    async fn a_request_racing_the_idle_close_is_read_and_gets_eof_not_a_reset() {
        let (mut client, mut server) = pair().await;
        let until = Instant::now() + limit();
        assert_eq!(idle(&server), IdleClose::Linger);
        let closing = tokio::spawn(async move {
            let dropped = linger(&mut server, until).await;
            drop(server);
            dropped
        });
        // The FIN: the client reads EOF, nothing before it.
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(limit(), client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
        // A request that was on its way (written before the client looked): the server
        // is lingering and reads it.
        let req = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        client.write_all(req).await.unwrap();
        client.shutdown().await.unwrap();
        let dropped = tokio::time::timeout(limit(), closing)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            dropped,
            req.len() as u64,
            "the request is read, to its last byte"
        );
        // No reset came back: no pending error, reads still say EOF, and the state is
        // the orderly close (a reset would have left an error and a closed state).
        assert!(client.take_error().unwrap().is_none());
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        assert!(client.take_error().unwrap().is_none());
    }

    /// A stream whose shutdown never completes (a TLS `close_notify` a client never
    /// reads) and that has nothing to read.
    struct Stuck;

    impl AsyncRead for Stuck {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
    }

    impl AsyncWrite for Stuck {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Pending
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_that_cannot_finish_ends_at_the_lingers_deadline() {
        let start = Instant::now();
        let until = start + Duration::from_millis(100);
        let mut stuck = Stuck;
        let lingered = tokio::time::timeout(Duration::from_secs(10), linger(&mut stuck, until));
        assert_eq!(lingered.await, Ok(0), "the linger outlived its deadline");
    }

    #[tokio::test]
    async fn linger_ends_at_its_deadline_when_the_client_never_closes() {
        let (_client, mut server) = pair().await;
        let start = Instant::now();
        let dropped = linger(&mut server, start + Duration::from_millis(100)).await;
        assert_eq!(dropped, 0);
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn an_idle_connection_the_client_closed_is_not_lingered_on() {
        let (client, server) = pair().await;
        drop(client);
        tokio::time::timeout(limit(), server.readable())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(idle(&server), IdleClose::ClientGone);
    }
}
