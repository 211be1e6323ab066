//! One request/response exchange on an open connection: write the prebuilt
//! request, read and parse the head with reloadbench-http1's client parser
//! (skipping interim 1xx responses, RFC 9110 §15.2), read the body by
//! Content-Length, chunked framing (bare LF line endings accepted:
//! [`LineEndings::CrlfOrLf`]) or until EOF. Each failure is sorted by the phase
//! it happened in.
//!
//! A `101 Switching Protocols` is the final response when the request asked
//! to upgrade (it carries an `Upgrade` header): the exchange ends with its
//! head and the connection is not reused (loadgen never speaks the new
//! protocol). A 101 to a request that did not ask is a bad response.

use std::io::ErrorKind;
use std::time::Instant;

use reloadbench_model::outcome::FailureClass;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use reloadbench_http1::{
    ChunkedScanner, ClientHead, Framing, LineEndings, Piece, parse_client_response,
};

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

/// A failed exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failed {
    /// The class.
    pub(crate) class: FailureClass,
    /// Bytes read before the failure.
    pub(crate) bytes: u64,
}

/// What the exchange keeps of a final response head.
struct Head {
    status: u16,
    keep_alive: bool,
    framing: Framing,
    server: Option<String>,
    len: usize,
}

impl Head {
    /// The parts of `head` the exchange needs; the `Server` value only when `want_server`.
    fn of(head: &ClientHead<'_>, want_server: bool) -> Head {
        Head {
            status: head.status,
            keep_alive: head.reusable,
            framing: head.body,
            server: head
                .server
                .filter(|_| want_server)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            len: head.head_len,
        }
    }
}

fn fail(class: FailureClass, bytes: usize) -> Failed {
    Failed {
        class,
        bytes: bytes as u64,
    }
}

/// What an exchange needs to know about its request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked {
    /// The method is HEAD: responses have no body.
    pub(crate) head_request: bool,
    /// The request carries an `Upgrade` header: a 101 is a final response.
    pub(crate) upgrade: bool,
    /// Keep the `Server` header of the response.
    pub(crate) want_server: bool,
}

/// Whether a complete head is not the final response: any 1xx but 101 (a
/// 101 ends the exchange: it answers an upgrade request, or is refused).
fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// Writes `request` and reads one complete response, using `buf` as scratch.
pub(crate) async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut [u8],
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
        return Err(fail(class, 0));
    }
    let written = Instant::now();
    // Bytes in `buf`, and bytes of interim responses already skipped.
    let mut filled = 0;
    let mut skipped = 0;
    let mut first_byte = None;
    let mut head = 'head: loop {
        let seen = skipped + filled;
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(0) if seen == 0 => return Err(fail(FailureClass::Closed, 0)),
            Ok(0) => return Err(fail(FailureClass::Truncated, seen)),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) if seen == 0 => return Err(fail(FailureClass::Reset, 0)),
            Err(_) => return Err(fail(FailureClass::Truncated, seen)),
        };
        first_byte.get_or_insert_with(Instant::now);
        filled += n;
        loop {
            match parse_client_response(&buf[..filled], asked.head_request) {
                Ok(Some(head)) if head.status == 101 && !asked.upgrade => {
                    // Switching to a protocol the request did not ask for.
                    return Err(fail(FailureClass::BadResponse, skipped + filled));
                }
                Ok(Some(head)) if is_interim(head.status) => {
                    let len = head.head_len;
                    buf.copy_within(len..filled, 0);
                    filled -= len;
                    skipped += len;
                    if filled == 0 {
                        first_byte = None;
                    }
                }
                Ok(Some(head)) => break 'head Head::of(&head, asked.want_server),
                Ok(None) if filled == buf.len() => {
                    return Err(fail(FailureClass::BadResponse, skipped + filled));
                }
                Ok(None) => break,
                Err(_) => return Err(fail(FailureClass::BadResponse, skipped + filled)),
            }
        }
    };
    if head.status == 101 {
        // What follows is the new protocol: not read, and not reused.
        head.framing = Framing::None;
        head.keep_alive = false;
    }
    let first_byte = first_byte.unwrap_or(written);
    let mut total = (skipped + filled) as u64;
    let have = (filled - head.len) as u64;
    let body_bytes = match head.framing {
        Framing::None => 0,
        Framing::Length(n) => {
            let mut got = have.min(n);
            while got < n {
                match stream.read(buf).await {
                    Ok(0) => return Err(fail(FailureClass::Truncated, total as usize)),
                    Ok(r) => {
                        total += r as u64;
                        got += (r as u64).min(n - got);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Err(fail(FailureClass::Truncated, total as usize)),
                }
            }
            n
        }
        Framing::Chunked => {
            let mut scanner = ChunkedScanner::new(LineEndings::CrlfOrLf);
            let mut data_bytes = 0u64;
            let mut count = |piece: Piece| {
                if let Piece::Data(r) = piece {
                    data_bytes += r.len() as u64;
                }
            };
            let bad = |total: u64| fail(FailureClass::BadResponse, total as usize);
            scanner
                .scan(&buf[head.len..filled], &mut count)
                .map_err(|_| bad(total))?;
            while !scanner.is_done() {
                match stream.read(buf).await {
                    Ok(0) => return Err(fail(FailureClass::Truncated, total as usize)),
                    Ok(r) => {
                        total += r as u64;
                        scanner
                            .scan(&buf[..r], &mut count)
                            .map_err(|_| bad(total))?;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Err(fail(FailureClass::Truncated, total as usize)),
                }
            }
            data_bytes
        }
        Framing::UntilClose => {
            let mut got = have;
            loop {
                match stream.read(buf).await {
                    Ok(0) => break,
                    Ok(r) => {
                        total += r as u64;
                        got += r as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Err(fail(FailureClass::Truncated, total as usize)),
                }
            }
            got
        }
    };
    Ok(Response {
        status: head.status,
        keep_alive: head.keep_alive,
        body_bytes,
        total_bytes: total,
        written,
        first_byte,
        server: head.server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interim_statuses() {
        for status in [100, 102, 103, 150, 199] {
            assert!(is_interim(status));
        }
        // Final when asked for; refused by `exchange` before this test when not.
        assert!(!is_interim(101));
        for status in [99, 200, 204, 304, 404, 502] {
            assert!(!is_interim(status));
        }
    }
}
