//! The scripted raw-TCP origin of the protocol tests and the head and body helpers it
//! shares with them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use super::*;

/// Every value of header `name`, in order.
pub(super) fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether the headers declare a chunked body.
pub(super) fn is_chunked(headers: &[(String, String)]) -> bool {
    values(headers, "transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// The first `Content-Length` value, if any.
pub(super) fn content_length(headers: &[(String, String)]) -> Option<usize> {
    values(headers, "content-length")
        .first()
        .map(|v| v.parse().expect("a numeric content-length"))
}

/// Decodes a chunked body at the start of `buf`: `(body, bytes used)`, or `None` while
/// incomplete. Chunk extensions and trailer fields are skipped.
pub(super) fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
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

/// One request as a [`RawOrigin`] received it.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    /// Index of the origin connection it came on, in accept order.
    pub(super) conn: usize,
    /// Its index among the requests of that connection.
    pub(super) nth: usize,
    /// The raw head, up to and including the blank line.
    pub(super) head: String,
    /// The body, de-framed.
    pub(super) body: Vec<u8>,
}

impl Seen {
    pub(super) fn request_line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or("")
    }

    pub(super) fn method(&self) -> &str {
        self.request_line().split(' ').next().unwrap_or("")
    }

    pub(super) fn path(&self) -> &str {
        self.request_line().split(' ').nth(1).unwrap_or("")
    }

    /// Every value of header `name`.
    pub(super) fn values(&self, name: &str) -> Vec<String> {
        values(&header_lines(&self.head), name)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

/// A scripted answer: raw bytes, then the connection is kept or closed.
pub(super) struct Reply {
    pub(super) bytes: Vec<u8>,
    pub(super) close: bool,
}

impl Reply {
    pub(super) fn keep(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            close: false,
        }
    }

    pub(super) fn close(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            close: true,
        }
    }
}

pub(super) type Script = dyn Fn(&Seen) -> Reply + Send + Sync;

/// An origin on `127.0.0.1:0` that reads requests (head, then a `Content-Length` or
/// chunked body; `Expect: 100-continue` is answered with `100 Continue` first),
/// records them, and answers each with what its script returns.
pub(super) struct RawOrigin {
    pub(super) addr: SocketAddr,
    pub(super) seen: Arc<Mutex<Vec<Seen>>>,
    pub(super) conns: Arc<AtomicUsize>,
    /// Connections the origin has closed (write side shut down).
    pub(super) closed: watch::Receiver<usize>,
}

impl RawOrigin {
    pub(super) async fn start(
        script: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> RawOrigin {
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

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(super) fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    /// Waits until the origin has closed `n` connections.
    pub(super) async fn wait_closed(&self, n: usize) {
        let mut rx = self.closed.clone();
        timeout(limit(), rx.wait_for(|c| *c >= n))
            .await
            .expect("origin connection not closed in time")
            .unwrap();
    }
}

/// Serves one origin connection by its script, then closes it without losing bytes.
pub(super) async fn serve_raw(
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
    while let Ok(Ok(n)) = timeout(limit(), s.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}

/// Reads one request; `None` when the connection ends first.
pub(super) async fn read_request(
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
