//! Header rewriting: hop-by-hop removal, `X-Forwarded-For`, `X-Served-By`.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::serve::Identity;

/// Name of the optional generation header: `X-Served-By: gen=<g> pid=<pid>`.
pub const SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that apply to one connection only and must not be forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The header value of a client address, computed once per client connection.
pub fn client_ip_value(ip: IpAddr) -> HeaderValue {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    HeaderValue::try_from(ip.to_string()).expect("an IP address is a valid header value")
}

/// The `X-Served-By` value for `id`.
pub(crate) fn served_by_value(id: Identity) -> HeaderValue {
    HeaderValue::try_from(format!("gen={} pid={}", id.generation, id.pid))
        .expect("digits and ASCII are a valid header value")
}

/// Removes hop-by-hop headers, including those named in `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(conn) = headers.get(header::CONNECTION) {
        let named = conn
            .to_str()
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|t| {
                        !t.is_empty()
                            && !t.eq_ignore_ascii_case("close")
                            && !t.eq_ignore_ascii_case("keep-alive")
                    })
                    .count()
            })
            .unwrap_or(0);
        if named > 0 || headers.get_all(header::CONNECTION).iter().count() > 1 {
            strip_connection_tokens(headers);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every header named by a `Connection` header's tokens.
fn strip_connection_tokens(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Appends the client address to `X-Forwarded-For` (one header, comma-separated).
pub(crate) fn append_forwarded_for(headers: &mut HeaderMap, client_ip: &HeaderValue) {
    let mut existing = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
    if existing.peek().is_none() {
        headers.insert(X_FORWARDED_FOR, client_ip.clone());
        return;
    }
    let mut joined: Vec<u8> = Vec::with_capacity(64);
    for v in existing {
        joined.extend_from_slice(v.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(client_ip.as_bytes());
    match HeaderValue::from_bytes(&joined) {
        Ok(v) => {
            headers.insert(X_FORWARDED_FOR, v);
        }
        // Existing values were valid header bytes, so the join is too; keep ours at least.
        Err(_) => {
            headers.insert(X_FORWARDED_FOR, client_ip.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.insert(header::HOST, HeaderValue::from_static("example"));
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["content-length", "host"]);
    }

    #[test]
    fn forwarded_for_is_set_or_appended() {
        let ip = client_ip_value("127.0.0.9".parse().unwrap());
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &ip);
        assert_eq!(h[&X_FORWARDED_FOR], "127.0.0.9");
        let mut h = HeaderMap::new();
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        append_forwarded_for(&mut h, &ip);
        let all: Vec<_> = h.get_all(&X_FORWARDED_FOR).iter().collect();
        assert_eq!(all, vec!["10.0.0.1, 10.0.0.2, 127.0.0.9"]);
    }

    #[test]
    fn mapped_ipv6_client_is_shown_as_ipv4() {
        let v = client_ip_value("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(v, "127.0.0.1");
        assert_eq!(client_ip_value("::1".parse().unwrap()), "::1");
    }

    #[test]
    fn served_by_names_generation_and_pid() {
        let v = served_by_value(Identity {
            pid: 7,
            generation: 3,
        });
        assert_eq!(v, "gen=3 pid=7");
    }
}
