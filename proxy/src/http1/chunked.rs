//! A scanner of the chunked transfer coding (RFC 9112 7.1): it follows a chunked body
//! byte by byte, across reads, to find where it ends and which bytes are data.

use std::ops::Range;

/// A chunked body that does not follow the coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct ChunkError(&'static str);

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
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        ChunkedScanner {
            state: State::Size { digits: 0 },
            size: 0,
        }
    }
}

impl ChunkedScanner {
    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans `input`, the next bytes of the body, and returns how many of them belong
    /// to the body (all of them unless the body ends inside `input`). `data` is called
    /// with the ranges of `input` that are chunk data.
    pub fn scan(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(Range<usize>),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Done => return Ok(i),
                State::Data(left) => {
                    let avail = input.len() - i;
                    let take = usize::try_from(left).map_or(avail, |l| l.min(avail));
                    data(i..i + take);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::Size { digits } => match (b as char).to_digit(16) {
                    Some(d) if digits < 16 => {
                        self.size = self.size << 4 | u64::from(d);
                        State::Size { digits: digits + 1 }
                    }
                    Some(_) => return Err(ChunkError("chunk size too large")),
                    None if digits == 0 => return Err(ChunkError("chunk size expected")),
                    None => match b {
                        b';' => State::Extension,
                        b' ' | b'\t' => State::SizeSpace,
                        b'\r' => State::SizeLf,
                        _ => return Err(ChunkError("bad chunk size")),
                    },
                },
                State::SizeSpace => match b {
                    b' ' | b'\t' => State::SizeSpace,
                    b';' => State::Extension,
                    _ => return Err(ChunkError("chunk extension expected after whitespace")),
                },
                State::Extension => match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err(ChunkError("bare LF in chunk extension")),
                    _ => State::Extension,
                },
                State::SizeLf => match b {
                    b'\n' if self.size == 0 => State::TrailerStart,
                    b'\n' => State::Data(std::mem::take(&mut self.size)),
                    _ => return Err(ChunkError("CRLF expected after chunk size")),
                },
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return Err(ChunkError("CRLF expected after chunk data")),
                },
                State::DataLf => match b {
                    b'\n' => State::Size { digits: 0 },
                    _ => return Err(ChunkError("CRLF expected after chunk data")),
                },
                State::TrailerStart => match b {
                    b'\r' => State::FinalLf,
                    b'\n' => return Err(ChunkError("bare LF in trailers")),
                    _ => State::Trailer,
                },
                State::Trailer => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err(ChunkError("bare LF in trailers")),
                    _ => State::Trailer,
                },
                State::TrailerLf => match b {
                    b'\n' => State::TrailerStart,
                    _ => return Err(ChunkError("CRLF expected after a trailer")),
                },
                State::FinalLf => match b {
                    b'\n' => State::Done,
                    _ => return Err(ChunkError("CRLF expected at the end")),
                },
            };
            i += 1;
        }
        Ok(i)
    }
}
