//! Reading a response head as a client (loadgen): its status, how its body is framed,
//! whether the connection can be reused, and its `Server` field. Nothing is rewritten
//! and nothing is allocated; the framing rules are refproxy's ([`crate::framing`]).
//!
//! Interim (1xx) heads are returned like final ones: the caller skips them, and decides
//! whether a `101` answers an upgrade it asked for.

use crate::headers::{self, ConnectionTokens};
use crate::{BadResponse, Framing};

/// Most header fields in a response head read by a client; more are refused
/// ([`BadResponse::TooLarge`]).
pub const MAX_CLIENT_HEADERS: usize = 64;

/// A response head as a client reads it.
#[derive(Debug)]
pub struct ClientHead<'b> {
    /// Length of the head in the buffer (the body, if any, follows).
    pub head_len: usize,
    /// The status code (100 to 599).
    pub status: u16,
    /// How the body is delimited ([`Framing::None`] for 1xx, 204, 304 and HEAD).
    pub body: Framing,
    /// The connection can carry another exchange once the body is read.
    pub reusable: bool,
    /// The value of the `Server` field (the last one), if any.
    pub server: Option<&'b [u8]>,
}

/// Parses the response head at the start of `buf`, for a request that was a HEAD
/// request when `head_request`. `Ok(None)`: the head is not complete yet.
pub fn parse_client_response(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<ClientHead<'_>>, BadResponse> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_CLIENT_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(BadResponse::TooLarge),
        Err(_) => return Err(BadResponse::Malformed),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(BadResponse::Malformed);
    };
    // RFC 9110 15: three digits, the first 1 to 5 (httparse takes any three digits).
    if !(100..=599).contains(&status) {
        return Err(BadResponse::Malformed);
    }
    let mut tokens = ConnectionTokens::default();
    let mut length = None;
    let mut codings: Option<headers::Codings> = None;
    let mut server = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            headers::content_length(h.value, &mut length).map_err(|()| BadResponse::Length)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.get_or_insert_default().add(h.value);
        } else if name.eq_ignore_ascii_case("connection") {
            headers::connection_options(h.value, &mut tokens.close, &mut tokens.keep_alive, |_| {});
        } else if name.eq_ignore_ascii_case("server") {
            server = Some(h.value);
        }
    }
    let body = crate::framing::response_body(status, head_request, codings, length);
    let reusable =
        crate::framing::reusable(tokens.keeps_alive(version == 0), body, codings, length);
    Ok(Some(ClientHead {
        head_len,
        status,
        body,
        reusable,
        server,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8], head_request: bool) -> ClientHead<'_> {
        parse_client_response(raw, head_request).unwrap().unwrap()
    }

    // loadgen's head tests, against the shared framing rules.
    #[test]
    fn head_parsing() {
        let h = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nab",
            false,
        );
        assert_eq!(
            (h.status, h.reusable, h.server, h.body, h.head_len),
            (200, true, Some(&b"x"[..]), Framing::Length(5), 49)
        );
        let h = head(
            b"HTTP/1.1 502 Bad\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        );
        assert!(!h.reusable && h.body == Framing::Chunked);
        let h = head(b"HTTP/1.0 200 OK\r\n\r\n", false);
        assert!(!h.reusable && h.body == Framing::UntilClose);
        assert!(
            parse_client_response(b"HTTP/1.1 200 OK\r\nContent-Le", false)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            parse_client_response(b"garbage\r\n\r\n", false).unwrap_err(),
            BadResponse::Malformed
        );
        assert_eq!(
            parse_client_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false)
                .unwrap_err(),
            BadResponse::Length
        );
    }

    #[test]
    fn bare_lf_heads_are_read_by_httparse_in_any_mode() {
        let h = head(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false);
        assert_eq!(
            (h.status, h.body, h.head_len),
            (200, Framing::Length(2), 35)
        );
    }

    #[test]
    fn bodiless_responses_and_reuse() {
        for raw in [
            &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
            b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n",
            b"HTTP/1.1 204 No\r\nContent-Length: 3\r\n\r\n",
            b"HTTP/1.1 304 No\r\n\r\n",
        ] {
            assert_eq!(head(raw, false).body, Framing::None, "{raw:?}");
        }
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true);
        assert!(h.body == Framing::None && h.reusable);
        // `close` wins over `keep-alive`; HTTP/1.0 needs `keep-alive`.
        let h = head(
            b"HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(!h.reusable);
        let h = head(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(h.reusable);
        // Both framings: chunked, and the connection is not reused.
        let h = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        );
        assert!(h.body == Framing::Chunked && !h.reusable);
        // A coding list not ending in chunked is read until the close.
        let h = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
            false,
        );
        assert!(h.body == Framing::UntilClose && !h.reusable);
    }

    #[test]
    fn bad_statuses_lengths_and_too_many_fields_are_refused() {
        for raw in [&b"HTTP/1.1 099 X\r\n\r\n"[..], b"HTTP/1.1 600 X\r\n\r\n"] {
            assert_eq!(
                parse_client_response(raw, false).unwrap_err(),
                BadResponse::Malformed
            );
        }
        assert_eq!(
            parse_client_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            )
            .unwrap_err(),
            BadResponse::Length
        );
        let many: String = (0..=MAX_CLIENT_HEADERS)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(
            parse_client_response(raw.as_bytes(), false).unwrap_err(),
            BadResponse::TooLarge
        );
    }
}
