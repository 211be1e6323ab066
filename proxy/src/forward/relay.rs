//! Copying a message body from one socket to another, delimited by its framing.
//!
//! Bytes are read into the source's buffer and written out after every read, so a body
//! that arrives slowly reaches the other side as it comes. The head of the message is
//! written together with the first body bytes (one vectored write).

use std::io::{self, IoSlice};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http1::{ChunkError, ChunkedScanner, Framing};

/// Read buffer size of a relayed body: reads ask for up to this much.
pub(crate) const BUF_BYTES: usize = 64 * 1024;

/// A socket and the bytes read from it that are not consumed yet.
#[derive(Debug)]
pub(crate) struct Buffered {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl Buffered {
    pub(crate) fn new(stream: TcpStream, buf: Vec<u8>) -> Buffered {
        Buffered {
            stream,
            buf,
            start: 0,
        }
    }

    /// The bytes read and not consumed yet.
    pub(crate) fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Marks the first `n` pending bytes consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads once, appending to the pending bytes; `Ok(0)` at the end of the stream.
    /// Room for at least `want` more bytes is made first.
    pub(crate) async fn read_more(&mut self, want: usize) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < want {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(want);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Replaces a buffer grown beyond `max` bytes (by a request body) with one of `max`,
    /// when nothing is pending, so that idle connections hold little memory.
    pub(crate) fn shrink(&mut self, max: usize) {
        if self.pending().is_empty() && self.buf.capacity() > max {
            self.buf = Vec::with_capacity(max);
            self.start = 0;
        }
    }

    /// Gives the buffer back (empty) and the socket.
    pub(crate) fn into_parts(mut self) -> (TcpStream, Vec<u8>) {
        self.buf.clear();
        (self.stream, self.buf)
    }
}

/// Why a relay stopped before the end of the body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    /// Reading the source failed, or it ended before the body did.
    #[error("reading the body: {0}")]
    Read(#[source] io::Error),
    /// Writing to the destination failed.
    #[error("writing the body: {0}")]
    Write(#[source] io::Error),
    /// The chunked coding is broken.
    #[error(transparent)]
    Chunked(#[from] ChunkError),
}

/// Writes `head` and relays the body framed by `framing` from `src` to `dst`; with
/// `dechunk`, a chunked body is written without its coding. Consumes exactly the body
/// from `src`'s pending bytes; what follows it stays pending.
pub(crate) async fn relay(
    src: &mut Buffered,
    dst: &mut TcpStream,
    head: &[u8],
    framing: Framing,
    dechunk: bool,
) -> Result<(), RelayError> {
    let mut head = head;
    match framing {
        Framing::None => write_all(dst, &mut [IoSlice::new(head)]).await,
        Framing::Length(mut left) => loop {
            let take =
                usize::try_from(left).map_or(src.pending().len(), |l| l.min(src.pending().len()));
            if take > 0 || !head.is_empty() {
                let body = src.pending().get(..take).unwrap_or_default();
                write_all(dst, &mut [IoSlice::new(head), IoSlice::new(body)]).await?;
                src.consume(take);
                left -= take as u64;
                head = &[];
            }
            if left == 0 {
                return Ok(());
            }
            fill(src).await?;
        },
        Framing::Chunked => {
            let mut scanner = ChunkedScanner::default();
            let mut data = Vec::new();
            loop {
                data.clear();
                let used = scanner.scan(src.pending(), |r| data.push(r))?;
                let pending = src.pending();
                let mut slices = Vec::with_capacity(data.len() + 1);
                slices.push(IoSlice::new(head));
                if dechunk {
                    slices.extend(
                        data.iter()
                            .filter_map(|r| pending.get(r.clone()))
                            .map(IoSlice::new),
                    );
                } else {
                    slices.push(IoSlice::new(pending.get(..used).unwrap_or_default()));
                }
                write_all(dst, &mut slices).await?;
                src.consume(used);
                head = &[];
                if scanner.is_done() {
                    return Ok(());
                }
                fill(src).await?;
            }
        }
        Framing::UntilClose => loop {
            let n = src.pending().len();
            write_all(dst, &mut [IoSlice::new(head), IoSlice::new(src.pending())]).await?;
            src.consume(n);
            head = &[];
            if src.read_more(BUF_BYTES).await.map_err(RelayError::Read)? == 0 {
                return Ok(());
            }
        },
    }
}

/// Reads more of a body; the end of the stream is an error.
async fn fill(src: &mut Buffered) -> Result<(), RelayError> {
    match src.read_more(BUF_BYTES).await {
        Ok(0) => Err(RelayError::Read(io::ErrorKind::UnexpectedEof.into())),
        Ok(_) => Ok(()),
        Err(e) => Err(RelayError::Read(e)),
    }
}

/// Writes all of `bufs` (vectored writes; empty slices are skipped).
pub(crate) async fn write_all(
    dst: &mut TcpStream,
    bufs: &mut [IoSlice<'_>],
) -> Result<(), RelayError> {
    let mut bufs = bufs;
    IoSlice::advance_slices(&mut bufs, 0);
    while bufs.iter().any(|b| !b.is_empty()) {
        let n = dst.write_vectored(bufs).await.map_err(RelayError::Write)?;
        if n == 0 {
            return Err(RelayError::Write(io::ErrorKind::WriteZero.into()));
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}
