//! One request/response exchange on an open connection: write the prebuilt
//! request, read and parse the head with httparse (skipping interim 1xx
//! responses, RFC 9110 §15.2), read the body by Content-Length, chunked
//! framing or until EOF. Each failure is sorted by the phase it happened in.
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

use super::chunked::Chunked;

/// Maximum number of response headers.
const MAX_HEADERS: usize = 64;

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

/// How the body is delimited.
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilEof,
}

struct Head {
    status: u16,
    keep_alive: bool,
    framing: Framing,
    server: Option<String>,
    len: usize,
}

fn fail(class: FailureClass, bytes: usize) -> Failed {
    Failed {
        class,
        bytes: bytes as u64,
    }
}

fn parse_head(buf: &[u8], head_request: bool, want_server: bool) -> Result<Option<Head>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let status = resp.code.ok_or(())?;
    let mut keep_alive = resp.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    let mut server = None;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| ())?;
            let n: u64 = v.trim().parse().map_err(|_| ())?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if want_server && name.eq_ignore_ascii_case(b"server") {
            server = Some(String::from_utf8_lossy(h.value).into_owned());
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::UntilEof
    };
    Ok(Some(Head {
        status,
        keep_alive,
        framing,
        server,
        len,
    }))
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
            match parse_head(&buf[..filled], asked.head_request, asked.want_server) {
                Ok(Some(head)) if head.status == 101 && !asked.upgrade => {
                    // Switching to a protocol the request did not ask for.
                    return Err(fail(FailureClass::BadResponse, skipped + filled));
                }
                Ok(Some(head)) if is_interim(head.status) => {
                    buf.copy_within(head.len..filled, 0);
                    filled -= head.len;
                    skipped += head.len;
                    if filled == 0 {
                        first_byte = None;
                    }
                }
                Ok(Some(head)) => break 'head head,
                Ok(None) if filled == buf.len() => {
                    return Err(fail(FailureClass::BadResponse, skipped + filled));
                }
                Ok(None) => break,
                Err(()) => return Err(fail(FailureClass::BadResponse, skipped + filled)),
            }
        }
    };
    if head.status == 101 {
        // What follows is the new protocol: not read, and not reused.
        head.framing = Framing::Empty;
        head.keep_alive = false;
    }
    let first_byte = first_byte.unwrap_or(written);
    let mut total = (skipped + filled) as u64;
    let have = (filled - head.len) as u64;
    let body_bytes = match head.framing {
        Framing::Empty => 0,
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
            let mut dec = Chunked::new();
            let bad = |total: u64| fail(FailureClass::BadResponse, total as usize);
            let mut done = dec.feed(&buf[head.len..filled]).map_err(|_| bad(total))?;
            while !done {
                match stream.read(buf).await {
                    Ok(0) => return Err(fail(FailureClass::Truncated, total as usize)),
                    Ok(r) => {
                        total += r as u64;
                        done = dec.feed(&buf[..r]).map_err(|_| bad(total))?;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Err(fail(FailureClass::Truncated, total as usize)),
                }
            }
            dec.data_bytes
        }
        Framing::UntilEof => {
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

    #[test]
    fn head_parsing() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nab",
            false,
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.status, h.keep_alive, h.server.as_deref()),
            (200, true, Some("x"))
        );
        assert!(matches!(h.framing, Framing::Length(5)));
        let h = parse_head(
            b"HTTP/1.1 502 Bad\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive && matches!(h.framing, Framing::Chunked));
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", false, false)
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive && matches!(h.framing, Framing::UntilEof));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false, false)
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"garbage\r\n\r\n", false, false).is_err());
        assert!(
            parse_head(
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                false,
                false
            )
            .is_err()
        );
    }
}
