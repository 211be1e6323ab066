//! Parsing an origin's response head and writing the head sent to the client.

use crate::framing;
use crate::headers::{self, ConnectionNames, ConnectionTokens};
use crate::{Framing, MAX_HEADERS, MAX_RESPONSE_HEAD};

/// A parsed final response head, rewritten for the client.
#[derive(Debug)]
pub struct ResponseHead {
    /// Length of the head in the origin's buffer (the body, if any, follows).
    pub head_len: usize,
    /// How the origin delimits the body.
    pub body: Framing,
    /// The origin keeps the connection open after this response (once its body is read).
    pub reusable: bool,
    /// The client connection must close after this response: its body is delimited by
    /// the close (an origin reading until close, or chunked to an HTTP/1.0 client).
    pub close_delimited: bool,
    /// A chunked body is decoded for an HTTP/1.0 client instead of relayed as is.
    pub dechunk: bool,
    /// The head for the client: status line and headers, each line ending in CRLF,
    /// without `Connection` and without the empty line that ends the head.
    pub downstream: Vec<u8>,
    /// The fields the head's `Connection` named: dropped from its trailer section too.
    pub connection_names: ConnectionNames,
}

/// What [`parse_response`] found at the start of the buffer.
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// An interim (1xx) response of this many bytes, to be skipped.
    Interim(usize),
    /// The final response head.
    Final(ResponseHead),
}

/// A response head that cannot be read: for refproxy, an origin response it
/// cannot relay (answered with 502); for a client
/// ([`crate::client::parse_client_response`], loadgen's `bad_response`), a
/// response it cannot read (`Coding` and `Switch` are the proxy's only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    /// Not an HTTP/1.x response head, or a status outside 100–599.
    #[error("malformed response head")]
    Malformed,
    /// The proxy: the head is larger than [`MAX_RESPONSE_HEAD`] or has too
    /// many fields; a client: more than
    /// [`MAX_CLIENT_HEADERS`](crate::client::MAX_CLIENT_HEADERS) fields.
    #[error("response head too large")]
    TooLarge,
    /// Conflicting or invalid `Content-Length`.
    #[error("invalid Content-Length")]
    Length,
    /// Transfer codings besides `chunked`, for an HTTP/1.0 client (RFC 9112 6.1).
    #[error("transfer coding an HTTP/1.0 client cannot receive")]
    Coding,
    /// `101 Switching Protocols`, though no upgrade was forwarded.
    #[error("unexpected protocol switch")]
    Switch,
}

/// Parses the response head at the start of `buf`, for a request that was a HEAD
/// request when `head_request`, from a client speaking HTTP/1.0 when `client_http10`.
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    client_http10: bool,
) -> Result<Parsed, BadResponse> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err(BadResponse::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(BadResponse::TooLarge),
        Err(_) => return Err(BadResponse::Malformed),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(BadResponse::Malformed);
    };
    // RFC 9110 15: three digits, the first 1 to 5 (httparse takes any three digits).
    match status {
        0..=99 | 600.. => return Err(BadResponse::Malformed),
        101 => return Err(BadResponse::Switch),
        100..=199 => return Ok(Parsed::Interim(head_len)),
        _ => {}
    }
    let tokens = ConnectionTokens::of(resp.headers);
    let mut length = None;
    let mut codings: Option<headers::Codings> = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            headers::content_length(h.value, &mut length).map_err(|()| BadResponse::Length)?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            codings.get_or_insert_default().add(h.value);
        }
    }
    let body = framing::response_body(status, head_request, codings, length);
    let reusable = framing::reusable(tokens.keeps_alive(version == 0), body, codings, length);
    let dechunk = body == Framing::Chunked && client_http10;
    // Other codings (`gzip, chunked`) are relayed with their header, as received; an
    // HTTP/1.0 client could not be told about them.
    let relay_codings = codings.is_some_and(|c| c.others);
    if relay_codings && client_http10 {
        return Err(BadResponse::Coding);
    }
    let close_delimited = body == Framing::UntilClose || dechunk;

    let mut downstream = Vec::with_capacity(head_len + 64);
    downstream.extend_from_slice(b"HTTP/1.1 ");
    crate::decimal::push_decimal(&mut downstream, u64::from(status));
    downstream.push(b' ');
    downstream.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    downstream.extend_from_slice(b"\r\n");
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            // Relayed as received when it carries other codings, and for HEAD (what a GET
            // would have got) to an HTTP/1.1 client.
            if relay_codings || (head_request && !client_http10) {
                headers::push(&mut downstream, name.as_bytes(), h.value);
            }
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if headers::is_connection_specific(name, &tokens) {
            continue;
        }
        headers::push(&mut downstream, name.as_bytes(), h.value);
    }
    // The length is relayed, as one value, when the body is relayed with that length (or
    // has none); a `Connection` header naming it does not remove it.
    if let (Some(n), Framing::Length(_) | Framing::None) = (length, body) {
        headers::push_length(&mut downstream, n);
    }
    if body == Framing::Chunked && !dechunk && !relay_codings {
        downstream.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    Ok(Parsed::Final(ResponseHead {
        head_len,
        body,
        reusable,
        close_delimited,
        dechunk,
        downstream,
        connection_names: tokens.owned_names(),
    }))
}
