//! Protocol upgrades (RFC 9110 7.8): which requests ask for one, and the `101 Switching
//! Protocols` head relayed to the client when the origin accepts it.
//!
//! A request asks for an upgrade when it carries an `Upgrade` header and its
//! `Connection` header names `upgrade`. Only a bodiless HTTP/1.1 request is relayed as
//! an upgrade (the proxy then sends `upgrade` and `connection: upgrade` to the origin);
//! any other request has both stripped as hop-by-hop headers, as before.

use crate::MAX_HEADERS;
use crate::response::BadResponse;

/// The protocol a request asks to switch to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeKind {
    /// `Upgrade: websocket` (RFC 6455).
    WebSocket,
    /// Any other protocol: relayed as bytes, nothing of it is understood.
    Other,
}

/// The `101 Switching Protocols` head of an origin, rewritten for the client.
#[derive(Debug)]
pub struct SwitchHead {
    /// Length of the head in the origin's buffer (the new protocol's bytes follow).
    pub head_len: usize,
    /// The head for the client: status line and headers (with `connection: upgrade`),
    /// each line ending in CRLF, without the empty line that ends the head.
    pub downstream: Vec<u8>,
}

/// The kind of upgrade an `Upgrade` header value names: its first protocol decides.
pub(crate) fn kind_of(value: &[u8]) -> UpgradeKind {
    let first = value
        .split(|b| *b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    // `websocket` or `websocket/13`-style versions.
    let name = first.split(|b| *b == b'/').next().unwrap_or_default();
    if name.eq_ignore_ascii_case(b"websocket") {
        UpgradeKind::WebSocket
    } else {
        UpgradeKind::Other
    }
}

/// Parses a complete `101` head at the start of `buf` (one that [`crate::parse_response`]
/// refused with [`BadResponse::Switch`]) for an upgrade the client asked for. `Ok(None)`:
/// the head is not complete yet.
pub fn parse_switch(buf: &[u8]) -> Result<Option<SwitchHead>, BadResponse> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(BadResponse::TooLarge),
        Err(_) => return Err(BadResponse::Malformed),
    };
    if resp.code != Some(101) {
        return Err(BadResponse::Malformed);
    }
    let mut upgrade = false;
    let mut downstream = Vec::with_capacity(head_len + 32);
    downstream.extend_from_slice(b"HTTP/1.1 101 ");
    downstream.extend_from_slice(resp.reason.unwrap_or("Switching Protocols").as_bytes());
    downstream.extend_from_slice(b"\r\n");
    for h in resp.headers.iter() {
        let name = h.name;
        // The switch itself is said once below; framing means nothing after a 101.
        let dropped = [
            "connection",
            "keep-alive",
            "content-length",
            "transfer-encoding",
        ];
        if dropped.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            continue;
        }
        upgrade |= name.eq_ignore_ascii_case("upgrade");
        crate::headers::push(&mut downstream, name.as_bytes(), h.value);
    }
    if !upgrade {
        // RFC 9110 15.2.2: a 101 says which protocol it switches to.
        return Err(BadResponse::Malformed);
    }
    downstream.extend_from_slice(b"connection: upgrade\r\n");
    Ok(Some(SwitchHead {
        head_len,
        downstream,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_protocol_names_the_kind() {
        assert_eq!(kind_of(b"websocket"), UpgradeKind::WebSocket);
        assert_eq!(kind_of(b" WebSocket , h2c"), UpgradeKind::WebSocket);
        assert_eq!(kind_of(b"h2c, websocket"), UpgradeKind::Other);
        assert_eq!(kind_of(b"TLS/1.2"), UpgradeKind::Other);
    }

    #[test]
    fn a_switch_head_keeps_upgrade_and_says_connection_upgrade_once() {
        let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n\r\nframes";
        let head = parse_switch(wire).unwrap().unwrap();
        assert_eq!(&wire[head.head_len..], b"frames");
        assert_eq!(
            String::from_utf8(head.downstream).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc\r\nconnection: upgrade\r\n"
        );
    }

    #[test]
    fn a_switch_without_upgrade_or_not_101_is_refused() {
        assert!(parse_switch(b"HTTP/1.1 101 OK\r\n\r\n").is_err());
        assert!(parse_switch(b"HTTP/1.1 200 OK\r\nUpgrade: x\r\n\r\n").is_err());
        assert!(parse_switch(b"HTTP/1.1 101 OK\r\nUpgr").unwrap().is_none());
    }
}
