//! The two ends of an HTTP/2 stream as the byte streams the HTTP/1.1 exchange reads and
//! writes:
//!
//! - [`RequestBody`]: the stream's DATA frames as an HTTP/1.1 request body, chunked
//!   (when the client gave no `content-length`) or as is; each frame's flow-control
//!   capacity is released once the relay has taken its bytes, so the client sends no
//!   faster than the origin reads;
//! - [`ResponseWriter`]: the HTTP/1.1 response the exchange writes for a client (a head,
//!   then the body decoded) turned into a HEADERS frame, with the connection-specific
//!   fields dropped, and DATA frames sent as the peer's flow-control window allows:
//!   never more than the capacity h2 grants, which `limits.h2_max_send_buffer` bounds.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The request body of a stream, read as an HTTP/1.1 body.
pub(crate) struct RequestBody {
    recv: RecvStream,
    /// Encode with the chunked coding (the head said `transfer-encoding: chunked`).
    chunked: bool,
    /// Bytes of the last frame (with its chunk framing) not read yet.
    pending: Bytes,
    /// The end of the body was reached (and, chunked, the last chunk is in `pending`).
    ended: bool,
}

impl RequestBody {
    pub(crate) fn new(recv: RecvStream, chunked: bool) -> RequestBody {
        RequestBody {
            recv,
            chunked,
            pending: Bytes::new(),
            ended: false,
        }
    }
}

impl AsyncRead for RequestBody {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // The relay writes what it read before it reads again: releasing
                    // here keeps the client at the origin's pace.
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    if data.is_empty() {
                        continue;
                    }
                    this.pending = if this.chunked {
                        let mut framed = BytesMut::with_capacity(data.len() + 20);
                        framed.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
                        framed.put_slice(&data);
                        framed.put_slice(b"\r\n");
                        framed.freeze()
                    } else {
                        data
                    };
                }
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => {
                    this.ended = true;
                    if this.chunked {
                        this.pending = Bytes::from_static(b"0\r\n\r\n");
                    }
                }
            }
        }
    }
}

/// Where a stream's response is.
enum Phase {
    /// Collecting the HTTP/1.1 head.
    Head {
        respond: SendResponse<Bytes>,
        head: Vec<u8>,
    },
    /// HEADERS sent: the body goes out as DATA. `left`: the bytes of a body whose
    /// length the head gave that are still to come; its last DATA frame carries
    /// END_STREAM.
    Body {
        stream: SendStream<Bytes>,
        left: Option<u64>,
    },
    /// The whole body was sent with END_STREAM on its last DATA frame; the stream may
    /// still be reset.
    Ended(SendStream<Bytes>),
    /// The stream ended (END_STREAM sent, or reset).
    Done,
}

/// The response side of a stream: an `AsyncWrite` that takes an HTTP/1.1 response
/// (head, then the body without transfer coding). Cloned handles share it, so that a
/// [`ResponseWriter::poll_reset`] can watch for the client's `RST_STREAM` while the
/// exchange writes.
#[derive(Clone)]
pub(crate) struct ResponseWriter(Arc<Mutex<Phase>>);

/// Fields that are connection-specific in HTTP/2 (RFC 9113 8.2.2), never sent.
/// Appends `buf` to the response head gathered so far; the length of the head with its
/// empty line once it is whole (bytes after it belong to the body).
pub(super) fn push_head(head: &mut Vec<u8>, buf: &[u8]) -> Option<usize> {
    let scanned = head.len().saturating_sub(3);
    head.extend_from_slice(buf);
    head.get(scanned..)
        .and_then(|t| t.windows(4).position(|w| w == b"\r\n\r\n"))
        .map(|i| scanned + i + 4)
}

fn connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// The body length a response head gives (`content-length`), if any.
fn body_length(resp: &http::Response<()>) -> Option<u64> {
    resp.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Sends `data` as DATA on `stream`, with END_STREAM if it completes a body of known
/// length (`left`); returns whether it did.
fn send_body(
    stream: &mut SendStream<Bytes>,
    data: Bytes,
    left: &mut Option<u64>,
) -> io::Result<bool> {
    let last = match left {
        Some(l) => {
            *l = l.saturating_sub(data.len() as u64);
            *l == 0
        }
        None => false,
    };
    stream.send_data(data, last).map_err(io::Error::other)?;
    Ok(last)
}

/// A response for the HTTP/1.1 head `head` (complete, without what follows it).
fn response_of(head: &[u8]) -> io::Result<http::Response<()>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unreadable response head");
    let mut fields = [httparse::EMPTY_HEADER; reloadbench_http1::MAX_HEADERS + 4];
    let mut parsed = httparse::Response::new(&mut fields);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(bad()),
    }
    let mut resp = http::Response::builder().status(parsed.code.ok_or_else(bad)?);
    for h in parsed.headers.iter() {
        if !connection_specific(h.name) {
            resp = resp.header(h.name, h.value);
        }
    }
    resp.body(()).map_err(|_| bad())
}

impl ResponseWriter {
    pub(crate) fn new(respond: SendResponse<Bytes>) -> ResponseWriter {
        ResponseWriter(Arc::new(Mutex::new(Phase::Head {
            respond,
            head: Vec::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether nothing of the response was sent yet (a proxy answer may still be sent).
    pub(crate) fn not_started(&self) -> bool {
        matches!(&*self.lock(), Phase::Head { head, .. } if head.is_empty())
    }

    /// Sends `100 Continue` (an `Expect: 100-continue` request).
    pub(crate) fn send_continue(&self) {
        if let Phase::Head { respond, .. } = &mut *self.lock() {
            let mut go_on = http::Response::new(());
            *go_on.status_mut() = http::StatusCode::CONTINUE;
            let _ = respond.send_informational(go_on);
        }
    }

    /// Ends the stream after a complete response: its last DATA frame had END_STREAM
    /// already when the head gave the body's length, else an empty DATA frame with
    /// END_STREAM is sent. A response whose head never completed resets the stream
    /// instead.
    pub(crate) fn finish(&self) {
        let mut phase = self.lock();
        match std::mem::replace(&mut *phase, Phase::Done) {
            Phase::Body { mut stream, .. } => {
                let _ = stream.send_data(Bytes::new(), true);
            }
            Phase::Head { mut respond, .. } => respond.send_reset(Reason::INTERNAL_ERROR),
            Phase::Ended(_) | Phase::Done => {}
        }
    }

    /// Resets the stream with `reason`: the client sees the response cut.
    pub(crate) fn reset(&self, reason: Reason) {
        let mut phase = self.lock();
        match std::mem::replace(&mut *phase, Phase::Done) {
            Phase::Body { mut stream, .. } | Phase::Ended(mut stream) => {
                stream.send_reset(reason);
            }
            Phase::Head { mut respond, .. } => respond.send_reset(reason),
            Phase::Done => {}
        }
    }

    /// Resolves when the client resets the stream (or the connection goes away with an
    /// error: the reason of its `GOAWAY`), or with `None` when the connection ends
    /// without one (dropped, or its socket failed).
    pub(crate) fn poll_reset(&self, cx: &mut Context<'_>) -> Poll<Option<Reason>> {
        let mut phase = self.lock();
        let polled = match &mut *phase {
            Phase::Head { respond, .. } => respond.poll_reset(cx),
            Phase::Body { stream, .. } | Phase::Ended(stream) => stream.poll_reset(cx),
            Phase::Done => return Poll::Pending,
        };
        polled.map(Result::ok)
    }
}

impl ResponseWriter {
    /// Whether the client has reset the stream already (or the connection went away
    /// with an error), as [`ResponseWriter::poll_reset`] would say now; false once the
    /// stream ended on refproxy's side.
    pub(crate) fn reset_by_client(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(self.poll_reset(&mut cx), Poll::Ready(Some(_)))
    }
}

impl AsyncWrite for ResponseWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut phase = self.lock();
        match &mut *phase {
            Phase::Head { head, .. } => {
                let Some(end) = push_head(head, buf) else {
                    return Poll::Ready(Ok(buf.len()));
                };
                // Body bytes written with the head are not taken here: they come again
                // and go out as capacity allows, like the rest of the body, so that h2
                // never holds more than `limits.h2_max_send_buffer` for the stream.
                let rest = head.len() - end;
                let resp = response_of(head.get(..end).unwrap_or_default())?;
                let Phase::Head { mut respond, .. } = std::mem::replace(&mut *phase, Phase::Done)
                else {
                    return Poll::Ready(Err(io::ErrorKind::InvalidData.into()));
                };
                let left = body_length(&resp);
                let stream = respond
                    .send_response(resp, false)
                    .map_err(io::Error::other)?;
                *phase = Phase::Body { stream, left };
                Poll::Ready(Ok(buf.len() - rest))
            }
            Phase::Body { stream, left } => {
                stream.reserve_capacity(buf.len());
                loop {
                    match ready!(stream.poll_capacity(cx)) {
                        Some(Ok(n)) if n > 0 => {
                            let n = n.min(buf.len());
                            let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                            if send_body(stream, data, left)? {
                                let Phase::Body { stream, .. } =
                                    std::mem::replace(&mut *phase, Phase::Done)
                                else {
                                    return Poll::Ready(Err(io::ErrorKind::InvalidData.into()));
                                };
                                *phase = Phase::Ended(stream);
                            }
                            return Poll::Ready(Ok(n));
                        }
                        // Capacity 0 is no answer: polling again waits for a window update.
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                        None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                    }
                }
            }
            Phase::Ended(_) | Phase::Done => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_specific_fields_are_not_sent() {
        let head = b"HTTP/1.1 201 Created\r\nconnection: close\r\nkeep-alive: x\r\nx-a: 1\r\ncontent-length: 3\r\n\r\n";
        let resp = response_of(head).unwrap();
        assert_eq!(resp.status(), 201);
        assert!(resp.headers().get("connection").is_none());
        assert!(resp.headers().get("keep-alive").is_none());
        assert_eq!(resp.headers()["x-a"], "1");
        assert_eq!(resp.headers()["content-length"], "3");
    }
}
