//! Where WebSocket frames end in the origin→client direction (RFC 6455 5.2), so that the
//! one close frame the proxy writes never lands inside a frame of the origin's.
//!
//! Only frame headers are read (opcode byte, length, mask bit): payloads are counted,
//! never looked into, and nothing is ever changed.

/// The close frame the proxy writes to a client at the drain's start: FIN + close
/// opcode, unmasked (server to client), a 2-byte payload with status 1001 Going Away.
pub(crate) const CLOSE_GOING_AWAY: [u8; 4] = [0x88, 0x02, 0x03, 0xE9];

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte masking key.
const MAX_HEADER: usize = 14;

/// Follows frame boundaries across reads.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    /// Header bytes of the frame being read (its header is incomplete while `in_payload`
    /// is false and `have > 0`).
    header: [u8; MAX_HEADER],
    have: usize,
    in_payload: bool,
    /// Payload bytes still to come of the current frame.
    left: u64,
}

impl Frames {
    /// Whether the bytes seen so far end exactly at a frame boundary.
    pub(crate) fn at_boundary(&self) -> bool {
        !self.in_payload && self.have == 0
    }

    /// Follows `data`, which comes right after the bytes seen so far.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = self.step(data);
            data = data.get(used..).unwrap_or_default();
        }
    }

    /// How many bytes of `data` complete the current frame (0 at a boundary), followed:
    /// the bytes up to the next boundary, or all of `data` if the frame goes on.
    pub(crate) fn until_boundary(&mut self, data: &[u8]) -> usize {
        if self.at_boundary() {
            0
        } else {
            self.step(data)
        }
    }

    /// Follows `data` up to the end of the current frame (or of `data`); returns the
    /// bytes used.
    fn step(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        loop {
            if self.in_payload {
                let rest = (data.len() - used) as u64;
                let k = self.left.min(rest);
                self.left -= k;
                // `k` is at most `rest`, a usize.
                used += usize::try_from(k).unwrap_or(usize::MAX);
                if self.left == 0 {
                    self.in_payload = false;
                }
                return used;
            }
            let Some(byte) = data.get(used) else {
                return used;
            };
            if let Some(slot) = self.header.get_mut(self.have) {
                *slot = *byte;
            }
            self.have += 1;
            used += 1;
            if let Some((len, payload)) = self.header_done() {
                debug_assert_eq!(len, self.have);
                self.have = 0;
                if payload == 0 {
                    return used;
                }
                self.in_payload = true;
                self.left = payload;
            }
        }
    }

    /// The header's length and the payload length, once the header is complete.
    fn header_done(&self) -> Option<(usize, u64)> {
        if self.have < 2 {
            return None;
        }
        let second = self.header[1];
        let masked = second & 0x80 != 0;
        let (ext, len7) = match second & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let len = 2 + ext + if masked { 4 } else { 0 };
        if self.have < len {
            return None;
        }
        let payload = len7.unwrap_or_else(|| {
            self.header[2..2 + ext]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        });
        Some((len, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unmasked frame with `n` payload bytes of `b'x'`.
    fn frame(n: usize) -> Vec<u8> {
        let mut f = vec![0x82];
        match n {
            0..=125 => f.push(n as u8),
            126..=65535 => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend(std::iter::repeat_n(b'x', n));
        f
    }

    #[test]
    fn boundaries_are_found_across_any_split_of_the_bytes() {
        let mut wire = Vec::new();
        for n in [0, 5, 125, 126, 300, 70_000] {
            wire.extend(frame(n));
        }
        // A masked frame (client-style) too.
        wire.extend([0x81, 0x83, 1, 2, 3, 4, 9, 9, 9]);
        for cut in [1, 2, 3, 7, 100, 4096] {
            let mut f = Frames::default();
            for piece in wire.chunks(cut) {
                f.feed(piece);
            }
            assert!(f.at_boundary(), "pieces of {cut}");
        }
        let mut f = Frames::default();
        f.feed(&wire[..wire.len() - 1]);
        assert!(!f.at_boundary());
    }

    #[test]
    fn until_boundary_stops_at_the_end_of_the_current_frame() {
        let mut wire = frame(10);
        wire.extend(frame(3));
        let mut f = Frames::default();
        f.feed(&wire[..4]);
        // 2 header + 10 payload: 8 more bytes end the first frame.
        assert_eq!(f.until_boundary(&wire[4..]), 8);
        assert!(f.at_boundary());
        assert_eq!(f.until_boundary(&wire[12..]), 0);
        let mut g = Frames::default();
        g.feed(&wire[..1]);
        assert_eq!(g.until_boundary(&wire[1..5]), 4);
        assert!(!g.at_boundary());
    }
}
