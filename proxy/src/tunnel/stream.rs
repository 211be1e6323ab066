//! An HTTP/2 stream as a byte stream, so that a tunnel opened by an extended CONNECT
//! (RFC 8441) is relayed by the same code as an HTTP/1.1 tunnel ([`super::relay`]).
//!
//! Reads are the stream's DATA frames; each frame's flow-control capacity is released as
//! it is taken (the relay writes what it read before it reads again, so the client sends
//! no faster than the origin reads). Writes are DATA frames, as the peer's window allows.
//! `shutdown` ends the sending side (an empty DATA frame with END_STREAM); the client's
//! END_STREAM reads as EOF.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Both halves of one HTTP/2 stream.
pub(crate) struct H2Stream {
    recv: RecvStream,
    send: SendStream<Bytes>,
    /// Bytes of the last DATA frame not read yet.
    pending: Bytes,
    /// END_STREAM was sent.
    ended: bool,
}

impl H2Stream {
    pub(crate) fn new(recv: RecvStream, send: SendStream<Bytes>) -> H2Stream {
        H2Stream {
            recv,
            send,
            pending: Bytes::new(),
            ended: false,
        }
    }

    /// Resets the stream (a tunnel that broke or went idle): the client sees it end
    /// without END_STREAM.
    pub(crate) fn reset(&mut self, reason: Reason) {
        self.send.send_reset(reason);
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    this.pending = data;
                }
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        this.send.reserve_capacity(buf.len());
        loop {
            match ready!(this.send.poll_capacity(cx)) {
                Some(Ok(n)) if n > 0 => {
                    let n = n.min(buf.len());
                    let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                    this.send.send_data(data, false).map_err(io::Error::other)?;
                    return Poll::Ready(Ok(n));
                }
                // Capacity 0 is no answer: polling again waits for a window update.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ended {
            this.ended = true;
            this.send
                .send_data(Bytes::new(), true)
                .map_err(io::Error::other)?;
        }
        Poll::Ready(Ok(()))
    }
}
