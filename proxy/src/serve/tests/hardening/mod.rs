//! Black-box tests of the proxy's HTTP/1.1 edge cases: framing headers named by
//! `Connection`, early and streaming origin responses, timers around bodies, interim
//! responses and the retry rule, chunk-size syntax, targets and `Host`, configuration
//! extremes. This module holds their raw origins and client-side readers.

use std::future::Future;
use std::sync::Mutex;

use std::time::{Duration, Instant};

use tokio::net::TcpSocket;

use super::*;

mod answers;
mod smuggling;
mod targets;
mod timers;
mod trailers;
mod uploads;

/// The value of header `name` in `headers`, if any.
pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Accepts on `127.0.0.1:0` and runs `handler(stream, connection index)` per connection.
/// With `small_rcvbuf`, accepted sockets get a 64 KiB receive buffer (no autotuning), so
/// that little of a request body can be in flight towards the origin.
pub(super) async fn listen_with<F, Fut>(small_rcvbuf: bool, handler: F) -> SocketAddr
where
    F: Fn(TcpStream, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let socket = TcpSocket::new_v4().unwrap();
    if small_rcvbuf {
        socket.set_recv_buffer_size(64 * 1024).unwrap();
    }
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = socket.listen(128).unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(handler(s, n));
            n += 1;
        }
    });
    addr
}

/// Reads a head into `buf`; returns it (as text, removed from `buf`), `None` at EOF.
pub(super) async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = head_end(buf) {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end);
            return Some(head);
        }
        if !fill_from(s, buf).await {
            return None;
        }
    }
}

/// Where a chunked body at the start of `buf` ends (leniently: the size is the hex
/// prefix of each size line), `None` while incomplete.
pub(super) fn chunked_end(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let line = &buf[at..line_end];
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let size = usize::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()?;
        if size == 0 {
            let rest = buf.get(line_end..)?;
            return rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| line_end + i + 4);
        }
        at = line_end + 2 + size + 2;
        if buf.len() < at {
            return None;
        }
    }
}

/// One request as a [`Recorder`] got it.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) conn: usize,
    pub(super) head: String,
    /// The body as received (`Content-Length` bytes, or the raw chunked coding).
    pub(super) body: Vec<u8>,
}

impl Seen {
    pub(super) fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    pub(super) fn header(&self, name: &str) -> Option<String> {
        header(&header_lines(&self.head), name).map(str::to_owned)
    }
}

/// What a [`Recorder`] does after reading a request.
pub(super) enum Act {
    /// Writes these bytes and reads the next request.
    Keep(Vec<u8>),
    /// Writes these bytes, then closes (reading the rest, so that the close is clean).
    Close(Vec<u8>),
}

/// An origin that reads requests (a `Content-Length` body, or a chunked body kept raw up
/// to `0\r\n\r\n`), records them, and answers by its script.
pub(super) struct Recorder {
    pub(super) addr: SocketAddr,
    pub(super) seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub(super) async fn start(
        script: impl Fn(&Seen, usize) -> Act + Send + Sync + 'static,
    ) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let s2 = seen.clone();
        let addr = listen_with(false, move |mut s, conn| {
            let (seen, script) = (s2.clone(), script.clone());
            async move {
                let mut buf = Vec::new();
                let mut nth = 0;
                while let Some(head) = read_head(&mut s, &mut buf).await {
                    let lines = header_lines(&head);
                    let chunked = header(&lines, "transfer-encoding")
                        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
                    let body = if chunked {
                        loop {
                            if let Some(end) = chunked_end(&buf) {
                                break buf.drain(..end).collect();
                            }
                            if !fill_from(&mut s, &mut buf).await {
                                return;
                            }
                        }
                    } else {
                        let len = header(&lines, "content-length")
                            .map_or(0, |v| v.parse::<usize>().unwrap_or(0));
                        while buf.len() < len {
                            if !fill_from(&mut s, &mut buf).await {
                                return;
                            }
                        }
                        buf.drain(..len).collect()
                    };
                    let req = Seen { conn, head, body };
                    let act = script(&req, nth);
                    seen.lock().unwrap().push(req);
                    nth += 1;
                    let (bytes, close) = match act {
                        Act::Keep(b) => (b, false),
                        Act::Close(b) => (b, true),
                    };
                    if s.write_all(&bytes).await.is_err() || close {
                        break;
                    }
                }
                let _ = s.shutdown().await;
                let mut sink = [0u8; 4096];
                while let Ok(Ok(n)) = timeout(limit(), s.read(&mut sink)).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        })
        .await;
        Recorder { addr, seen }
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A response as the client got it.
#[derive(Debug)]
pub(super) struct Got {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

/// Reads the next response head, 1xx included; `None` at EOF or reset.
pub(super) async fn next_head(c: &mut Client) -> Option<(u16, Vec<(String, String)>)> {
    let end = loop {
        if let Some(end) = head_end(&c.buf) {
            break end;
        }
        if c.fill().await == 0 {
            return None;
        }
    };
    let text = String::from_utf8_lossy(&c.buf[..end]).into_owned();
    c.buf.drain(..end);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, header_lines(&text)))
}

/// Reads the next final response (1xx skipped) with its body: chunked (decoded),
/// `Content-Length`, or up to EOF; `None` when the connection ends first.
pub(super) async fn final_response(c: &mut Client, head_request: bool) -> Option<Got> {
    let (status, headers) = loop {
        let (status, headers) = next_head(c).await?;
        if !(100..200).contains(&status) {
            break (status, headers);
        }
    };
    let chunked = header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let body = if head_request || status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = c.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if c.fill().await == 0 {
                    return None;
                }
            };
            let line = String::from_utf8_lossy(&c.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            while c.buf.len() < line_end + 2 + size + 2 {
                if c.fill().await == 0 {
                    return None;
                }
            }
            body.extend_from_slice(&c.buf[line_end + 2..line_end + 2 + size]);
            c.buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
        body
    } else if let Some(len) = header(&headers, "content-length") {
        let len: usize = len.parse().ok()?;
        while c.buf.len() < len {
            if c.fill().await == 0 {
                return None;
            }
        }
        c.buf.drain(..len).collect()
    } else {
        while c.fill().await > 0 {}
        std::mem::take(&mut c.buf)
    };
    Some(Got {
        status,
        headers,
        body,
    })
}

/// Reads until EOF or reset, bounded by `limit`; `true` when the connection ended.
pub(super) async fn ends_within(c: &mut Client, limit: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, c.stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// An origin that answers each request with its path as the body; `/slow` is answered
/// after 300 ms of work.
pub(super) async fn path_origin() -> SocketAddr {
    listen_with(false, |mut s, _| async move {
        let mut buf = Vec::new();
        while let Some(head) = read_head(&mut s, &mut buf).await {
            let len: usize = header(&header_lines(&head), "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < len {
                if !fill_from(&mut s, &mut buf).await {
                    return;
                }
            }
            buf.drain(..len);
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            if path == "/slow" {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            if s.write_all(&ok(path.as_bytes())).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// An origin that answers `413` and closes as soon as it has a request head, without
/// reading the body (the kernel then resets the connection).
pub(super) async fn early_413_origin() -> SocketAddr {
    listen_with(true, |mut s, _| async move {
        let mut buf = Vec::new();
        if read_head(&mut s, &mut buf).await.is_some() {
            let _ = s
                .write_all(
                    b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
        }
    })
    .await
}

/// Sends `head` and then `body` in a task of its own (errors ignored: the server may
/// stop reading), so that the caller can read the response meanwhile.
pub(super) fn upload(
    c: &mut Client,
    head: Vec<u8>,
    body: Arc<Vec<u8>>,
) -> tokio::task::JoinHandle<()> {
    let write = c.stream.try_clone_write();
    tokio::spawn(async move {
        let mut w = write;
        if w.write_all(&head).await.is_ok() {
            let _ = w.write_all(&body).await;
        }
    })
}

/// The write half of a client connection, usable from another task.
pub(super) trait CloneWrite {
    fn try_clone_write(&mut self) -> tokio::net::tcp::OwnedWriteHalf;
}

impl CloneWrite for TcpStream {
    fn try_clone_write(&mut self) -> tokio::net::tcp::OwnedWriteHalf {
        let std = {
            let fd = std::os::fd::AsFd::as_fd(self).try_clone_to_owned().unwrap();
            std::net::TcpStream::from(fd)
        };
        std.set_nonblocking(true).unwrap();
        TcpStream::from_std(std).unwrap().into_split().1
    }
}

/// An origin that streams each request body back as it arrives (chunked), before the
/// request is complete, like any full-duplex echo service.
pub(super) async fn streaming_echo_origin() -> SocketAddr {
    listen_with(true, |mut s, _| async move {
        let mut buf = Vec::new();
        let Some(head) = read_head(&mut s, &mut buf).await else {
            return;
        };
        let mut left: usize = header(&header_lines(&head), "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        while left > 0 {
            if buf.is_empty() && !fill_from(&mut s, &mut buf).await {
                return;
            }
            let n = buf.len().min(left);
            let mut chunk = format!("{n:x}\r\n").into_bytes();
            chunk.extend_from_slice(&buf[..n]);
            chunk.extend_from_slice(b"\r\n");
            buf.drain(..n);
            left -= n;
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    })
    .await
}
