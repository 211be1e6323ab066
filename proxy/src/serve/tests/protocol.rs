//! Black-box HTTP/1.1 behaviour of the proxy (RFC 9112, RFC 9110), independent of the
//! serving engine: raw TCP clients in front, small scripted raw-TCP origins behind, and
//! assertions on the exact bytes each side sees.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use super::*;

/// End of a message head (index just past the blank line), if complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Header lines of a head: lowercase names, trimmed values, repeats kept in order.
fn header_lines(head: &str) -> Vec<(String, String)> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

/// Every value of header `name`, in order.
fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether the headers declare a chunked body.
fn is_chunked(headers: &[(String, String)]) -> bool {
    values(headers, "transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// The first `Content-Length` value, if any.
fn content_length(headers: &[(String, String)]) -> Option<usize> {
    values(headers, "content-length")
        .first()
        .map(|v| v.parse().expect("a numeric content-length"))
}

/// Decodes a chunked body at the start of `buf`: `(body, bytes used)`, or `None` while
/// incomplete. Chunk extensions and trailer fields are skipped.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let line_at = |at: usize| {
        buf[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| at + i)
    };
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let end = line_at(at)?;
        let line = std::str::from_utf8(&buf[at..end]).expect("an ASCII chunk-size line");
        let hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16).expect("a hex chunk size");
        at = end + 2;
        if size == 0 {
            loop {
                let end = line_at(at)?;
                let blank = end == at;
                at = end + 2;
                if blank {
                    return Some((body, at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[at..at + size]);
        assert_eq!(
            &buf[at + size..at + size + 2],
            b"\r\n",
            "chunk data not ended by CRLF"
        );
        at += size + 2;
    }
}

/// A `200 OK` with a `Content-Length` body.
fn ok(body: &[u8]) -> Vec<u8> {
    let mut v = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

/// The first bytes of a body pattern that is not all one byte.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// One request as a [`RawOrigin`] received it.
#[derive(Clone, Debug)]
struct Seen {
    /// Index of the origin connection it came on, in accept order.
    conn: usize,
    /// Its index among the requests of that connection.
    nth: usize,
    /// The raw head, up to and including the blank line.
    head: String,
    /// The body, de-framed.
    body: Vec<u8>,
}

impl Seen {
    fn request_line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or("")
    }

    fn method(&self) -> &str {
        self.request_line().split(' ').next().unwrap_or("")
    }

    fn path(&self) -> &str {
        self.request_line().split(' ').nth(1).unwrap_or("")
    }

    /// Every value of header `name`.
    fn values(&self, name: &str) -> Vec<String> {
        values(&header_lines(&self.head), name)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

/// A scripted answer: raw bytes, then the connection is kept or closed.
struct Reply {
    bytes: Vec<u8>,
    close: bool,
}

impl Reply {
    fn keep(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            close: false,
        }
    }

    fn close(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            close: true,
        }
    }
}

type Script = dyn Fn(&Seen) -> Reply + Send + Sync;

/// An origin on `127.0.0.1:0` that reads requests (head, then a `Content-Length` or
/// chunked body; `Expect: 100-continue` is answered with `100 Continue` first),
/// records them, and answers each with what its script returns.
struct RawOrigin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    conns: Arc<AtomicUsize>,
    /// Connections the origin has closed (write side shut down).
    closed: watch::Receiver<usize>,
}

impl RawOrigin {
    async fn start(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> RawOrigin {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let script: Arc<Script> = Arc::new(script);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let (closed_tx, closed) = watch::channel(0);
        let closed_tx = Arc::new(closed_tx);
        let (s2, c2) = (seen.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let conn = c2.fetch_add(1, Ordering::SeqCst);
                let job = serve_raw(s, conn, script.clone(), s2.clone(), closed_tx.clone());
                tokio::spawn(job);
            }
        });
        RawOrigin {
            addr,
            seen,
            conns,
            closed,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    /// Waits until the origin has closed `n` connections.
    async fn wait_closed(&self, n: usize) {
        let mut rx = self.closed.clone();
        timeout(LIMIT, rx.wait_for(|c| *c >= n))
            .await
            .expect("origin connection not closed in time")
            .unwrap();
    }
}

/// Serves one origin connection by its script, then closes it without losing bytes.
async fn serve_raw(
    mut s: TcpStream,
    conn: usize,
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<Seen>>>,
    closed: Arc<watch::Sender<usize>>,
) {
    let mut buf = Vec::new();
    let mut nth = 0;
    while let Some(req) = read_request(&mut s, &mut buf, conn, nth).await {
        nth += 1;
        let reply = script(&req);
        seen.lock().unwrap().push(req);
        if s.write_all(&reply.bytes).await.is_err() || reply.close {
            break;
        }
    }
    let _ = s.shutdown().await;
    closed.send_modify(|n| *n += 1);
    // Read until the peer closes too, so that unread bytes never turn the close into a reset.
    let mut sink = [0u8; 4096];
    while let Ok(Ok(n)) = timeout(LIMIT, s.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}

/// Reads more bytes into `buf`; `false` at EOF or error.
async fn fill_from(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Reads one request; `None` when the connection ends first.
async fn read_request(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    conn: usize,
    nth: usize,
) -> Option<Seen> {
    let end = loop {
        if let Some(end) = head_end(buf) {
            break end;
        }
        if !fill_from(s, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let headers = header_lines(&head);
    let expect = values(&headers, "expect");
    if expect
        .iter()
        .any(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.ok()?;
    }
    let body = if is_chunked(&headers) {
        loop {
            if let Some((body, used)) = dechunk(buf) {
                buf.drain(..used);
                break body;
            }
            if !fill_from(s, buf).await {
                return None;
            }
        }
    } else {
        let len = content_length(&headers).unwrap_or(0);
        while buf.len() < len {
            if !fill_from(s, buf).await {
                return None;
            }
        }
        buf.drain(..len).collect()
    };
    Some(Seen {
        conn,
        nth,
        head,
        body,
    })
}

/// How a response read by [`read`] was cut short.
#[derive(Debug, PartialEq, Eq)]
enum Cut {
    /// The connection ended before a complete final response head.
    BeforeHead,
    /// The connection ended inside the body of a response with this status.
    InBody(u16),
}

/// Reads the next final response (interim 1xx skipped) and de-frames its body: none
/// for HEAD (`head`), 204 and 304, else chunked, `Content-Length`, or up to EOF.
async fn read(c: &mut Client, head: bool) -> Result<Resp, Cut> {
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
async fn exchange(c: &mut Client, raw: &[u8]) -> Resp {
    c.send(raw).await;
    read(c, raw.starts_with(b"HEAD "))
        .await
        .expect("a complete response")
}

/// A plain keep-alive GET.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/// Several chunks (one with an extension, one with an upper-case size), then trailers.
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
    5;x=y\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-sum: 16\r\n\r\n";
const CHUNKED_BODY: &[u8] = b"hello 0123456789";

#[tokio::test]
async fn chunked_origin_response_is_deframed_and_the_connection_stays_usable() {
    let origin = RawOrigin::start(|_| Reply::keep(CHUNKED)).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for _ in 0..2 {
        let r = exchange(&mut c, GET).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, CHUNKED_BODY, "{}", r.text());
    }
    assert_eq!(origin.seen().len(), 2);
}

#[tokio::test]
async fn chunked_origin_response_to_http10_client_is_complete_then_closed() {
    let origin = RawOrigin::start(|_| Reply::keep(CHUNKED)).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET / HTTP/1.0\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, CHUNKED_BODY, "{}", r.text());
    assert!(
        !r.headers.iter().any(|(k, _)| k == "transfer-encoding"),
        "chunked sent to an HTTP/1.0 client: {:?}",
        r.headers
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn close_delimited_origin_response_arrives_whole() {
    let body = pattern(100_000);
    let mut raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    raw.extend_from_slice(&body);
    let origin = RawOrigin::start(move |_| Reply::close(raw.clone())).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, GET).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "body bytes differ");
}

#[tokio::test]
async fn origin_connection_close_is_not_reused() {
    let origin = RawOrigin::start(|_| {
        Reply::close(&b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..])
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for _ in 0..2 {
        let r = exchange(&mut c, GET).await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        if r.closes() {
            c = Client::connect(addr).await;
        }
    }
    assert_eq!(origin.connections(), 2);
    let conns: Vec<usize> = origin.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 1]);
}

#[tokio::test]
async fn interim_1xx_before_the_final_response_is_handled() {
    let origin = RawOrigin::start(|s| {
        let interim: &[u8] = if s.nth == 0 {
            b"HTTP/1.1 100 Continue\r\n\r\n"
        } else {
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        };
        let mut v = interim.to_vec();
        v.extend_from_slice(&ok(format!("final-{}", s.nth).as_bytes()));
        Reply::keep(v)
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for want in ["final-0", "final-1"] {
        let r = exchange(&mut c, GET).await;
        assert_eq!((r.status, r.text().as_str()), (200, want));
    }
}

#[tokio::test]
async fn no_content_and_not_modified_do_not_wait_for_a_body() {
    let origin = RawOrigin::start(|s| match s.path() {
        "/204" => Reply::keep(&b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"[..]),
        "/304" => Reply::keep(&b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"[..]),
        _ => Reply::keep(ok(b"after")),
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for (path, status) in [("/204", 204), ("/x", 200), ("/304", 304), ("/x", 200)] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = exchange(&mut c, req.as_bytes()).await;
        assert_eq!(r.status, status, "{path}");
        if status == 200 {
            assert_eq!(r.text(), "after");
        }
    }
}

#[tokio::test]
async fn not_modified_with_content_length_does_not_wait_for_a_body() {
    // A 304 may carry the selected representation's length (RFC 9110 8.6); no body follows.
    let origin = RawOrigin::start(|s| match s.path() {
        "/304" => Reply::keep(
            &b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n"[..],
        ),
        _ => Reply::keep(ok(b"after")),
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET /304 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 304);
    let r = exchange(&mut c, GET).await;
    assert_eq!((r.status, r.text().as_str()), (200, "after"));
}

#[tokio::test]
async fn head_responses_have_no_body_and_keep_the_connection_usable() {
    let origin = RawOrigin::start(|s| match (s.method(), s.path()) {
        ("HEAD", "/len") => Reply::keep(&b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..]),
        ("HEAD", _) => Reply::keep(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]),
        _ => Reply::keep(ok(b"0123456789")),
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"HEAD /len HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(exchange(&mut c, GET).await.text(), "0123456789");
    let r = exchange(&mut c, b"HEAD /chunked HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(exchange(&mut c, GET).await.text(), "0123456789");
    let methods: Vec<String> = origin
        .seen()
        .iter()
        .map(|s| s.method().to_owned())
        .collect();
    assert_eq!(methods, ["HEAD", "GET", "HEAD", "GET"]);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let origin = RawOrigin::start(|s| {
        let text = format!("{} {}", s.path(), String::from_utf8_lossy(&s.body));
        Reply::keep(ok(text.trim_end().as_bytes()))
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /three HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    for want in ["/one", "/two hello", "/three"] {
        let r = read(&mut c, false).await.expect("a complete response");
        assert_eq!((r.status, r.text().as_str()), (200, want));
    }
}

#[tokio::test]
async fn content_length_with_chunked_is_rejected_or_deframed_and_closed() {
    let origin = RawOrigin::start(|s| Reply::keep(ok(&s.body))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let r = read(&mut c, false).await.expect("a complete response");
    assert!(r.status == 400 || r.status == 200, "{}", r.status);
    for s in origin.seen() {
        let both =
            !s.values("content-length").is_empty() && !s.values("transfer-encoding").is_empty();
        assert!(!both, "forwarded with both framings: {}", s.head);
        assert_eq!(s.body, b"hello", "{}", s.head);
    }
    assert!(origin.seen().len() <= 1);
    // RFC 9112 6.1: the server closes the connection after answering such a request.
    c.expect_closed().await;
}

#[tokio::test]
async fn conflicting_content_lengths_get_400() {
    let origin = RawOrigin::start(|s| Reply::keep(ok(&s.body))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        .await;
    let r = read(&mut c, false).await.expect("a 400 response");
    assert_eq!(r.status, 400);
    c.expect_closed().await;
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn transfer_encoding_not_ending_in_chunked_gets_400() {
    let origin = RawOrigin::start(|s| Reply::keep(ok(&s.body))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await;
    // RFC 9112 6.3: the body length cannot be determined: 400, then close.
    let r = read(&mut c, false).await.expect("a 400 response");
    assert_eq!(r.status, 400);
    c.expect_closed().await;
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn invalid_content_length_gets_400() {
    let origin = RawOrigin::start(|s| Reply::keep(ok(&s.body))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    for bad in ["abc", "-1", "5, 6"] {
        let mut c = Client::connect(addr).await;
        let req = format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {bad}\r\n\r\nhello!");
        c.send(req.as_bytes()).await;
        let r = read(&mut c, false).await.expect("a 400 response");
        assert_eq!(r.status, 400, "Content-Length: {bad}");
        c.expect_closed().await;
    }
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn origin_response_with_conflicting_content_lengths_gives_502() {
    let origin = RawOrigin::start(|_| {
        Reply::close(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"[..],
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    // RFC 9112 6.3: invalid response framing from upstream is a 502.
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, GET).await;
    assert_eq!(r.status, 502, "{:?} {}", r.headers, r.text());
}

#[tokio::test]
async fn origin_response_with_content_length_and_chunked_is_relayed_per_chunked() {
    let origin = RawOrigin::start(|_| {
        Reply::close(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
               5\r\nhello\r\n0\r\n\r\n"[..],
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(GET).await;
    // RFC 9112 6.3: chunked wins and Content-Length is removed before relaying, or a 502.
    match read(&mut c, false).await {
        Ok(r) if r.status == 502 => {}
        Ok(r) => {
            assert_eq!((r.status, r.text().as_str()), (200, "hello"));
            assert_ne!(r.header("content-length"), Some("3"), "{:?}", r.headers);
        }
        Err(cut) => panic!("no complete response: {cut:?}"),
    }
}

#[tokio::test]
async fn absolute_form_target_is_forwarded_in_origin_form() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(
        &mut c,
        b"GET http://example.test/p?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = origin.seen();
    assert_eq!(seen[0].request_line(), "GET /p?q=1 HTTP/1.1");
    assert_eq!(seen[0].values("host").len(), 1, "{}", seen[0].head);
}

#[tokio::test]
async fn expect_100_continue_gets_continue_and_the_body_reaches_the_origin() {
    let origin =
        RawOrigin::start(|s| Reply::keep(ok(format!("{}", s.body.len()).as_bytes()))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let body = pattern(20_000);
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes()).await;
    // Nothing of the body is sent before the proxy answers.
    let end = loop {
        if let Some(end) = head_end(&c.buf) {
            break end;
        }
        assert!(c.fill().await > 0, "closed before 100 Continue");
    };
    let first = String::from_utf8_lossy(&c.buf[..end]).into_owned();
    assert!(first.starts_with("HTTP/1.1 100"), "{first}");
    c.buf.drain(..end);
    c.send(&body).await;
    let r = read(&mut c, false).await.expect("a complete response");
    assert_eq!((r.status, r.text()), (200, body.len().to_string()));
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].body == body, "body bytes differ");
}

#[tokio::test]
async fn host_is_forwarded_unchanged_and_supplied_for_http10() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET / HTTP/1.1\r\nHost: Example.TEST:8080\r\n\r\n").await;
    assert_eq!(r.status, 200);
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200);
    let seen = origin.seen();
    assert_eq!(seen[0].values("host"), ["Example.TEST:8080"]);
    let host = seen[1].values("host");
    assert!(host.len() == 1 && !host[0].is_empty(), "{}", seen[1].head);
}

#[tokio::test]
async fn http11_request_without_host_gets_400() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\n\r\n").await;
    // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    let r = read(&mut c, false).await.expect("a 400 response");
    assert_eq!(r.status, 400);
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_dropped_and_repeats_kept() {
    let origin = RawOrigin::start(|_| {
        Reply::keep(
            &b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: x-internal\r\n\
               X-Internal: 1\r\nProxy-Authenticate: Basic realm=\"o\"\r\nX-Custom: v\r\n\
               Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok"[..],
        )
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    let r = exchange(&mut c, GET).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    for gone in ["keep-alive", "x-internal", "proxy-authenticate"] {
        assert!(r.header(gone).is_none(), "{gone} relayed: {:?}", r.headers);
    }
    let conn = values(&r.headers, "connection")
        .join(",")
        .to_ascii_lowercase();
    assert!(!conn.contains("x-internal"), "{conn}");
    assert_eq!(r.header("x-custom"), Some("v"));
    assert_eq!(values(&r.headers, "set-cookie"), ["a=1", "b=2"]);
}

#[tokio::test]
async fn malformed_origin_response_head_gives_502() {
    let origin =
        RawOrigin::start(|_| Reply::close(&b"\x01garbage that is not http\r\n\r\n"[..])).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    assert_eq!(exchange(&mut c, GET).await.status, 502);
}

#[tokio::test]
async fn origin_closing_mid_body_cuts_the_client_connection() {
    let mut raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
    raw.extend_from_slice(b"0123456789");
    let origin = RawOrigin::start(move |_| Reply::close(raw.clone())).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(GET).await;
    match read(&mut c, false).await {
        // Cut before anything was relayed: a 502 is the right answer too.
        Ok(r) => assert_eq!(r.status, 502, "complete response: {:?}", r.headers),
        Err(cut) => {
            assert!(matches!(cut, Cut::InBody(200) | Cut::BeforeHead), "{cut:?}");
            c.expect_closed().await;
        }
    }
}

#[tokio::test]
async fn origin_closing_mid_chunked_body_cuts_the_client_connection() {
    let raw =
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\n01234"[..];
    let origin = RawOrigin::start(move |_| Reply::close(raw)).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(GET).await;
    // The client must never see the body ended as if it were complete.
    match read(&mut c, false).await {
        Ok(r) => assert_eq!(
            r.status,
            502,
            "complete response: {:?} {}",
            r.headers,
            r.text()
        ),
        Err(cut) => {
            assert!(matches!(cut, Cut::InBody(200) | Cut::BeforeHead), "{cut:?}");
            c.expect_closed().await;
        }
    }
}

#[tokio::test]
async fn large_bodies_arrive_intact() {
    const MIB: usize = 1 << 20;
    let body = Arc::new(pattern(MIB));
    let b = body.clone();
    let origin = RawOrigin::start(move |s| {
        if s.path() == "/cl" {
            return Reply::keep(ok(&b));
        }
        let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for chunk in b.chunks(16 * 1024) {
            v.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            v.extend_from_slice(chunk);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"0\r\n\r\n");
        Reply::keep(v)
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    for path in ["/cl", "/chunked"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = exchange(&mut c, req.as_bytes()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), MIB, "{path}");
        assert!(r.body == *body, "{path}: body bytes differ");
    }
}

#[tokio::test]
async fn post_after_the_origin_closed_an_idle_pooled_connection_does_not_hang() {
    // The first origin connection answers once (keep-alive framing) and then closes.
    let origin = RawOrigin::start(|s| {
        let reply = ok(format!("{} {}", s.method(), s.body.len()).as_bytes());
        if s.conn == 0 {
            Reply::close(reply)
        } else {
            Reply::keep(reply)
        }
    })
    .await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    assert_eq!(exchange(&mut c, GET).await.text(), "GET 0");
    origin.wait_closed(1).await;
    let r = exchange(
        &mut c,
        b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    match r.status {
        200 => assert_eq!(r.text(), "POST 5"),
        502 => {}
        other => panic!("unexpected status {other}"),
    }
    if r.closes() {
        c = Client::connect(addr).await;
    }
    let r = exchange(&mut c, GET).await;
    assert_eq!((r.status, r.text().as_str()), (200, "GET 0"));
}

#[tokio::test]
async fn whitespace_before_a_header_colon_gets_400() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nFoo : bar\r\n\r\n")
        .await;
    let r = read(&mut c, false).await.expect("a 400 response");
    assert_eq!(r.status, 400);
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
}

#[tokio::test]
async fn obs_fold_in_a_request_header_gets_400_or_is_unfolded() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let mut c = Client::connect(addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nFoo: bar\r\n baz\r\n\r\n")
        .await;
    let r = read(&mut c, false).await.expect("a response");
    // RFC 9112 5.2: reject with 400, or replace each obs-fold with spaces before forwarding.
    assert!(r.status == 400 || r.status == 200, "{}", r.status);
    for s in origin.seen() {
        let folded = s.head.split("\r\n").any(|l| l.starts_with([' ', '\t']));
        assert!(!folded, "obs-fold forwarded: {}", s.head);
    }
}

#[tokio::test]
async fn very_long_path_is_forwarded_or_refused_sanely() {
    let origin = RawOrigin::start(|_| Reply::keep(ok(b"ok"))).await;
    let (_server, addr) = proxy(vec![origin.addr], |_| {});
    let path = format!("/{}", "a".repeat(20 * 1024));
    let mut c = Client::connect(addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = exchange(&mut c, req.as_bytes()).await;
    match r.status {
        200 => assert_eq!(origin.seen()[0].path(), path),
        414 | 431 => {}
        other => panic!("unexpected status {other}"),
    }
    let mut c = Client::connect(addr).await;
    assert_eq!(exchange(&mut c, GET).await.status, 200);
}
