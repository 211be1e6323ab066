//! The target of a run: URL parsing, address resolution and the request
//! bytes, built once and written unchanged for every request.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::error::LoadError;

/// The parts of an `http[s]://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    /// `https://`: TLS.
    pub(crate) tls: bool,
    /// Host as written (IPv6 without brackets).
    pub(crate) host: String,
    /// Port (80, or 443 for `https://`, when absent).
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
    /// Value of the `Host` header.
    pub(crate) host_header: String,
}

/// Parses an `http://` or `https://` URL. Other schemes are refused.
pub(crate) fn parse_url(url: &str) -> Result<UrlParts, LoadError> {
    let invalid = |reason: &str| LoadError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid("expected http[s]://host[:port][/path]"));
    };
    let tls = scheme.eq_ignore_ascii_case("https");
    if !tls && !scheme.eq_ignore_ascii_case("http") {
        return Err(LoadError::UnsupportedScheme {
            url: url.to_owned(),
        });
    }
    let default_port = if tls { 443 } else { 80 };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let path = match path.split_once('#') {
        Some((p, _)) => p.to_owned(),
        None => path,
    };
    if authority.contains('@') {
        return Err(invalid("user info is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err(invalid("unterminated [IPv6] host"));
        };
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(invalid("unexpected text after ]")),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("missing host"));
    }
    if let Some(reason) = path_problem(&path) {
        return Err(invalid(reason));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("port must be a number in 1..=65535"))?,
    };
    let host_in_header = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let host_header = if port == default_port {
        host_in_header
    } else {
        format!("{host_in_header}:{port}")
    };
    Ok(UrlParts {
        tls,
        host: host.to_owned(),
        port,
        path,
        host_header,
    })
}

/// What is wrong with a request target `path`, if anything: it must start
/// with `/` and hold no whitespace or control characters.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must start with /");
    }
    path.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        .then_some("path contains whitespace or control characters")
}

/// Resolves the URL's host to one socket address (the first one, IPv4 preferred).
pub(crate) fn resolve(parts: &UrlParts) -> Result<SocketAddr, LoadError> {
    if let Ok(ip) = parts.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, parts.port));
    }
    let resolve_err = |source| LoadError::Resolve {
        host: parts.host.clone(),
        port: parts.port,
        source,
    };
    let addrs: Vec<SocketAddr> = (parts.host.as_str(), parts.port)
        .to_socket_addrs()
        .map_err(|e| resolve_err(Some(e)))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| resolve_err(None))
}

/// What goes into the request bytes.
pub(crate) struct RequestSpec<'a> {
    /// Method.
    pub(crate) method: &'a str,
    /// URL parts.
    pub(crate) url: &'a UrlParts,
    /// Extra headers; a `Host` or `User-Agent` here replaces the default one.
    pub(crate) headers: &'a [(String, String)],
    /// Request body.
    pub(crate) body: Option<&'a [u8]>,
    /// Content type of the body.
    pub(crate) content_type: Option<&'a str>,
    /// Whether to ask for a persistent connection.
    pub(crate) keep_alive: bool,
}

/// Builds the complete request (head and body) once.
pub(crate) fn build_request(spec: &RequestSpec<'_>) -> Vec<u8> {
    let has = |name: &str| {
        spec.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", spec.method, spec.url.path);
    if !has("host") {
        head.push_str(&format!("Host: {}\r\n", spec.url.host_header));
    }
    if !has("user-agent") {
        head.push_str("User-Agent: loadgen\r\n");
    }
    if !has("accept") {
        head.push_str("Accept: */*\r\n");
    }
    if !has("connection") {
        head.push_str(if spec.keep_alive {
            "Connection: keep-alive\r\n"
        } else {
            "Connection: close\r\n"
        });
    }
    for (k, v) in spec.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = spec.body {
        if !has("content-type") {
            let ct = spec.content_type.unwrap_or("text/plain");
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        // Never given by the user (refused by the config check).
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(body) = spec.body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Where the blank line that ends the head of `request` starts (after the last
/// header's CRLF): the place for one more header line.
pub(crate) fn head_end(request: &[u8]) -> Option<usize> {
    request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
}

/// Writes the head of `request` with the line `x-reloadbench-id: <id>` inserted at
/// `at` (from [`head_end`]) into `out`, which is cleared first and reused (no
/// allocation once it has grown to the head's size), and returns the body, which
/// follows `out` on the wire: a body is never copied.
pub(crate) fn with_id<'r>(request: &'r [u8], at: usize, id: u64, out: &mut Vec<u8>) -> &'r [u8] {
    let (head, rest) = request.split_at(at.min(request.len()));
    let blank = rest.len().min(2);
    out.clear();
    out.extend_from_slice(head);
    out.extend_from_slice(reloadbench_model::ledger::ID_HEADER.as_bytes());
    out.extend_from_slice(b": ");
    reloadbench_http1::push_decimal(out, id);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&rest[..blank]);
    &rest[blank..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_path() {
        let p = parse_url("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(p.host, "127.0.0.1");
        assert_eq!(p.port, 8080);
        assert_eq!(p.path, "/a/b?x=1");
        assert_eq!(p.host_header, "127.0.0.1:8080");
        let p = parse_url("http://example.com").unwrap();
        assert_eq!(
            (p.port, p.path.as_str(), p.host_header.as_str()),
            (80, "/", "example.com")
        );
        let p = parse_url("http://[::1]:81/").unwrap();
        assert_eq!(
            (p.host.as_str(), p.host_header.as_str()),
            ("::1", "[::1]:81")
        );
    }

    #[test]
    fn id_header_goes_before_the_blank_line_and_keeps_the_body() {
        let url = parse_url("http://h:1/p").unwrap();
        let req = build_request(&RequestSpec {
            method: "POST",
            url: &url,
            headers: &[],
            body: Some(b"a\r\n\r\nb"),
            content_type: None,
            keep_alive: false,
        });
        let at = head_end(&req).unwrap();
        let mut out = Vec::new();
        for id in [0, 7, 1234567890123, u64::MAX] {
            let body = with_id(&req, at, id, &mut out);
            assert_eq!(body, b"a\r\n\r\nb");
            let s = String::from_utf8(out.clone()).unwrap();
            let line = format!("\r\nx-reloadbench-id: {id}\r\n\r\n");
            assert!(s.ends_with(&line), "{s}");
            assert_eq!(
                out.len() + body.len(),
                req.len() + line.len() - "\r\n\r\n".len()
            );
        }
    }

    #[test]
    fn https_defaults_to_port_443() {
        let p = parse_url("https://example.com/a").unwrap();
        assert!(p.tls);
        assert_eq!((p.port, p.host_header.as_str()), (443, "example.com"));
        let p = parse_url("HTTPS://h:8443").unwrap();
        assert_eq!(
            (p.tls, p.port, p.host_header.as_str()),
            (true, 8443, "h:8443")
        );
        let p = parse_url("https://h:80/").unwrap();
        assert_eq!(p.host_header, "h:80");
        assert!(!parse_url("http://h/").unwrap().tls);
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert!(matches!(
            parse_url("ftp://x/"),
            Err(LoadError::UnsupportedScheme { .. })
        ));
        assert!(parse_url("localhost:80").is_err());
        assert!(parse_url("http://:80/").is_err());
        assert!(parse_url("http://h:99999/").is_err());
        assert!(parse_url("http://h:0/").is_err());
    }

    #[test]
    fn request_bytes_have_defaults_and_body() {
        let url = parse_url("http://h:1/p").unwrap();
        let headers = vec![("X-A".to_owned(), "1".to_owned())];
        let req = build_request(&RequestSpec {
            method: "POST",
            url: &url,
            headers: &headers,
            body: Some(b"abc"),
            content_type: Some("application/json"),
            keep_alive: true,
        });
        let s = String::from_utf8(req).unwrap();
        assert!(s.starts_with("POST /p HTTP/1.1\r\nHost: h:1\r\n"), "{s}");
        assert!(s.contains("Connection: keep-alive\r\n"));
        assert!(s.contains("X-A: 1\r\n"));
        assert!(s.contains("Content-Type: application/json\r\nContent-Length: 3\r\n\r\nabc"));
    }
}
