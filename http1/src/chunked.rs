//! A scanner of the chunked transfer coding (RFC 9112 7.1): it follows a chunked body
//! byte by byte, across reads, to find where it ends, which bytes are data and which
//! are the trailer section. Chunk lines (size and extensions) are limited to
//! [`MAX_CHUNK_LINE`] bytes, the trailer section to [`MAX_TRAILERS`] bytes.
//!
//! Lines end in CRLF ([`LineEndings::Crlf`], the default). [`LineEndings::CrlfOrLf`]
//! also takes a bare LF as the end of a chunk line, of chunk data, of a trailer line and
//! of the body (RFC 9112 2.2 lets a recipient do so); every other rule and limit is the
//! same in both modes.

use std::fmt;
use std::ops::Range;

use crate::MAX_TRAILERS;
use crate::options::LineEndings;

/// Longest chunk line (size and extensions, with its CR) accepted.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// A chunked body that does not follow the coding, or whose trailer section is too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The coding is broken, or a chunk line is longer than [`MAX_CHUNK_LINE`], or a
    /// trailer field line is malformed (answered with 400 for requests).
    #[error("malformed chunked body{at}: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
        /// Where it was found.
        at: At,
    },
    /// The trailer section is larger than [`MAX_TRAILERS`] or has more than
    /// [`crate::MAX_HEADERS`] fields (answered with 431 for requests).
    #[error("chunked body trailers too large{at}")]
    TrailersTooLarge {
        /// Where the limit was passed.
        at: At,
    },
}

/// Where in a chunked body (counted from its first byte) an error was found, when known:
/// [`ChunkedScanner`] always knows, [`crate::forward_trailers`] knows the offset in the
/// trailer section only for some errors. Displayed as ` at byte N` (or nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// This byte of the body.
    Body(u64),
    /// This byte of the trailer section.
    Trailers(usize),
    /// Not known (the field-line parser does not say).
    Unknown,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Body(n) => write!(f, " at byte {n} of the body"),
            At::Trailers(n) => write!(f, " at byte {n} of the trailer section"),
            At::Unknown => Ok(()),
        }
    }
}

/// A part of a scanned input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Chunk data.
    Data(Range<usize>),
    /// Bytes of the trailer section (field lines and the final CRLF).
    Trailers(Range<usize>),
}

/// Where the scanner is in the coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size (`digits` so far).
    Size { digits: u8 },
    /// Whitespace after a chunk size, before `;` (RFC 9112 7.1.1: BWS).
    SizeSpace,
    /// A chunk extension, up to CR.
    Extension,
    /// LF ending a chunk-size line.
    SizeLf,
    /// Chunk data, this many bytes left.
    Data(u64),
    /// CR after chunk data.
    DataCr,
    /// LF after chunk data.
    DataLf,
    /// Start of a trailer line, or of the final CRLF.
    TrailerStart,
    /// Inside a trailer field line, up to CR.
    Trailer,
    /// LF ending a trailer field line.
    TrailerLf,
    /// LF of the final CRLF.
    FinalLf,
    /// The body is complete.
    Done,
}

/// Follows one chunked body.
#[derive(Clone, Debug)]
pub struct ChunkedScanner {
    state: State,
    size: u64,
    /// Bytes of the current chunk line, or of the trailer section so far.
    line: usize,
    /// Bytes of the body scanned by earlier calls (for error offsets).
    seen: u64,
    /// A bare LF ends a line too.
    bare_lf: bool,
}

/// The strict scanner ([`LineEndings::Crlf`]).
impl Default for ChunkedScanner {
    fn default() -> Self {
        ChunkedScanner::new(LineEndings::Crlf)
    }
}

impl ChunkedScanner {
    /// A scanner at the start of a body whose lines end as `endings` says.
    #[inline]
    pub fn new(endings: LineEndings) -> Self {
        ChunkedScanner {
            state: State::Size { digits: 0 },
            size: 0,
            line: 0,
            seen: 0,
            bare_lf: endings == LineEndings::CrlfOrLf,
        }
    }

    /// A malformed-coding error at byte `i` of the current input.
    #[cold]
    fn bad(&self, i: usize, what: &'static str) -> ChunkError {
        ChunkError::Malformed {
            what,
            at: At::Body(self.seen + i as u64),
        }
    }

    /// The state after the end of a chunk-size line.
    #[inline]
    fn size_line_end(&mut self) -> State {
        self.line = 0;
        if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data(std::mem::take(&mut self.size))
        }
    }

    /// Whether the body is complete.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans `input`, the next bytes of the body, and returns how many of them belong
    /// to the body (all of them unless the body ends inside `input`). `piece` is called
    /// with the ranges of `input` that are chunk data, and with the one range (at the
    /// end of the scanned bytes) that belongs to the trailer section.
    pub fn scan(
        &mut self,
        input: &[u8],
        mut piece: impl FnMut(Piece),
    ) -> Result<usize, ChunkError> {
        let mut trailers_from = None;
        let used = self.scan_into(input, &mut piece, &mut trailers_from)?;
        self.seen += used as u64;
        if let Some(from) = trailers_from {
            piece(Piece::Trailers(from..used));
        }
        Ok(used)
    }

    fn scan_into(
        &mut self,
        input: &[u8],
        piece: &mut impl FnMut(Piece),
        trailers_from: &mut Option<usize>,
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Done => return Ok(i),
                State::Data(left) => {
                    let avail = input.len() - i;
                    let take = usize::try_from(left).map_or(avail, |l| l.min(avail));
                    piece(Piece::Data(i..i + take));
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::Size { digits } => {
                    self.count_chunk_line(i)?;
                    match (b as char).to_digit(16) {
                        Some(d) if digits < 16 => {
                            self.size = self.size << 4 | u64::from(d);
                            State::Size { digits: digits + 1 }
                        }
                        Some(_) => return Err(self.bad(i, "chunk size too large")),
                        None if digits == 0 => return Err(self.bad(i, "chunk size expected")),
                        None => match b {
                            b';' => State::Extension,
                            b' ' | b'\t' => State::SizeSpace,
                            b'\r' => State::SizeLf,
                            b'\n' if self.bare_lf => self.size_line_end(),
                            _ => return Err(self.bad(i, "bad chunk size")),
                        },
                    }
                }
                State::SizeSpace => {
                    self.count_chunk_line(i)?;
                    match b {
                        b' ' | b'\t' => State::SizeSpace,
                        b';' => State::Extension,
                        _ => {
                            return Err(self.bad(i, "chunk extension expected after whitespace"));
                        }
                    }
                }
                State::Extension => {
                    self.count_chunk_line(i)?;
                    match b {
                        b'\r' => State::SizeLf,
                        b'\n' if self.bare_lf => self.size_line_end(),
                        b'\n' => return Err(self.bad(i, "bare LF in chunk extension")),
                        _ => State::Extension,
                    }
                }
                State::SizeLf if b == b'\n' => self.size_line_end(),
                State::SizeLf => return Err(self.bad(i, "CRLF expected after chunk size")),
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    b'\n' if self.bare_lf => State::Size { digits: 0 },
                    _ => return Err(self.bad(i, "CRLF expected after chunk data")),
                },
                State::DataLf => match b {
                    b'\n' => State::Size { digits: 0 },
                    _ => return Err(self.bad(i, "CRLF expected after chunk data")),
                },
                State::TrailerStart => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\r' => State::FinalLf,
                        b'\n' if self.bare_lf => State::Done,
                        b'\n' => return Err(self.bad(i, "bare LF in trailers")),
                        _ => State::Trailer,
                    }
                }
                State::Trailer => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\r' => State::TrailerLf,
                        b'\n' if self.bare_lf => State::TrailerStart,
                        b'\n' => return Err(self.bad(i, "bare LF in trailers")),
                        _ => State::Trailer,
                    }
                }
                State::TrailerLf => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\n' => State::TrailerStart,
                        _ => return Err(self.bad(i, "CRLF expected after a trailer")),
                    }
                }
                State::FinalLf => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\n' => State::Done,
                        _ => return Err(self.bad(i, "CRLF expected at the end")),
                    }
                }
            };
            i += 1;
        }
        Ok(i)
    }

    /// Counts one byte of a chunk line, at `i` of the input (checked before the byte
    /// itself).
    #[inline]
    fn count_chunk_line(&mut self, i: usize) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(self.bad(i, "chunk line longer than 4 KiB"));
        }
        Ok(())
    }

    /// Counts one byte of the trailer section, at `i` of the input (checked before the
    /// byte itself); the section starts in this input at the first such byte.
    #[inline]
    fn count_trailers(
        &mut self,
        i: usize,
        trailers_from: &mut Option<usize>,
    ) -> Result<(), ChunkError> {
        trailers_from.get_or_insert(i);
        self.line += 1;
        if self.line > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLarge {
                at: At::Body(self.seen + i as u64),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `body` split at `split` with `endings`; returns (data bytes, done).
    fn scan_split(body: &[u8], split: usize, endings: LineEndings) -> (u64, bool, bool) {
        let mut s = ChunkedScanner::new(endings);
        let mut data = 0u64;
        let mut count = |p: Piece| {
            if let Piece::Data(r) = p {
                data += r.len() as u64;
            }
        };
        s.scan(&body[..split], &mut count).unwrap();
        let done_early = s.is_done();
        s.scan(&body[split..], &mut count).unwrap();
        let done = s.is_done();
        (data, done_early, done)
    }

    // loadgen's decoder tests, against the one scanner.
    #[test]
    fn decodes_in_any_split() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
        for endings in [LineEndings::Crlf, LineEndings::CrlfOrLf] {
            for split in 0..body.len() {
                let (data, early, done) = scan_split(body, split, endings);
                assert!(!early, "done too early at {split}");
                assert!(done, "not done at {split}");
                assert_eq!(data, 31);
            }
        }
    }

    #[test]
    fn rejects_garbage() {
        for endings in [LineEndings::Crlf, LineEndings::CrlfOrLf] {
            for bad in [&b"zz\r\n"[..], b"2\r\nabX", b"\r\n", b"\n"] {
                assert!(
                    ChunkedScanner::new(endings).scan(bad, |_| {}).is_err(),
                    "{endings:?} {bad:?}"
                );
            }
        }
    }

    /// Bare LF after the size, an extension, the data, a trailer and at the end.
    const BARE_LF: &[u8] = b"5\nhello\n3;e=1\nabc\r\n0\nX-T: 1\n\n";

    #[test]
    fn bare_lf_line_endings_are_read_when_asked() {
        for split in 0..BARE_LF.len() {
            let (data, early, done) = scan_split(BARE_LF, split, LineEndings::CrlfOrLf);
            assert!(!early && done, "split at {split}");
            assert_eq!(data, 8);
        }
    }

    #[test]
    fn bare_lf_line_endings_are_refused_by_default() {
        let err = ChunkedScanner::default().scan(BARE_LF, |_| {}).unwrap_err();
        assert_eq!(
            err,
            ChunkError::Malformed {
                what: "bad chunk size",
                at: At::Body(1),
            }
        );
        // Each bare LF on its own is refused too.
        for bad in [
            &b"5;e\nhello\r\n"[..],
            b"5\r\nhello\n",
            b"0\r\nX: 1\n\r\n",
            b"0\r\n\n",
        ] {
            assert!(
                ChunkedScanner::default().scan(bad, |_| {}).is_err(),
                "{bad:?}"
            );
            assert!(
                ChunkedScanner::new(LineEndings::CrlfOrLf)
                    .scan(bad, |_| {})
                    .is_ok(),
                "{bad:?}"
            );
        }
    }
}
