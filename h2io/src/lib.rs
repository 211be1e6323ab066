//! An HTTP/2 stream as a byte stream ([`H2Stream`]): what a WebSocket over HTTP/2
//! (RFC 8441, extended CONNECT) runs on, at both ends — refproxy relays it as it relays an
//! HTTP/1.1 tunnel, loadgen speaks the WebSocket protocol over it.
//!
//! Reads are the stream's DATA frames; each frame's flow-control capacity is released as
//! it is taken (a reader that stops reading stops the peer at its window). Writes are DATA
//! frames, as the peer's window allows. `shutdown` ends the sending side (an empty DATA
//! frame with END_STREAM); the peer's END_STREAM reads as EOF.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Both halves of one HTTP/2 stream.
pub struct H2Stream {
    recv: RecvStream,
    send: SendStream<Bytes>,
    /// Bytes of the last DATA frame not read yet.
    pending: Bytes,
    /// END_STREAM was sent.
    ended: bool,
}

impl H2Stream {
    /// The stream of `recv` and `send` (one request or response and its answer).
    pub fn new(recv: RecvStream, send: SendStream<Bytes>) -> H2Stream {
        H2Stream {
            recv,
            send,
            pending: Bytes::new(),
            ended: false,
        }
    }

    /// Resets the stream (a tunnel that broke or went idle): the peer sees it end
    /// without END_STREAM.
    pub fn reset(&mut self, reason: Reason) {
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
