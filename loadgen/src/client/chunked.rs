//! Incremental decoder of `Transfer-Encoding: chunked` bodies: finds where
//! the body ends and counts its data bytes, without copying them.

/// Where the decoder is in the chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    EndLf,
    Done,
}

/// The chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkedError;

/// Decoder state.
#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    state: State,
    size: u64,
    digits: u32,
    /// Data bytes seen so far.
    pub(crate) data_bytes: u64,
}

impl Chunked {
    /// A decoder at the start of a body.
    pub(crate) fn new() -> Chunked {
        Chunked {
            state: State::Size,
            size: 0,
            digits: 0,
            data_bytes: 0,
        }
    }

    fn after_size(&mut self) -> State {
        if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data
        }
    }

    /// Feeds the next bytes; `Ok(true)` once the final chunk and trailers are complete.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<bool, ChunkedError> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            self.state = match self.state {
                State::Done => return Ok(true),
                State::Data => {
                    let n = (data.len() - i).min(self.size as usize);
                    self.size -= n as u64;
                    self.data_bytes += n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).ok_or(ChunkedError)?;
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(ChunkedError);
                        }
                        self.size = self.size * 16 + u64::from(d);
                        State::Size
                    }
                    _ if self.digits == 0 => return Err(ChunkedError),
                    b';' | b' ' | b'\t' => State::Ext,
                    b'\r' => State::SizeLf,
                    b'\n' => self.after_size(),
                    _ => return Err(ChunkedError),
                },
                State::Ext => match b {
                    b'\r' => State::SizeLf,
                    b'\n' => self.after_size(),
                    _ => State::Ext,
                },
                State::SizeLf if b == b'\n' => self.after_size(),
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataCr | State::DataLf if b == b'\n' => {
                    self.digits = 0;
                    State::Size
                }
                State::TrailerStart => match b {
                    b'\r' => State::EndLf,
                    b'\n' => State::Done,
                    _ => State::Trailer,
                },
                State::Trailer if b == b'\n' => State::TrailerStart,
                State::Trailer => State::Trailer,
                State::EndLf if b == b'\n' => State::Done,
                State::SizeLf | State::DataCr | State::DataLf | State::EndLf => {
                    return Err(ChunkedError);
                }
            };
            i += 1;
        }
        Ok(self.state == State::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_in_any_split() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 0..body.len() {
            let mut c = Chunked::new();
            let a = c.feed(&body[..split]).unwrap();
            assert!(!a, "done too early at {split}");
            assert!(c.feed(&body[split..]).unwrap(), "not done at {split}");
            assert_eq!(c.data_bytes, 31);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(Chunked::new().feed(b"zz\r\n").is_err());
        assert!(Chunked::new().feed(b"2\r\nabX").is_err());
        assert!(Chunked::new().feed(b"\r\n").is_err());
    }
}
