//! Copying a message body from one socket to another, delimited by its framing.
//!
//! Bytes are read into the source's buffer and written out after every read, so a body
//! that arrives slowly reaches the other side as it comes. The head of the message is
//! written together with the body bytes already read with it (one vectored write), or
//! alone when there are none. A read or write that makes no progress for the stall limit
//! fails with [`io::ErrorKind::TimedOut`]. The writes of a response body are also held to
//! the minimum send rate ([`SendRate`]): only the time a write or flush waits on the
//! destination counts against it, never the time a read waits on the source.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::send_rate::{SendRate, TooSlow};

use reloadbench_http1::{
    ChunkError, ChunkedScanner, ConnectionNames, Framing, Piece, forward_trailers,
};

/// Read buffer size of a relayed body: reads ask for up to this much.
pub(crate) const BUF_BYTES: usize = 64 * 1024;

/// A socket (or one half of it) and the bytes read from it that are not consumed yet.
#[derive(Debug)]
pub(crate) struct Buffered<S = TcpStream> {
    pub(crate) stream: S,
    /// Bytes read; those before `start` are consumed.
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
}

impl<S> Buffered<S> {
    pub(crate) fn new(stream: S, buf: Vec<u8>) -> Buffered<S> {
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

    /// Replaces a buffer grown beyond `max` bytes (by a request body) with one of `max`,
    /// when nothing is pending, so that idle connections hold little memory.
    pub(crate) fn shrink(&mut self, max: usize) {
        if self.pending().is_empty() && self.buf.capacity() > max {
            self.buf = Vec::with_capacity(max);
            self.start = 0;
        }
    }

    /// Gives the buffer back (empty) and the socket.
    pub(crate) fn into_parts(mut self) -> (S, Vec<u8>) {
        self.buf.clear();
        (self.stream, self.buf)
    }
}

impl<S: AsyncRead + Unpin> Buffered<S> {
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
}

/// How long a relay's reads and writes may wait: each at most `stall` without progress,
/// and the writes held to the minimum send rate `rate`.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    pub(crate) stall: Duration,
    pub(crate) rate: SendRate,
}

impl Pace {
    /// Only `stall`, no minimum send rate.
    pub(crate) fn stall(stall: Duration) -> Pace {
        Pace {
            stall,
            rate: SendRate::off(),
        }
    }
}

/// Why a relay stopped before the end of the body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    /// Reading the source failed, stalled, or it ended before the body did.
    #[error("reading the body: {0}")]
    Read(#[source] io::Error),
    /// Writing to the destination failed or stalled.
    #[error("writing the body: {0}")]
    Write(#[source] io::Error),
    /// The destination took the body slower than the minimum send rate.
    #[error("writing the body: {0}")]
    TooSlow(#[source] TooSlow),
    /// The chunked coding is broken.
    #[error(transparent)]
    Chunked(#[from] ChunkError),
    /// The chunked coding is broken before anything was written (not even the head).
    #[error("{0}, before anything was sent")]
    ChunkedBeforeHead(ChunkError),
}

impl RelayError {
    /// The I/O error of a failed read or write (a broken coding as invalid data).
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            RelayError::Read(e) | RelayError::Write(e) => e,
            RelayError::TooSlow(e) => io::Error::new(io::ErrorKind::TimedOut, e),
            RelayError::Chunked(e) | RelayError::ChunkedBeforeHead(e) => {
                io::Error::new(io::ErrorKind::InvalidData, e)
            }
        }
    }
}

/// Writes `head` and relays the body framed by `framing` from `src` to `dst`; with
/// `dechunk`, a chunked body is written without its coding. A chunked body's trailer
/// section is forwarded without the fields `head_named` (those the message head's
/// `Connection` named). Consumes exactly the body from `src`'s pending bytes; what
/// follows it stays pending. `pace` bounds every read and write.
pub(crate) async fn relay<R, W>(
    src: &mut Buffered<R>,
    dst: &mut W,
    head: &[u8],
    framing: Framing,
    dechunk: bool,
    head_named: &ConnectionNames,
    pace: &mut Pace,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let stall = pace.stall;
    let rate = &mut pace.rate;
    let mut head = head;
    match framing {
        Framing::None => write_rated(dst, &mut [IoSlice::new(head)], stall, rate).await,
        Framing::Length(mut left) => loop {
            let pending = src.pending().len();
            let take = usize::try_from(left).map_or(pending, |l| l.min(pending));
            if take > 0 || !head.is_empty() {
                let body = src.pending().get(..take).unwrap_or_default();
                write_rated(
                    dst,
                    &mut [IoSlice::new(head), IoSlice::new(body)],
                    stall,
                    rate,
                )
                .await?;
                src.consume(take);
                left -= take as u64;
                head = &[];
            }
            if left == 0 {
                return Ok(());
            }
            fill(src, stall).await?;
        },
        Framing::Chunked => {
            let mut scanner = ChunkedScanner::default();
            let mut data = Vec::new();
            // The trailer section, held back until it is complete and checked; empty
            // (never allocated) for a body without trailer fields.
            let mut trailers = Vec::new();
            loop {
                data.clear();
                let mut body_end = None;
                let pending = src.pending();
                let scanned = scanner.scan(pending, |p| match p {
                    Piece::Data(r) => data.push(r),
                    Piece::Trailers(r) => {
                        body_end = Some(r.start);
                        let bytes = pending.get(r).unwrap_or_default();
                        // The usual end, `0\r\n\r\n`, needs no copy.
                        if !(trailers.is_empty() && bytes == b"\r\n") {
                            trailers.extend_from_slice(bytes);
                        }
                    }
                });
                let used = match scanned {
                    Ok(used) => used,
                    Err(e) if !head.is_empty() => return Err(RelayError::ChunkedBeforeHead(e)),
                    Err(e) => return Err(e.into()),
                };
                let mut filtered = Vec::new();
                let end: &[u8] = match (scanner.is_done(), trailers.is_empty()) {
                    (false, _) => &[],
                    (true, true) => b"\r\n",
                    (true, false) => match forward_trailers(&trailers, head_named, &mut filtered) {
                        Ok(()) => &filtered,
                        Err(e) if !head.is_empty() => {
                            return Err(RelayError::ChunkedBeforeHead(e));
                        }
                        Err(e) => return Err(e.into()),
                    },
                };
                let mut slices = Vec::with_capacity(data.len() + 2);
                slices.push(IoSlice::new(head));
                if dechunk {
                    slices.extend(
                        data.iter()
                            .filter_map(|r| pending.get(r.clone()))
                            .map(IoSlice::new),
                    );
                } else {
                    let body = pending.get(..body_end.unwrap_or(used)).unwrap_or_default();
                    slices.push(IoSlice::new(body));
                    slices.push(IoSlice::new(end));
                }
                write_rated(dst, &mut slices, stall, rate).await?;
                src.consume(used);
                head = &[];
                if scanner.is_done() {
                    return Ok(());
                }
                fill(src, stall).await?;
            }
        }
        Framing::UntilClose => loop {
            let n = src.pending().len();
            let mut out = [IoSlice::new(head), IoSlice::new(src.pending())];
            write_rated(dst, &mut out, stall, rate).await?;
            src.consume(n);
            head = &[];
            if read_some(src, stall).await? == 0 {
                return Ok(());
            }
        },
    }
}

/// Reads more of a body; the end of the stream is an error.
async fn fill<R: AsyncRead + Unpin>(
    src: &mut Buffered<R>,
    stall: Duration,
) -> Result<(), RelayError> {
    match read_some(src, stall).await? {
        0 => Err(RelayError::Read(io::ErrorKind::UnexpectedEof.into())),
        _ => Ok(()),
    }
}

/// Reads once, waiting at most `stall`; `Ok(0)` at the end of the stream.
async fn read_some<R: AsyncRead + Unpin>(
    src: &mut Buffered<R>,
    stall: Duration,
) -> Result<usize, RelayError> {
    let read = tokio::time::timeout(stall, src.read_more(BUF_BYTES)).await;
    read.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        .map_err(RelayError::Read)
}

/// Writes all of `bufs` (vectored writes; empty slices are skipped); each write may
/// wait at most `stall`, and so may the flush after them.
pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
    dst: &mut W,
    bufs: &mut [IoSlice<'_>],
    stall: Duration,
) -> Result<(), RelayError> {
    write_rated(dst, bufs, stall, &mut SendRate::off()).await
}

/// [`write_all`] held to the minimum send rate `rate` too.
async fn write_rated<W: AsyncWrite + Unpin>(
    dst: &mut W,
    bufs: &mut [IoSlice<'_>],
    stall: Duration,
    rate: &mut SendRate,
) -> Result<(), RelayError> {
    let mut bufs = bufs;
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let (n, waited) = wait_on(pin!(dst.write_vectored(bufs)), stall, rate).await?;
        if n == 0 {
            return Err(RelayError::Write(io::ErrorKind::WriteZero.into()));
        }
        rate.took(n);
        rate.waited(waited).map_err(RelayError::TooSlow)?;
        IoSlice::advance_slices(&mut bufs, n);
    }
    // A TLS stream may hold records back; a TCP stream has nothing to flush, so its
    // flush completes at the first poll and needs no timer.
    let ((), waited) = wait_on(pin!(dst.flush()), stall, rate).await?;
    rate.waited(waited).map_err(RelayError::TooSlow)
}

/// Runs a write or a flush to its end: polled once first (one that completes then
/// reads no clock and waits no time); else awaited for at most `stall`, the time
/// waited counted against `rate`, whose window may close (and cut the write) while it
/// waits. Returns the output and the time waited not yet counted against `rate`.
async fn wait_on<F, T>(
    mut io: Pin<&mut F>,
    stall: Duration,
    rate: &mut SendRate,
) -> Result<(T, Duration), RelayError>
where
    F: Future<Output = io::Result<T>>,
{
    let first = std::future::poll_fn(|cx| Poll::Ready(io.as_mut().poll(cx))).await;
    if let Poll::Ready(r) = first {
        return r.map(|v| (v, Duration::ZERO)).map_err(RelayError::Write);
    }
    let timed_out = || RelayError::Write(io::ErrorKind::TimedOut.into());
    if !rate.is_on() {
        let done = tokio::time::timeout(stall, io)
            .await
            .map_err(|_| timed_out())?;
        return done.map(|v| (v, Duration::ZERO)).map_err(RelayError::Write);
    }
    let at =
        |from: Instant, d: Duration| Instant::from_std(crate::deadline::after(from.into_std(), d));
    let mut since = Instant::now();
    let stall_at = at(since, stall);
    loop {
        let window_full_at = at(since, rate.left());
        match tokio::time::timeout_at(stall_at.min(window_full_at), io.as_mut()).await {
            Ok(done) => {
                let waited = since.elapsed();
                return done.map(|v| (v, waited)).map_err(RelayError::Write);
            }
            Err(_) => {
                let now = Instant::now();
                if now >= stall_at {
                    return Err(timed_out());
                }
                rate.waited(now.saturating_duration_since(since))
                    .map_err(RelayError::TooSlow)?;
                since = now;
            }
        }
    }
}
