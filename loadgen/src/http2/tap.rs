//! A read-side tap on an HTTP/2 connection's IO that finds the GOAWAY frames
//! the server sends, which the `h2` crate handles without handing them to
//! its user.
//!
//! Every byte the connection reads passes through [`Tap::poll_read`], which
//! walks the frame headers (9 bytes: 24-bit length, type, flags, stream id)
//! and, for a GOAWAY (type 0x7), the first 8 bytes of its payload
//! (last-stream-id, error code). It copies nothing but those bytes and never
//! changes what `h2` reads, so the count is exact and costs a few compares
//! per frame. It also counts the bytes read (the run's "Total transferred").
//! The client side of a connection reads no preface: the server's first
//! bytes are already a frame.

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::record::Recorder;
use crate::run::Shared;

/// Frame type of GOAWAY (RFC 9113 §6.8).
const GOAWAY: u8 = 0x7;
/// Length of a frame header.
const HEADER: usize = 9;

/// A GOAWAY frame as the tap read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoAway {
    /// Its last-stream-id.
    pub(crate) last_stream_id: u32,
    /// Its error code (0: NO_ERROR).
    pub(crate) code: u32,
}

/// Walks frames across reads of any size.
#[derive(Debug, Default)]
pub(crate) struct FrameScanner {
    header: [u8; HEADER],
    have: usize,
    /// Payload bytes of the current frame still to skip (or read).
    left: u32,
    /// The current frame is a GOAWAY: its first 8 payload bytes so far.
    goaway: Option<([u8; 8], usize)>,
}

impl FrameScanner {
    /// Feeds `bytes`, calling `found` for each complete GOAWAY prefix.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], found: &mut impl FnMut(GoAway)) {
        while !bytes.is_empty() {
            if self.have < HEADER {
                let n = (HEADER - self.have).min(bytes.len());
                self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                self.have += n;
                bytes = &bytes[n..];
                if self.have == HEADER {
                    let h = &self.header;
                    self.left = u32::from_be_bytes([0, h[0], h[1], h[2]]);
                    self.goaway = (h[3] == GOAWAY).then_some(([0; 8], 0));
                    // A GOAWAY shorter than 8 bytes is malformed: h2 closes
                    // the connection with a protocol error; nothing to count.
                    if self.left < 8 {
                        self.goaway = None;
                    }
                    if self.left == 0 {
                        self.have = 0;
                    }
                }
                continue;
            }
            let n = (self.left as usize).min(bytes.len());
            if let Some((buf, got)) = &mut self.goaway {
                let take = (8 - *got).min(n);
                buf[*got..*got + take].copy_from_slice(&bytes[..take]);
                *got += take;
                if *got == 8 {
                    found(GoAway {
                        last_stream_id: u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])
                            & 0x7fff_ffff,
                        code: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
                    });
                    self.goaway = None;
                }
            }
            self.left -= n as u32;
            bytes = &bytes[n..];
            if self.left == 0 {
                self.have = 0;
                self.goaway = None;
            }
        }
    }
}

/// What a connection's tap saw, read by the streams of that connection.
#[derive(Debug, Default)]
pub(crate) struct TapState {
    /// The lowest last-stream-id of the GOAWAYs received, once one came:
    /// the connection then takes no new stream.
    pub(crate) goaway: Cell<Option<u32>>,
}

/// The IO of one HTTP/2 connection, with its read side tapped.
pub(crate) struct Tap<T> {
    io: T,
    scanner: FrameScanner,
    state: Rc<TapState>,
    shared: Arc<Shared>,
    rec: Rc<RefCell<Recorder>>,
}

impl<T> Tap<T> {
    /// Taps `io`, reporting into `state` and recording GOAWAYs and bytes in `rec`.
    pub(crate) fn new(
        io: T,
        state: Rc<TapState>,
        shared: Arc<Shared>,
        rec: Rc<RefCell<Recorder>>,
    ) -> Tap<T> {
        Tap {
            io,
            scanner: FrameScanner::default(),
            state,
            shared,
            rec,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tap<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                let (state, shared, rec) = (&this.state, &this.shared, &this.rec);
                rec.borrow_mut().bytes(new.len() as u64, 0);
                this.scanner.feed(new, &mut |g: GoAway| {
                    let lowest = state
                        .goaway
                        .get()
                        .map_or(g.last_stream_id, |l| l.min(g.last_stream_id));
                    state.goaway.set(Some(lowest));
                    let t = shared.offset_ns(Instant::now());
                    rec.borrow_mut().goaway(t, g.code == 0);
                });
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tap<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, 0];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn goaway(last: u32, code: u32, debug: &[u8]) -> Vec<u8> {
        let mut p = last.to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(debug);
        frame(GOAWAY, 0, &p)
    }

    #[test]
    fn finds_every_goaway_whatever_the_read_sizes() {
        let mut wire = frame(0x4, 0, &[0; 12]); // SETTINGS
        wire.extend(frame(0x0, 1, b"hello")); // DATA
        wire.extend(goaway(0x8000_0000 | 7, 0, b""));
        wire.extend(frame(0x1, 3, &[0x88])); // HEADERS
        wire.extend(goaway(3, 2, b"debug data"));
        wire.extend(frame(0x0, 5, b"")); // empty DATA
        wire.extend(frame(0x0, 5, &[GOAWAY; 40])); // DATA that looks like one
        let want = vec![
            GoAway {
                last_stream_id: 7,
                code: 0,
            },
            GoAway {
                last_stream_id: 3,
                code: 2,
            },
        ];
        for chunk in [1, 2, 3, 7, 9, 10, 64, wire.len()] {
            let mut s = FrameScanner::default();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                s.feed(piece, &mut |g| got.push(g));
            }
            assert_eq!(got, want, "reads of {chunk} bytes");
        }
    }

    #[test]
    fn a_short_goaway_is_not_counted() {
        let mut s = FrameScanner::default();
        let mut got = Vec::new();
        let mut wire = frame(GOAWAY, 0, &[0, 0, 0, 1]);
        wire.extend(goaway(1, 0, b""));
        s.feed(&wire, &mut |g| got.push(g));
        assert_eq!(got.len(), 1);
    }
}
