//! One request/response exchange on an open connection: write the prebuilt
//! request, then read until the [`Reader`] has the whole response.
//!
//! Reads go to the worker's [`Scratch`] buffer, shared by all the clients of
//! one worker thread: a client waits for its socket to be readable, then reads
//! and hands the bytes to its reader without awaiting in between, so the
//! buffer is never held by two clients at once and a connection has no read
//! buffer of its own (what makes thousands of connections cheap).

use std::cell::RefCell;
use std::io::ErrorKind;
use std::time::Instant;

use reloadbench_model::outcome::FailureClass;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::reader::{Asked, Failed, Fed, Reader};

/// Size of a worker's scratch buffer: the most one read takes.
const SCRATCH_BYTES: usize = 64 * 1024;

/// The read buffer of one worker thread, lent to one client at a time.
#[derive(Debug)]
pub(crate) struct Scratch(RefCell<Box<[u8]>>);

impl Scratch {
    /// A buffer of [`SCRATCH_BYTES`].
    pub(crate) fn new() -> Scratch {
        Scratch(RefCell::new(vec![0u8; SCRATCH_BYTES].into_boxed_slice()))
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
    let mut buf = scratch.0.borrow_mut();
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
    request: &[u8],
    scratch: &Scratch,
    asked: Asked,
) -> Result<Response, Failed> {
    if let Err(e) = stream.write_all(request).await {
        // A reset seen while writing is the same server event as a reset
        // seen by the first read (which of the two notices it is up to the
        // client's scheduling): no response byte arrived.
        let class = if e.raw_os_error() == Some(libc::ECONNRESET) {
            FailureClass::Reset
        } else {
            FailureClass::WriteError
        };
        return Err(Failed { class, bytes: 0 });
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
    let done = reader
        .finish()
        .expect("a reader that said Done has a final head");
    Ok(Response {
        status: done.head.status,
        keep_alive: done.head.keep_alive,
        body_bytes: done.body_bytes,
        total_bytes: done.total_bytes,
        written,
        first_byte: done.first_byte.unwrap_or(written),
        server: done.head.server,
    })
}
