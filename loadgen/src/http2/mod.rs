//! The HTTP/2 client of `--h2`, on the `h2` crate: prior knowledge for
//! `http://` (h2c), ALPN `h2` for `https://`.
//!
//! Each of the run's `-c` connection slots keeps one live connection and runs
//! `--streams` stream loops on it; a stream loop is a client as in HTTP/1.1
//! (a ticket, one request, exactly one outcome), so `c × streams` requests
//! are in flight. The slot's stream loops and its connections' `h2` futures
//! run in one task (a response read by the connection wakes its stream loop
//! without a task switch). A connection that received a GOAWAY (seen by the read-side
//! [`tap`]) or that ended takes no new stream: the next request opens a new
//! connection, counted as a reconnect, never as a failure. Streams already
//! open on it finish or fail there.
//!
//! A failed stream gets one class ([`stream::classify`]): refused by a
//! GOAWAY (its id above the GOAWAY's last-stream-id: never processed), reset
//! (RST_STREAM, its code counted), lost with its connection, or a protocol
//! error. With `--retry-refused` a refused stream is sent once more on a new
//! connection, and the request's outcome is the retry's.
//!
//! Each connection's IO reads ahead ([`read_ahead`]) in 64 KiB reads when
//! `h2` asks for less than 4 KiB, so a response takes fewer `recv`s.
//!
//! This path is separate from the HTTP/1.1 clients ([`crate::client`]): the
//! HTTP/1.1 loop is unchanged by it.

mod conn;
mod read_ahead;
mod stream;
pub(crate) mod tap;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use crate::client::TlsCtx;
use crate::error::LoadError;
use crate::mix::Schedule;

pub(crate) use conn::run_slot;

/// The most concurrent streams per connection `--streams` accepts.
pub const MAX_STREAMS: u64 = 10_000;

/// Request headers that HTTP/2 forbids (RFC 9113 §8.2.2): connection-specific
/// fields. A run with one of them is refused rather than altered.
pub const CONNECTION_HEADERS: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The name of an HTTP/2 error code (RFC 9113 §7), or its number.
pub(crate) fn code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        other => return format!("0x{other:x}"),
    };
    name.to_owned()
}

/// One request kind of the run, as HTTP/2 sends it.
#[derive(Debug, Clone)]
pub(crate) struct H2Kind {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) idempotent: bool,
}

/// What every stream loop of an `--h2` run shares (read-only).
#[derive(Debug)]
pub(crate) struct H2Ctx {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) kinds: Vec<H2Kind>,
    pub(crate) schedule: Schedule,
    pub(crate) timeout: Duration,
    pub(crate) source_ips: u32,
    pub(crate) think_time: Option<Duration>,
    /// Concurrent streams per connection.
    pub(crate) streams: u64,
    /// Retry a stream refused by a GOAWAY once, on a new connection.
    pub(crate) retry_refused: bool,
    /// Send `x-reloadbench-id` with each request.
    pub(crate) request_ids: bool,
    /// For `https://`: the TLS client, offering only `h2` in ALPN.
    pub(crate) tls: Option<Arc<TlsCtx>>,
}

impl H2Ctx {
    fn source(&self, slot: u64) -> Option<std::net::Ipv4Addr> {
        (self.source_ips > 1).then(|| {
            let last = 1 + (slot % u64::from(self.source_ips)) as u8;
            std::net::Ipv4Addr::new(127, 0, 0, last)
        })
    }
}

/// The parts of a request kind before conversion to [`H2Kind`].
pub(crate) struct KindSpec<'a> {
    pub(crate) method: &'a str,
    pub(crate) scheme: &'a str,
    pub(crate) authority: &'a str,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) body: Option<&'a [u8]>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) idempotent: bool,
}

/// Builds one kind: `:authority` from the URL (or a `Host` header), the
/// default `user-agent: loadgen` and `accept: */*` unless given, the
/// content type with a body; `content-length` is set from the body.
pub(crate) fn kind(spec: &KindSpec<'_>) -> Result<H2Kind, LoadError> {
    let bad = |reason: String| LoadError::InvalidConfig {
        field: "headers",
        reason,
    };
    let method =
        Method::from_bytes(spec.method.as_bytes()).map_err(|e| LoadError::InvalidConfig {
            field: "method",
            reason: e.to_string(),
        })?;
    let mut authority = spec.authority.to_owned();
    let mut headers = HeaderMap::new();
    for (k, v) in spec.headers {
        let lower = k.to_ascii_lowercase();
        if CONNECTION_HEADERS.contains(&lower.as_str()) {
            return Err(bad(format!(
                "{k} is a connection-specific header, which HTTP/2 forbids"
            )));
        }
        if lower == "host" {
            v.clone_into(&mut authority);
            continue;
        }
        let name =
            HeaderName::from_bytes(lower.as_bytes()).map_err(|e| bad(format!("{k}: {e}")))?;
        let value = HeaderValue::from_str(v).map_err(|e| bad(format!("{k}: {e}")))?;
        headers.append(name, value);
    }
    if !headers.contains_key(http::header::USER_AGENT) {
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static("loadgen"),
        );
    }
    if !headers.contains_key(http::header::ACCEPT) {
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    if let Some(body) = spec.body {
        let ct = spec.content_type.unwrap_or("text/plain");
        let ct = HeaderValue::from_str(ct).map_err(|e| bad(format!("content type: {e}")))?;
        headers.insert(http::header::CONTENT_TYPE, ct);
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let uri = Uri::builder()
        .scheme(spec.scheme)
        .authority(authority.as_str())
        .path_and_query(spec.path)
        .build()
        .map_err(|e| LoadError::InvalidConfig {
            field: "url",
            reason: format!("not an HTTP/2 request target: {e}"),
        })?;
    Ok(H2Kind {
        method,
        uri,
        headers,
        body: spec.body.map(Bytes::copy_from_slice),
        idempotent: spec.idempotent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(headers: &'a [(String, String)], body: Option<&'a [u8]>) -> KindSpec<'a> {
        KindSpec {
            method: "POST",
            scheme: "http",
            authority: "127.0.0.1:8080",
            path: "/p?q=1",
            headers,
            body,
            content_type: None,
            idempotent: false,
        }
    }

    #[test]
    fn kinds_carry_defaults_host_as_authority_and_refuse_connection_headers() {
        let k = kind(&spec(&[], Some(b"abc"))).unwrap();
        assert_eq!(k.uri.to_string(), "http://127.0.0.1:8080/p?q=1");
        assert_eq!(k.headers["user-agent"], "loadgen");
        assert_eq!(k.headers["content-length"], "3");
        assert_eq!(k.headers["content-type"], "text/plain");
        let host = [("Host".to_owned(), "example.com".to_owned())];
        let k = kind(&spec(&host, None)).unwrap();
        assert_eq!(k.uri.authority().unwrap().as_str(), "example.com");
        assert!(!k.headers.contains_key("host"));
        for h in ["Connection", "Upgrade", "keep-alive"] {
            let bad = [(h.to_owned(), "x".to_owned())];
            let e = kind(&spec(&bad, None)).unwrap_err().to_string();
            assert!(e.contains("HTTP/2 forbids"), "{e}");
        }
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(0), "NO_ERROR");
        assert_eq!(code_name(8), "CANCEL");
        assert_eq!(code_name(0x77), "0x77");
    }
}
