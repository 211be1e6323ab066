//! Reading the proxy's responses on the client side: de-framing and cut detection.

use super::*;

/// How a response read by [`read`] was cut short.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Cut {
    /// The connection ended before a complete final response head.
    BeforeHead,
    /// The connection ended inside the body of a response with this status.
    InBody(u16),
}

/// Reads the next final response (interim 1xx skipped) and de-frames its body: none
/// for HEAD (`head`), 204 and 304, else chunked, `Content-Length`, or up to EOF.
pub(super) async fn read(c: &mut Client, head: bool) -> Result<Resp, Cut> {
    loop {
        let end = loop {
            if let Some(end) = head_end(&c.buf) {
                break end;
            }
            if c.fill().await == 0 {
                return Err(Cut::BeforeHead);
            }
        };
        let text = String::from_utf8(c.buf[..end].to_vec()).expect("an ASCII response head");
        c.buf.drain(..end);
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let headers = header_lines(&text);
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if is_chunked(&headers) {
            loop {
                if let Some((body, used)) = dechunk(&c.buf) {
                    c.buf.drain(..used);
                    break body;
                }
                if c.fill().await == 0 {
                    return Err(Cut::InBody(status));
                }
            }
        } else if let Some(len) = content_length(&headers) {
            while c.buf.len() < len {
                if c.fill().await == 0 {
                    return Err(Cut::InBody(status));
                }
            }
            c.buf.drain(..len).collect()
        } else {
            while c.fill().await > 0 {}
            std::mem::take(&mut c.buf)
        };
        return Ok(Resp {
            status,
            headers,
            body,
        });
    }
}

/// Sends `raw` and reads the response, which must be complete.
pub(super) async fn exchange(c: &mut Client, raw: &[u8]) -> Resp {
    c.send(raw).await;
    read(c, raw.starts_with(b"HEAD "))
        .await
        .expect("a complete response")
}

/// A plain keep-alive GET.
pub(super) const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/// Several chunks (one with an extension, one with an upper-case size), then trailers.
pub(super) const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
    5;x=y\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-sum: 16\r\n\r\n";
pub(super) const CHUNKED_BODY: &[u8] = b"hello 0123456789";
