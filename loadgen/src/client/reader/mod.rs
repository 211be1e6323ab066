//! Turning the bytes of one response into its outcome, without I/O: the
//! exchange feeds each read to a [`Reader`] and tells it about the end of the
//! stream or a read error; the reader parses the head with reloadbench-http1's
//! client parser (skipping interim 1xx responses, RFC 9110 §15.2), follows the
//! body by Content-Length, chunked framing (bare LF line endings accepted:
//! [`LineEndings::CrlfOrLf`]) or until EOF, and sorts each failure by the phase
//! it happened in.
//!
//! The reader keeps no copy of what it was fed, except a head that arrives in
//! pieces (rare: a head is usually one segment): those bytes wait in a buffer
//! of their own until the head is complete, then the buffer is freed. So a
//! connection costs no read buffer of its own; the reads themselves go to one
//! scratch buffer per worker thread.
//!
//! A `101 Switching Protocols` is the final response when the request asked to
//! upgrade (it carries an `Upgrade` header): the exchange ends with its head
//! and the connection is not reused (loadgen never speaks the new protocol). A
//! 101 to a request that did not ask is a bad response.

use std::time::Instant;

use reloadbench_http1::{
    ChunkedScanner, ClientHead, Framing, LineEndings, MAX_RESPONSE_HEAD, Piece,
    parse_client_response,
};
use reloadbench_model::outcome::FailureClass;

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

/// A failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed {
    /// The class.
    pub(crate) class: FailureClass,
    /// Bytes read before the failure.
    pub(crate) bytes: u64,
}

/// What the exchange keeps of the final response head.
#[derive(Debug)]
pub(crate) struct Head {
    /// Status code.
    pub(crate) status: u16,
    /// Whether the connection may be reused once the body is read.
    pub(crate) keep_alive: bool,
    /// The `Server` header, when asked for.
    pub(crate) server: Option<String>,
}

/// Where the reader is.
#[derive(Debug)]
enum Stage {
    /// Reading heads (interim ones are skipped).
    Head,
    /// Reading a body of this many bytes still to come.
    Length(u64),
    /// Reading a chunked body.
    Chunked(ChunkedScanner),
    /// Reading a body that ends with the connection.
    UntilClose,
    /// The response is complete.
    Done,
}

/// Whether the response is complete after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// More bytes are needed.
    More,
    /// The response is complete.
    Done,
}

/// What parsing heads left.
enum Step {
    /// The final head was parsed (and the body bytes after it taken).
    Fed(Fed),
    /// The head starting at this offset is not complete yet.
    Incomplete(usize),
}

/// Follows one response through the reads that carry it.
#[derive(Debug)]
pub(crate) struct Reader {
    asked: Asked,
    stage: Stage,
    /// The start of a head that did not arrive in one read (empty, and not
    /// allocated, otherwise).
    partial: Vec<u8>,
    /// Bytes read so far (interim responses included).
    total: u64,
    /// Body bytes (data bytes for chunked bodies).
    body: u64,
    /// When the first byte of the final response arrived.
    first_byte: Option<Instant>,
    head: Option<Head>,
    /// Bytes came after the end of the response: the server sent something no
    /// request asked for, so the connection is not reused.
    extra: bool,
}

/// Whether a complete head is not the final response: any 1xx but 101 (a
/// 101 ends the exchange: it answers an upgrade request, or is refused).
fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

impl Reader {
    /// A reader for the response to a request described by `asked`.
    pub(crate) fn new(asked: Asked) -> Reader {
        Reader {
            asked,
            stage: Stage::Head,
            partial: Vec::new(),
            total: 0,
            body: 0,
            first_byte: None,
            head: None,
            extra: false,
        }
    }

    fn fail(&self, class: FailureClass) -> Failed {
        Failed {
            class,
            bytes: self.total,
        }
    }

    /// Takes the next bytes read from the connection.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<Fed, Failed> {
        self.total += bytes.len() as u64;
        if !matches!(self.stage, Stage::Head) {
            return self.body_bytes(bytes);
        }
        if self.partial.is_empty() {
            return match self.head(bytes)? {
                Step::Fed(fed) => Ok(fed),
                Step::Incomplete(at) => {
                    self.partial.extend_from_slice(&bytes[at..]);
                    Ok(Fed::More)
                }
            };
        }
        let mut partial = std::mem::take(&mut self.partial);
        partial.extend_from_slice(bytes);
        match self.head(&partial)? {
            // The head is complete: its buffer is freed here.
            Step::Fed(fed) => Ok(fed),
            Step::Incomplete(at) => {
                partial.drain(..at);
                self.partial = partial;
                Ok(Fed::More)
            }
        }
    }

    /// Parses heads at the start of `input`; whatever follows the final head
    /// goes to the body.
    fn head(&mut self, input: &[u8]) -> Result<Step, Failed> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            if self.first_byte.is_none() && !rest.is_empty() {
                self.first_byte = Some(Instant::now());
            }
            match parse_client_response(rest, self.asked.head_request) {
                Ok(Some(head)) if head.head_len > MAX_RESPONSE_HEAD => {
                    // However the head was split into reads.
                    return Err(self.fail(FailureClass::BadResponse));
                }
                Ok(Some(head)) if head.status == 101 && !self.asked.upgrade => {
                    // Switching to a protocol the request did not ask for.
                    return Err(self.fail(FailureClass::BadResponse));
                }
                Ok(Some(head)) if is_interim(head.status) => {
                    at += head.head_len;
                    if at == input.len() {
                        self.first_byte = None;
                    }
                }
                Ok(Some(head)) => {
                    let len = head.head_len;
                    self.start_body(&head);
                    return self.body_bytes(&rest[len..]).map(Step::Fed);
                }
                Ok(None) if rest.len() >= MAX_RESPONSE_HEAD => {
                    return Err(self.fail(FailureClass::BadResponse));
                }
                Ok(None) => return Ok(Step::Incomplete(at)),
                Err(_) => return Err(self.fail(FailureClass::BadResponse)),
            }
        }
    }

    /// Records the final head and where its body ends.
    fn start_body(&mut self, head: &ClientHead<'_>) {
        let mut framing = head.body;
        let mut keep_alive = head.reusable;
        if head.status == 101 {
            // What follows is the new protocol: not read, and not reused.
            framing = Framing::None;
            keep_alive = false;
        }
        self.stage = match framing {
            Framing::None | Framing::Length(0) => Stage::Done,
            Framing::Length(n) => Stage::Length(n),
            Framing::Chunked => Stage::Chunked(ChunkedScanner::new(LineEndings::CrlfOrLf)),
            Framing::UntilClose => Stage::UntilClose,
        };
        if let Framing::Length(n) = framing {
            self.body = n;
        }
        self.head = Some(Head {
            status: head.status,
            keep_alive,
            server: head
                .server
                .filter(|_| self.asked.want_server)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
        });
    }

    /// Takes body bytes (bytes after the end of the body are ignored).
    fn body_bytes(&mut self, bytes: &[u8]) -> Result<Fed, Failed> {
        match &mut self.stage {
            Stage::Head => unreachable!("body bytes before the head"),
            Stage::Done => self.extra |= !bytes.is_empty(),
            Stage::Length(left) => {
                let taken = (bytes.len() as u64).min(*left);
                *left -= taken;
                if *left == 0 {
                    self.stage = Stage::Done;
                    self.extra |= taken < bytes.len() as u64;
                }
            }
            Stage::Chunked(scanner) => {
                let mut data = 0u64;
                let scanned = scanner.scan(bytes, |piece| {
                    if let Piece::Data(r) = piece {
                        data += r.len() as u64;
                    }
                });
                let done = scanner.is_done();
                self.body += data;
                let Ok(used) = scanned else {
                    return Err(self.fail(FailureClass::BadResponse));
                };
                if done {
                    self.stage = Stage::Done;
                    self.extra |= used < bytes.len();
                }
            }
            Stage::UntilClose => self.body += bytes.len() as u64,
        }
        Ok(if matches!(self.stage, Stage::Done) {
            Fed::Done
        } else {
            Fed::More
        })
    }

    /// The connection reached its end (a read returned 0): complete for a body
    /// that ends with the connection, a failure otherwise.
    pub(crate) fn eof(&mut self) -> Result<(), Failed> {
        match self.stage {
            Stage::UntilClose | Stage::Done => {
                self.stage = Stage::Done;
                Ok(())
            }
            Stage::Head if self.total == 0 => Err(self.fail(FailureClass::Closed)),
            _ => Err(self.fail(FailureClass::Truncated)),
        }
    }

    /// A read failed (a reset, typically): before any byte the connection was
    /// reset; after some, the response is truncated.
    pub(crate) fn read_error(&self) -> Failed {
        if matches!(self.stage, Stage::Head) && self.total == 0 {
            self.fail(FailureClass::Reset)
        } else {
            self.fail(FailureClass::Truncated)
        }
    }

    /// The complete response's parts: head, body bytes, bytes read and when the
    /// first byte of the final response arrived. `None` before [`Fed::Done`].
    pub(crate) fn finish(self) -> Option<Finished> {
        match (self.stage, self.head) {
            (Stage::Done, Some(mut head)) => Some(Finished {
                head: {
                    head.keep_alive &= !self.extra;
                    head
                },
                body_bytes: self.body,
                total_bytes: self.total,
                first_byte: self.first_byte,
            }),
            _ => None,
        }
    }
}

/// A complete response, as the reader saw it.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The final head.
    pub(crate) head: Head,
    /// Body bytes (data bytes for chunked bodies).
    pub(crate) body_bytes: u64,
    /// Bytes read, interim responses included.
    pub(crate) total_bytes: u64,
    /// When the first byte of the final response arrived.
    pub(crate) first_byte: Option<Instant>,
}

#[cfg(test)]
mod tests;
