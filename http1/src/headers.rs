//! Header classification shared by requests and responses: hop-by-hop names, the tokens
//! of `Connection`, `Content-Length` and `Transfer-Encoding` values.

/// Headers that apply to one connection only and are never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&[u8]; 9] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
];

/// Whether `name` is a hop-by-hop header.
pub(super) fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| name.as_bytes().eq_ignore_ascii_case(h))
}

/// Whether a field `name` stays on this hop: a hop-by-hop field, or one that a
/// `Connection` header of the same message (`tokens`) names.
pub(super) fn is_connection_specific(name: &str, tokens: &ConnectionTokens<'_>) -> bool {
    is_hop_by_hop(name) || tokens.names(name)
}

/// The field names a head's `Connection` headers named (besides `close` and
/// `keep-alive`), kept past the head for its trailer section: the head's connection
/// options apply to trailer fields too (RFC 9110 7.6.1). Empty, and never allocated,
/// when the head named none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionNames(Vec<Box<[u8]>>);

impl ConnectionNames {
    /// Whether `name` is among the names.
    pub(super) fn names(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// What the `Connection` headers of a message say.
#[derive(Debug, Default)]
pub(super) struct ConnectionTokens<'a> {
    /// `close` was among the tokens.
    pub(super) close: bool,
    /// `keep-alive` was among the tokens.
    pub(super) keep_alive: bool,
    /// Other tokens: names of headers that must not be forwarded.
    pub(super) named: Vec<&'a [u8]>,
}

impl<'a> ConnectionTokens<'a> {
    /// Collects the tokens of every `Connection` header in `headers`.
    pub(super) fn of(headers: &[httparse::Header<'a>]) -> ConnectionTokens<'a> {
        let mut tokens = ConnectionTokens::default();
        for h in headers {
            if !h.name.eq_ignore_ascii_case("connection") {
                continue;
            }
            let named = &mut tokens.named;
            connection_options(h.value, &mut tokens.close, &mut tokens.keep_alive, |t| {
                named.push(t)
            });
        }
        tokens
    }

    /// Whether the connection stays open after this message: HTTP/1.1 unless `close`,
    /// HTTP/1.0 only with `keep-alive` (RFC 9112 9.3).
    pub(super) fn keeps_alive(&self, http10: bool) -> bool {
        !self.close && (!http10 || self.keep_alive)
    }

    /// The named tokens as owned names, for the message's trailer section.
    pub(super) fn owned_names(&self) -> ConnectionNames {
        ConnectionNames(self.named.iter().map(|t| Box::from(*t)).collect())
    }

    /// Whether `name` is named by a `Connection` header.
    pub(super) fn names(&self, name: &str) -> bool {
        self.named
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// Reads the tokens of one `Connection` value: `close` and `keep-alive` set their flag,
/// every other (non-empty) token is passed to `named`.
pub(super) fn connection_options<'a>(
    value: &'a [u8],
    close: &mut bool,
    keep_alive: &mut bool,
    mut named: impl FnMut(&'a [u8]),
) {
    for t in value.split(|b| *b == b',') {
        let t = t.trim_ascii();
        if t.eq_ignore_ascii_case(b"close") {
            *close = true;
        } else if t.eq_ignore_ascii_case(b"keep-alive") {
            *keep_alive = true;
        } else if !t.is_empty() {
            named(t);
        }
    }
}

/// Folds one `Content-Length` value into `seen`: `Err` when it is not a number or
/// differs from a value seen before (RFC 9112 6.3: a message with conflicting lengths
/// is invalid). A comma-separated list of equal values counts as that value.
pub(super) fn content_length(value: &[u8], seen: &mut Option<u64>) -> Result<(), ()> {
    for part in value.split(|b| *b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
        let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        match *seen {
            Some(prev) if prev != n => return Err(()),
            _ => *seen = Some(n),
        }
    }
    Ok(())
}

/// What the `Transfer-Encoding` headers of a message say, folded header by header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Codings {
    /// The last coding is `chunked`: the body is chunked.
    pub(super) chunked_last: bool,
    /// A coding other than one final `chunked` is present (e.g. `gzip, chunked`).
    pub(super) others: bool,
}

impl Codings {
    /// Folds in the value of one `Transfer-Encoding` header.
    pub(super) fn add(&mut self, value: &[u8]) {
        for coding in value.split(|b| *b == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() {
                continue;
            }
            // A coding after `chunked`, or `chunked` twice, is a coding list the proxy
            // does not relay.
            if self.chunked_last {
                self.others = true;
            }
            self.chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            if !self.chunked_last {
                self.others = true;
            }
        }
    }
}

/// Whether a `Host` value (or the authority of a target) is `host[:port]` as RFC 3986
/// spells it: a name or IPv4 address of unreserved, sub-delim and `%` characters, or
/// an IPv6 address in brackets, and an optional port of at most 65535. Empty is valid
/// (a request for a target without authority). The same check applies to the authority
/// of an absolute-form target.
pub(super) fn valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.strip_prefix(b"[") {
        Some(v6) => match v6.iter().position(|b| *b == b']') {
            Some(end) => {
                let (addr, rest) = v6.split_at(end);
                if !addr
                    .iter()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
                {
                    return false;
                }
                (&b""[..], rest.get(1..).unwrap_or_default())
            }
            None => return false,
        },
        None => match value.iter().position(|b| *b == b':') {
            Some(colon) => {
                let (h, p) = value.split_at(colon);
                (h, p)
            }
            None => (value, &b""[..]),
        },
    };
    let host_ok = host.iter().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            )
    });
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => {
            digits.len() <= 5
                && digits.iter().all(u8::is_ascii_digit)
                && digits
                    .iter()
                    .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
                    <= u32::from(u16::MAX)
        }
        Some(_) => false,
    };
    host_ok && port_ok
}

/// Appends `content-length: n\r\n` to `out`.
pub(super) fn push_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    crate::decimal::push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value\r\n` to `out`.
pub(super) fn push(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
