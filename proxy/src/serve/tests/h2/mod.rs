//! HTTP/2 from clients: an `h2` client and a raw frame client written here, against the
//! proxy in process. `wire` reads the drain's frames, `limits` the limits and protocol
//! errors, `premature` the premature-reset guard, `address_budget` its bound per client
//! address across connections, `forward` what reaches the origin and comes back, `share`
//! what one connection may hold of the origin slots.

mod address_budget;
mod forward;
mod limits;
mod premature;
mod share;
mod wire;
mod ws;

use std::convert::Infallible;

use ::h2::client::SendRequest;
use tokio::sync::{mpsc, watch};

use super::*;

/// Frame types (RFC 9113 6).
pub(super) const DATA: u8 = 0;
pub(super) const HEADERS: u8 = 1;
pub(super) const RST_STREAM: u8 = 3;
pub(super) const SETTINGS: u8 = 4;
pub(super) const PING: u8 = 6;
pub(super) const GOAWAY: u8 = 7;
pub(super) const WINDOW_UPDATE: u8 = 8;
/// Flags.
pub(super) const END_STREAM: u8 = 0x1;
pub(super) const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;

/// A proxy with HTTP/2 on, and `tweak` applied.
pub(super) fn h2_proxy(
    origins: Vec<SocketAddr>,
    tweak: impl FnOnce(&mut Config),
) -> (Server, SocketAddr) {
    proxy(origins, |c| {
        c.http2.enabled = true;
        tweak(c);
    })
}

/// One frame as read off the wire.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
    pub(super) payload: Vec<u8>,
}

impl Frame {
    /// A GOAWAY's last-stream-id and error code.
    pub(super) fn goaway(&self) -> (u32, u32) {
        assert_eq!(self.kind, GOAWAY, "{self:?}");
        let word = |i: usize| u32::from_be_bytes(self.payload[i..i + 4].try_into().unwrap());
        (word(0) & 0x7fff_ffff, word(4))
    }

    /// A RST_STREAM's error code.
    pub(super) fn reset_code(&self) -> u32 {
        assert_eq!(self.kind, RST_STREAM, "{self:?}");
        u32::from_be_bytes(self.payload[..4].try_into().unwrap())
    }
}

/// An HTTP/2 client that writes and reads frames itself. SETTINGS from the server are
/// acknowledged as they are read; nothing else is done behind the test's back.
pub(super) struct Raw {
    pub(super) stream: TcpStream,
    buf: Vec<u8>,
    /// The server's SETTINGS parameters, as received.
    pub(super) settings: Vec<(u16, u32)>,
}

impl Raw {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub(super) async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap();
        Raw::start(stream).await
    }

    /// As [`Raw::connect`], from the local address `from` (port 0): another client
    /// address than 127.0.0.1.
    pub(super) async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Raw {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        Raw::start(stream).await
    }

    /// Sends the preface and an empty SETTINGS frame on `stream`.
    async fn start(stream: TcpStream) -> Raw {
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
            settings: Vec::new(),
        };
        raw.write(crate::serve::h2::PREFACE).await;
        raw.send(SETTINGS, 0, 0, &[]).await;
        raw
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// A frame's bytes.
    pub(super) fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut out = len.to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    pub(super) async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let bytes = Raw::frame_bytes(kind, flags, stream, payload);
        self.write(&bytes).await;
    }

    /// A HEADERS frame (END_HEADERS) for a request with these fields (pseudo-header
    /// fields first), HPACK literals without indexing or Huffman coding.
    pub(super) fn headers_bytes(stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
        let mut block = Vec::new();
        for (name, value) in fields {
            block.push(0);
            hpack_string(&mut block, name.as_bytes());
            hpack_string(&mut block, value.as_bytes());
        }
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        Raw::frame_bytes(HEADERS, flags, stream, &block)
    }

    /// `GET path` on `stream`, without a body.
    pub(super) async fn get(&mut self, stream: u32, path: &str) {
        let fields = [
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "localhost"),
            (":path", path),
        ];
        let bytes = Raw::headers_bytes(stream, &fields, true);
        self.write(&bytes).await;
    }

    /// The next frame; `None` at the end of the connection (EOF or reset).
    pub(super) async fn frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes(self.buf[5..9].try_into().unwrap())
                            & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    if f.kind == SETTINGS && f.flags & ACK == 0 {
                        for p in f.payload.chunks(6) {
                            let id = u16::from_be_bytes([p[0], p[1]]);
                            let v = u32::from_be_bytes(p[2..6].try_into().unwrap());
                            self.settings.push((id, v));
                        }
                        // The server may be gone already (a GOAWAY and a close).
                        let ack = Raw::frame_bytes(SETTINGS, ACK, 0, &[]);
                        let _ = self.stream.write_all(&ack).await;
                    }
                    return Some(f);
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match timeout(limit(), self.stream.read(&mut chunk))
                .await
                .expect("a frame in time")
            {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Frames up to and including the first one `pick` accepts (panics at the end of the
    /// connection). SETTINGS, WINDOW_UPDATE and PING ACK frames are left out.
    pub(super) async fn until(&mut self, pick: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut seen = Vec::new();
        loop {
            let f = self
                .frame()
                .await
                .unwrap_or_else(|| panic!("connection ended; seen {seen:?}"));
            let done = pick(&f);
            let noise = f.kind == SETTINGS
                || f.kind == WINDOW_UPDATE
                || (f.kind == PING && f.flags & ACK != 0);
            if !noise || done {
                seen.push(f);
            }
            if done {
                return seen;
            }
        }
    }

    /// Reads to the end of the connection; the frames that came before it.
    pub(super) async fn until_closed(&mut self) -> Vec<Frame> {
        let mut seen = Vec::new();
        while let Some(f) = self.frame().await {
            seen.push(f);
        }
        seen
    }
}

/// An HPACK string literal without Huffman coding (RFC 7541 5.2).
fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    // Integer with a 7-bit prefix (RFC 7541 5.1).
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128 + 128) as u8);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(s);
}

/// Whether `f` ends stream `id` (END_STREAM on a DATA or HEADERS frame).
pub(super) fn ends(f: &Frame, id: u32) -> bool {
    f.stream == id && (f.kind == DATA || f.kind == HEADERS) && f.flags & END_STREAM != 0
}

/// An h2c client (prior knowledge) on `addr`; its connection is driven by a task.
pub(super) async fn h2c(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    h2_over(tcp).await
}

/// An h2 client over `io`.
pub(super) async fn h2_over<T>(io: T) -> SendRequest<Bytes>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = timeout(limit(), ::h2::client::handshake(io))
        .await
        .unwrap()
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// A response read in full by the h2 client.
pub(super) struct H2Resp {
    pub(super) status: u16,
    pub(super) headers: ::http::HeaderMap,
    pub(super) body: Vec<u8>,
}

/// Sends `req` with `body` (none when empty) and reads the response.
pub(super) async fn h2_send(
    send: &SendRequest<Bytes>,
    req: ::http::Request<()>,
    body: &[&[u8]],
) -> Result<H2Resp, ::h2::Error> {
    let mut send = timeout(limit(), send.clone().ready()).await.unwrap()?;
    let (resp, mut up) = send.send_request(req, body.is_empty())?;
    for (i, part) in body.iter().enumerate() {
        up.send_data(Bytes::copy_from_slice(part), i + 1 == body.len())?;
    }
    let resp = timeout(limit(), resp).await.unwrap()?;
    let (parts, mut recv) = resp.into_parts();
    let mut out = Vec::new();
    while let Some(data) = timeout(limit(), recv.data()).await.unwrap() {
        let data = data?;
        let _ = recv.flow_control().release_capacity(data.len());
        out.extend_from_slice(&data);
    }
    Ok(H2Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: out,
    })
}

/// `GET http://localhost<path>` over h2.
pub(super) async fn h2_get(send: &SendRequest<Bytes>, path: &str) -> Result<H2Resp, ::h2::Error> {
    let req = ::http::Request::get(format!("http://localhost{path}"))
        .body(())
        .unwrap();
    h2_send(send, req, &[]).await
}

/// An origin (HTTP/1.1) that answers `/slow` only once the gate is opened, and anything
/// else at once, with a 5-byte body; it says on `arrived` when a request comes, and
/// counts the responses it completed.
pub(super) struct GatedOrigin {
    pub(super) addr: SocketAddr,
    pub(super) gate: watch::Sender<bool>,
    pub(super) arrived: mpsc::UnboundedReceiver<String>,
    pub(super) served: Arc<std::sync::atomic::AtomicU64>,
}

pub(super) async fn gated_origin() -> GatedOrigin {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let gate = watch::Sender::new(false);
    let (tx, arrived) = mpsc::unbounded_channel();
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (g, s) = (gate.clone(), served.clone());
    tokio::spawn(async move {
        while let Ok((conn, _)) = l.accept().await {
            let (g, s, tx) = (g.clone(), s.clone(), tx.clone());
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let (mut open, s, tx) = (g.subscribe(), s.clone(), tx.clone());
                async move {
                    let path = req.uri().path().to_owned();
                    let _ = tx.send(path.clone());
                    if path == "/slow" {
                        let _ = open.wait_for(|o| *o).await;
                    }
                    s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"hello",
                    ))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), svc),
            );
        }
    });
    GatedOrigin {
        addr,
        gate,
        arrived,
        served,
    }
}

impl GatedOrigin {
    /// Waits until a request for `path` has reached the origin.
    pub(super) async fn arrival(&mut self, path: &str) {
        loop {
            let got = timeout(limit(), self.arrived.recv())
                .await
                .unwrap()
                .unwrap();
            if got == path {
                return;
            }
        }
    }

    pub(super) fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}
