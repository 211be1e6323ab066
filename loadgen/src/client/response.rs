//! One request/response exchange on an open connection: write the prebuilt
//! request, then read until the [`Reader`] has the whole response.
//!
//! Reads go to the worker's [`Scratch`] buffer, shared by all the clients of
//! one worker thread: a client waits for its socket to be readable, then reads
//! and hands the bytes to its reader without awaiting in between, so the
//! buffer is never held by two clients at once and a connection has no read
//! buffer of its own (what makes thousands of connections cheap). TLS
//! connections read differently (see [`super::tls`]) but through the same
//! [`Reader`], with a buffer lent by [`Scratch::tls_buffer`].

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use reloadbench_model::outcome::FailureClass;
use tokio::net::TcpStream;

use super::Wire;
use super::reader::{Asked, Failed, Fed, Reader};

/// Size of a worker's scratch buffer: the most one read takes.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Size of a TLS read buffer: one TLS record's plaintext.
const TLS_BUFFER_BYTES: usize = 16 * 1024;

/// The read buffers of one worker thread: the scratch buffer, lent to one
/// client at a time between two awaits, and a pool of TLS read buffers, each
/// lent to one TLS exchange for its duration.
#[derive(Debug)]
pub(crate) struct Scratch {
    buf: RefCell<Box<[u8]>>,
    tls_pool: RefCell<Vec<Box<[u8]>>>,
}

impl Scratch {
    /// A buffer of [`SCRATCH_BYTES`] and an empty pool.
    pub(crate) fn new() -> Scratch {
        Scratch {
            buf: RefCell::new(vec![0u8; SCRATCH_BYTES].into_boxed_slice()),
            tls_pool: RefCell::new(Vec::new()),
        }
    }

    /// A TLS read buffer from the pool (a new one when it is empty), back to
    /// the pool when dropped.
    pub(crate) fn tls_buffer(&self) -> PooledBuffer<'_> {
        let buf = self
            .tls_pool
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0u8; TLS_BUFFER_BYTES].into_boxed_slice());
        PooledBuffer {
            pool: &self.tls_pool,
            buf: Some(buf),
        }
    }
}

/// A TLS read buffer lent by [`Scratch::tls_buffer`].
#[derive(Debug)]
pub(crate) struct PooledBuffer<'a> {
    pool: &'a RefCell<Vec<Box<[u8]>>>,
    buf: Option<Box<[u8]>>,
}

impl Deref for PooledBuffer<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or_default()
    }
}

impl DerefMut for PooledBuffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.buf.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for PooledBuffer<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.borrow_mut().push(buf);
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Whether the connection may be reused.
    pub(crate) keep_alive: bool,
    /// Body bytes (data bytes for chunked bodies).
    pub(crate) body_bytes: u64,
    /// Bytes read from the socket.
    pub(crate) total_bytes: u64,
    /// When the request was written.
    pub(crate) written: Instant,
    /// When the first byte of the final response arrived (interim 1xx
    /// responses do not count).
    pub(crate) first_byte: Instant,
    /// The `Server` header, when asked for.
    pub(crate) server: Option<String>,
}

/// One read into the scratch buffer, handed to `reader`: `None` when the
/// socket had nothing after all (readiness can be stale).
fn read_once(
    stream: &TcpStream,
    scratch: &Scratch,
    reader: &mut Reader,
) -> Option<Result<Fed, Failed>> {
    let mut buf = scratch.buf.borrow_mut();
    match stream.try_read(&mut buf) {
        Ok(0) => Some(reader.eof().map(|()| Fed::Done)),
        Ok(n) => Some(reader.feed(&buf[..n])),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => None,
        Err(_) => Some(Err(reader.read_error())),
    }
}

/// Writes `request` and reads one complete response.
pub(crate) async fn exchange(
    stream: &mut TcpStream,
    request: Wire<'_>,
    scratch: &Scratch,
    asked: Asked,
) -> Result<Response, Failed> {
    if let Err(e) = request.write_to(stream).await {
        return Err(write_failure(&e));
    }
    let written = Instant::now();
    let mut reader = Reader::new(asked);
    loop {
        if stream.readable().await.is_err() {
            return Err(reader.read_error());
        }
        match read_once(stream, scratch, &mut reader) {
            None | Some(Ok(Fed::More)) => {}
            Some(Ok(Fed::Done)) => break,
            Some(Err(failed)) => return Err(failed),
        }
    }
    Ok(Response::from_reader(reader, written))
}

/// The failure of a request whose write failed with `e`.
///
/// A reset seen while writing is the same server event as a reset seen by
/// the first read (which of the two notices it is up to the client's
/// scheduling): no response byte arrived.
pub(crate) fn write_failure(e: &io::Error) -> Failed {
    let class = if e.raw_os_error() == Some(libc::ECONNRESET) {
        FailureClass::Reset
    } else {
        FailureClass::WriteError
    };
    Failed { class, bytes: 0 }
}

impl Response {
    /// The response of a reader that said [`Fed::Done`], for a request
    /// written at `written`.
    pub(crate) fn from_reader(reader: Reader, written: Instant) -> Response {
        let done = reader
            .finish()
            .expect("a reader that said Done has a final head");
        Response {
            status: done.head.status,
            keep_alive: done.head.keep_alive,
            body_bytes: done.body_bytes,
            total_bytes: done.total_bytes,
            written,
            first_byte: done.first_byte.unwrap_or(written),
            server: done.head.server,
        }
    }
}
