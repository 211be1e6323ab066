//! Parsing a client's request head and writing the head sent to the origin.

use crate::headers::{self, ConnectionNames, ConnectionTokens};
use crate::{Framing, MAX_HEADERS, MAX_REQUEST_HEAD};

/// A parsed request head, rewritten for the origin.
#[derive(Debug)]
pub struct RequestHead {
    /// Length of the head in the client's buffer (the body, if any, follows).
    pub head_len: usize,
    /// The head for the origin: request line (origin-form target, HTTP/1.1) and headers,
    /// each line ending in CRLF, without the empty line that ends the head. The caller
    /// adds a `Host` header when [`RequestHead::has_host`] is false, then CRLF.
    pub upstream: Vec<u8>,
    /// The client sent a `Host` header.
    pub has_host: bool,
    /// The request body's framing: [`Framing::None`], [`Framing::Length`] or
    /// [`Framing::Chunked`].
    pub body: Framing,
    /// The client keeps the connection open after this exchange (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// The request is HTTP/1.0.
    pub http10: bool,
    /// The client sent `Expect: 100-continue` (not forwarded: the proxy answers it).
    pub expect_continue: bool,
    /// The method is idempotent and there is no body: sending the request twice is harmless.
    pub replayable: bool,
    /// The method is HEAD: the response has no body.
    pub is_head: bool,
    /// The fields the head's `Connection` named: dropped from its trailer section too.
    pub connection_names: ConnectionNames,
    /// The request asks to switch protocols (`Upgrade`, with `Connection: upgrade`, on a
    /// bodiless HTTP/1.1 request): `upstream` then carries `upgrade` and
    /// `connection: upgrade`, and a `101` answer starts a tunnel.
    pub upgrade: Option<crate::UpgradeKind>,
}

/// Why a request head is refused; [`Reject::status`] is the status to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Malformed head, bad target, missing `Host` (HTTP/1.1), conflicting or invalid
    /// framing headers.
    #[error("malformed request")]
    BadRequest,
    /// The head is larger than [`MAX_REQUEST_HEAD`] or has more than [`MAX_HEADERS`] fields.
    #[error("request head too large")]
    TooLarge,
    /// A method the proxy does not handle (CONNECT), or a transfer coding other than
    /// `chunked` alone.
    #[error("not implemented")]
    NotImplemented,
}

impl Reject {
    /// The HTTP status answered for this rejection.
    pub fn status(self) -> u16 {
        match self {
            Reject::BadRequest => 400,
            Reject::TooLarge => 431,
            Reject::NotImplemented => 501,
        }
    }
}

/// Idempotent methods (RFC 9110 9.2.2).
const IDEMPOTENT: [&str; 6] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];

/// Parses the request head at the start of `buf`. `Ok(None)`: the head is not complete
/// yet. `forwarded_for` is the client's address, appended to `X-Forwarded-For`.
pub fn parse_request(buf: &[u8], forwarded_for: &[u8]) -> Result<Option<RequestHead>, Reject> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_REQUEST_HEAD => {
            return Err(Reject::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::TooLarge),
        Err(_) => return Err(Reject::BadRequest),
    };
    if head_len > MAX_REQUEST_HEAD {
        return Err(Reject::TooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Reject::BadRequest);
    };
    if method == "CONNECT" {
        return Err(Reject::NotImplemented);
    }
    let target = Target::parse(method, target)?;
    let http10 = version == 0;
    let tokens = ConnectionTokens::of(req.headers);

    let mut upstream = Vec::with_capacity(head_len + 64);
    upstream.extend_from_slice(method.as_bytes());
    upstream.push(b' ');
    upstream.extend_from_slice(target.path.as_bytes());
    if let Some(query) = target.query_after_root {
        upstream.push(b'/');
        upstream.extend_from_slice(query.as_bytes());
    }
    upstream.extend_from_slice(b" HTTP/1.1\r\n");
    let mut length = None;
    let mut codings: Option<headers::Codings> = None;
    let mut hosts = 0;
    let mut expect_continue = false;
    let mut forwarded: Option<Vec<u8>> = None;
    let mut upgrade_value: Option<&[u8]> = None;
    if let Some(authority) = target.authority {
        // RFC 9112 3.2.2: the authority of an absolute-form target replaces `Host`.
        headers::push(&mut upstream, b"host", authority.as_bytes());
    }
    // Framing and `Host` are decided here: a `Connection` header naming them does not
    // remove them (that would let a body be read as a second request).
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            headers::content_length(h.value, &mut length).map_err(|()| Reject::BadRequest)?;
            continue;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.get_or_insert_default().add(h.value);
            continue;
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if hosts > 1 || !headers::valid_host(h.value) {
                return Err(Reject::BadRequest);
            }
            if target.authority.is_none() {
                headers::push(&mut upstream, name.as_bytes(), h.value);
            }
            continue;
        } else if name.eq_ignore_ascii_case("expect")
            && h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue")
        {
            expect_continue = true;
            continue;
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            let value = h.value.trim_ascii();
            if !value.is_empty() {
                let joined = forwarded.get_or_insert_with(Vec::new);
                joined.extend_from_slice(value);
                joined.extend_from_slice(b", ");
            }
            continue;
        }
        if headers::is_connection_specific(name, &tokens) {
            if name.eq_ignore_ascii_case("upgrade") && upgrade_value.is_none() {
                upgrade_value = Some(h.value);
            }
            continue;
        }
        headers::push(&mut upstream, name.as_bytes(), h.value);
    }
    let has_host = hosts > 0 || target.authority.is_some();
    match forwarded {
        Some(mut joined) => {
            joined.extend_from_slice(forwarded_for);
            headers::push(&mut upstream, b"x-forwarded-for", &joined);
        }
        None => headers::push(&mut upstream, b"x-forwarded-for", forwarded_for),
    }
    // RFC 9110 8.6: one length, sent as one value.
    if let Some(n) = length {
        headers::push_length(&mut upstream, n);
    }

    let body = match (codings, length) {
        // Both framings at once is how requests are smuggled (RFC 9112 6.3).
        (Some(_), Some(_)) => return Err(Reject::BadRequest),
        (Some(c), None) if c.chunked_last && !http10 => {
            if c.others {
                // RFC 9112 6.1: a transfer coding the proxy does not relay.
                return Err(Reject::NotImplemented);
            }
            upstream.extend_from_slice(b"transfer-encoding: chunked\r\n");
            Framing::Chunked
        }
        // RFC 9112 6.3: chunked not last, or a transfer coding in HTTP/1.0.
        (Some(_), None) => return Err(Reject::BadRequest),
        (None, Some(0) | None) => Framing::None,
        (None, Some(n)) => Framing::Length(n),
    };
    // RFC 9112 3.2: a server must answer 400 to an HTTP/1.1 request without Host.
    if !http10 && !has_host {
        return Err(Reject::BadRequest);
    }
    let keep_alive = tokens.keeps_alive(http10);
    let asks_upgrade = tokens
        .named
        .iter()
        .any(|t| t.eq_ignore_ascii_case(b"upgrade"));
    let upgrade = match upgrade_value {
        Some(value) if asks_upgrade && !http10 && body == Framing::None => {
            headers::push(&mut upstream, b"upgrade", value);
            upstream.extend_from_slice(b"connection: upgrade\r\n");
            Some(crate::upgrade::kind_of(value))
        }
        _ => None,
    };
    Ok(Some(RequestHead {
        head_len,
        upstream,
        has_host,
        body,
        keep_alive,
        http10,
        // RFC 9110 10.1.1: HTTP/1.0 clients are never sent `100 Continue`.
        expect_continue: expect_continue && !http10 && body != Framing::None,
        replayable: body == Framing::None && IDEMPOTENT.contains(&method),
        is_head: method == "HEAD",
        connection_names: tokens.owned_names(),
        upgrade,
    }))
}

/// A request target, reduced to what is sent to the origin.
#[derive(Debug)]
struct Target<'a> {
    /// Origin-form path and query (`/p?q`), or `*`.
    path: &'a str,
    /// For `http://host?q`: the query, sent after a `/` as `/?q`.
    query_after_root: Option<&'a str>,
    /// The authority of an absolute-form target.
    authority: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// Origin-form as is, `*` for OPTIONS, absolute-form (`http://host/p?q`) split
    /// into its authority and `/p?q` (RFC 9112 3.2).
    fn parse(method: &str, target: &'a str) -> Result<Target<'a>, Reject> {
        // A fragment is never part of a request target (RFC 9112 3.2).
        if target.contains('#') {
            return Err(Reject::BadRequest);
        }
        let plain = |path| Target {
            path,
            query_after_root: None,
            authority: None,
        };
        if target.starts_with('/') || (target == "*" && method == "OPTIONS") {
            return Ok(plain(target));
        }
        let scheme_len = ["http://", "https://"]
            .iter()
            .find(|p| {
                target
                    .get(..p.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(p))
            })
            .map(|p| p.len())
            .ok_or(Reject::BadRequest)?;
        let rest = target.get(scheme_len..).unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() || !headers::valid_host(authority.as_bytes()) {
            return Err(Reject::BadRequest);
        }
        let mut t = plain("/");
        t.authority = Some(authority);
        if tail.is_empty() && method == "OPTIONS" {
            // RFC 9112 3.2.4: the server-wide OPTIONS of an absolute-form target.
            t.path = "*";
        }
        match tail.as_bytes().first() {
            Some(b'/') => t.path = tail,
            Some(b'?') => {
                t.path = "";
                t.query_after_root = Some(tail);
            }
            _ => {}
        }
        Ok(t)
    }
}
