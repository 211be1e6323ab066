//! A scanner of the chunked transfer coding (RFC 9112 7.1): it follows a chunked body
//! byte by byte, across reads, to find where it ends, which bytes are data and which
//! are the trailer section. Chunk lines (size and extensions) are limited to
//! [`MAX_CHUNK_LINE`] bytes, the trailer section to [`MAX_TRAILERS`] bytes.

use std::ops::Range;

use crate::MAX_TRAILERS;

/// Longest chunk line (size and extensions, with its CR) accepted.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// A chunked body that does not follow the coding, or whose trailer section is too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The coding is broken, or a chunk line is longer than [`MAX_CHUNK_LINE`], or a
    /// trailer field line is malformed (answered with 400 for requests).
    #[error("malformed chunked body: {0}")]
    Malformed(&'static str),
    /// The trailer section is larger than [`MAX_TRAILERS`] or has more than
    /// [`crate::MAX_HEADERS`] fields (answered with 431 for requests).
    #[error("chunked body trailers too large")]
    TrailersTooLarge,
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
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        ChunkedScanner {
            state: State::Size { digits: 0 },
            size: 0,
            line: 0,
        }
    }
}

/// A malformed-coding error.
fn bad(what: &'static str) -> ChunkError {
    ChunkError::Malformed(what)
}

impl ChunkedScanner {
    /// Whether the body is complete.
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
                    self.count_chunk_line()?;
                    match (b as char).to_digit(16) {
                        Some(d) if digits < 16 => {
                            self.size = self.size << 4 | u64::from(d);
                            State::Size { digits: digits + 1 }
                        }
                        Some(_) => return Err(bad("chunk size too large")),
                        None if digits == 0 => return Err(bad("chunk size expected")),
                        None => match b {
                            b';' => State::Extension,
                            b' ' | b'\t' => State::SizeSpace,
                            b'\r' => State::SizeLf,
                            _ => return Err(bad("bad chunk size")),
                        },
                    }
                }
                State::SizeSpace => {
                    self.count_chunk_line()?;
                    match b {
                        b' ' | b'\t' => State::SizeSpace,
                        b';' => State::Extension,
                        _ => return Err(bad("chunk extension expected after whitespace")),
                    }
                }
                State::Extension => {
                    self.count_chunk_line()?;
                    match b {
                        b'\r' => State::SizeLf,
                        b'\n' => return Err(bad("bare LF in chunk extension")),
                        _ => State::Extension,
                    }
                }
                State::SizeLf if b == b'\n' => {
                    self.line = 0;
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data(std::mem::take(&mut self.size))
                    }
                }
                State::SizeLf => return Err(bad("CRLF expected after chunk size")),
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return Err(bad("CRLF expected after chunk data")),
                },
                State::DataLf => match b {
                    b'\n' => State::Size { digits: 0 },
                    _ => return Err(bad("CRLF expected after chunk data")),
                },
                State::TrailerStart => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\r' => State::FinalLf,
                        b'\n' => return Err(bad("bare LF in trailers")),
                        _ => State::Trailer,
                    }
                }
                State::Trailer => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\r' => State::TrailerLf,
                        b'\n' => return Err(bad("bare LF in trailers")),
                        _ => State::Trailer,
                    }
                }
                State::TrailerLf => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\n' => State::TrailerStart,
                        _ => return Err(bad("CRLF expected after a trailer")),
                    }
                }
                State::FinalLf => {
                    self.count_trailers(i, trailers_from)?;
                    match b {
                        b'\n' => State::Done,
                        _ => return Err(bad("CRLF expected at the end")),
                    }
                }
            };
            i += 1;
        }
        Ok(i)
    }

    /// Counts one byte of a chunk line (checked before the byte itself).
    #[inline]
    fn count_chunk_line(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(bad("chunk line longer than 4 KiB"));
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
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(())
    }
}
