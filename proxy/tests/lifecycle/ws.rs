//! A WebSocket echo origin and a WebSocket client written for the tunnel tests, on raw
//! RFC 6455 frames (the proxy parses none of them): each side counts what it did, so the
//! tests check the proxy against two independent counts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the echo origin did.
#[derive(Debug, Default)]
pub(crate) struct OriginCounts {
    /// Upgrades answered with 101.
    pub(crate) upgraded: AtomicU64,
    /// Upgrade requests answered with 404 (path `/refuse`).
    pub(crate) refused: AtomicU64,
    /// Messages echoed.
    pub(crate) echoed: AtomicU64,
    /// Connections that ended (close frame, EOF or error).
    pub(crate) ended: AtomicU64,
}

/// The echo origin: `/refuse` gets a 404, any other upgrade a 101 and an echo of every
/// data frame, a close frame answered with a close frame.
pub(crate) struct EchoOrigin {
    pub(crate) addr: SocketAddr,
    pub(crate) counts: Arc<OriginCounts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoOrigin {
    pub(crate) async fn start() -> EchoOrigin {
        // A deep accept queue: a thousand clients reconnect at once after a close.
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        sock.bind(&any.into()).expect("bind");
        sock.listen(4096).expect("listen");
        sock.set_nonblocking(true).expect("nonblocking");
        let l = TcpListener::from_std(sock.into()).expect("listener");
        let addr = l.local_addr().expect("addr");
        let counts = Arc::new(OriginCounts::default());
        let c = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let _ = echo(s, &c).await;
                    c.ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        EchoOrigin { addr, counts, task }
    }

    pub(crate) fn echoed(&self) -> u64 {
        self.counts.echoed.load(Ordering::SeqCst)
    }
}

async fn echo(mut s: TcpStream, c: &OriginCounts) -> Result<()> {
    s.set_nodelay(true)?;
    let (head, mut rest) = read_head(&mut s).await?;
    if head.starts_with("GET /refuse") {
        c.refused.fetch_add(1, Ordering::SeqCst);
        s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno")
            .await?;
        // Read until the proxy closes or reuses: nothing more to do.
        let mut b = [0u8; 64];
        while s.read(&mut b).await? > 0 {}
        return Ok(());
    }
    s.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: x\r\n\r\n",
    )
    .await?;
    c.upgraded.fetch_add(1, Ordering::SeqCst);
    loop {
        let f = read_frame(&mut s, &mut rest).await?;
        match f.opcode {
            0x8 => {
                write_frame(&mut s, 0x8, &f.payload, false).await?;
                return Ok(());
            }
            0x9 => write_frame(&mut s, 0xA, &f.payload, false).await?,
            _ => {
                write_frame(&mut s, f.opcode, &f.payload, false).await?;
                c.echoed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Reads a head up to its empty line; returns it and the bytes read after it.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("EOF in a head");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) opcode: u8,
    pub(crate) payload: Vec<u8>,
}

/// Reads one frame (`pending` holds bytes already read); unmasks a masked one.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S, pending: &mut Vec<u8>) -> Result<Frame> {
    async fn need<S: AsyncRead + Unpin>(s: &mut S, pending: &mut Vec<u8>, n: usize) -> Result<()> {
        let mut chunk = [0u8; 8192];
        while pending.len() < n {
            let k = s.read(&mut chunk).await?;
            if k == 0 {
                bail!("EOF");
            }
            pending.extend_from_slice(&chunk[..k]);
        }
        Ok(())
    }
    need(s, pending, 2).await?;
    let masked = pending[1] & 0x80 != 0;
    let (ext, len7) = match pending[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(n as usize)),
    };
    let hl = 2 + ext + if masked { 4 } else { 0 };
    need(s, pending, hl).await?;
    let len = len7.unwrap_or_else(|| {
        pending[2..2 + ext]
            .iter()
            .fold(0usize, |a, b| (a << 8) | *b as usize)
    });
    need(s, pending, hl + len).await?;
    let opcode = pending[0] & 0x0f;
    let mut payload: Vec<u8> = pending[hl..hl + len].to_vec();
    if masked {
        let key = [
            pending[hl - 4],
            pending[hl - 3],
            pending[hl - 2],
            pending[hl - 1],
        ];
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    pending.drain(..hl + len);
    Ok(Frame { opcode, payload })
}

/// Writes one final frame, masked (with a fixed key) when `masked`.
async fn write_frame<S: AsyncWrite + Unpin>(
    s: &mut S,
    opcode: u8,
    payload: &[u8],
    masked: bool,
) -> Result<()> {
    s.write_all(&frame(opcode, payload, masked)).await?;
    Ok(())
}

fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => f.push(m | n as u8),
        n @ 126..=65535 => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x11, 0x22, 0x33, 0x44];
    if masked {
        f.extend_from_slice(&key);
    }
    f.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| if masked { b ^ key[i % 4] } else { *b }),
    );
    f
}

/// How a WebSocket ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsEnd {
    /// A close frame with this code.
    Closed(u16),
    /// EOF or reset without a close frame.
    Cut,
}

/// What came back for one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Echo,
    End(WsEnd),
}

/// A WebSocket client through the proxy.
pub(crate) struct WsClient {
    s: TcpStream,
    pending: Vec<u8>,
    /// The `x-served-by` of the 101 (`gen=G pid=P`).
    pub(crate) served_by: String,
}

impl WsClient {
    /// Connects and upgrades; the handshake and `early` (frames sent before the 101
    /// arrived) go out in one write.
    pub(crate) async fn connect_with(addr: SocketAddr, early: &[&[u8]]) -> Result<WsClient> {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let mut out = b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .to_vec();
        for m in early {
            out.extend(frame(0x1, m, true));
        }
        s.write_all(&out).await?;
        let (head, pending) = read_head(&mut s).await?;
        if !head.starts_with("HTTP/1.1 101") {
            bail!("not switched: {head}");
        }
        let served_by = head
            .lines()
            .find_map(|l| l.strip_prefix("x-served-by: "))
            .unwrap_or_default()
            .to_owned();
        Ok(WsClient {
            s,
            pending,
            served_by,
        })
    }

    pub(crate) async fn connect(addr: SocketAddr) -> Result<WsClient> {
        WsClient::connect_with(addr, &[]).await
    }

    /// The generation that tunnels this connection.
    pub(crate) fn generation(&self) -> u64 {
        self.served_by
            .split_whitespace()
            .find_map(|w| w.strip_prefix("gen="))
            .and_then(|g| g.parse().ok())
            .unwrap_or(0)
    }

    /// Starts a close handshake with `code`.
    pub(crate) async fn send_close(&mut self, code: u16) -> Result<()> {
        write_frame(&mut self.s, 0x8, &code.to_be_bytes(), true).await
    }

    pub(crate) async fn send(&mut self, msg: &[u8]) -> Result<()> {
        write_frame(&mut self.s, 0x1, msg, true).await
    }

    /// Reads at least `n` bytes as they come, frames or not (then the client may stop
    /// reading in the middle of a frame).
    pub(crate) async fn read_raw(&mut self, n: usize, within: Duration) -> Result<()> {
        tokio::time::timeout(within, async {
            let mut chunk = [0u8; 4096];
            while self.pending.len() < n {
                let got = self.s.read(&mut chunk).await?;
                if got == 0 {
                    bail!("EOF after {} bytes", self.pending.len());
                }
                self.pending.extend_from_slice(&chunk[..got]);
            }
            Ok(())
        })
        .await?
    }

    /// The next frame, or how the connection ended; a close frame is answered (as a
    /// client does) and the connection is read to its end.
    pub(crate) async fn next(
        &mut self,
        within: Duration,
    ) -> Result<std::result::Result<Vec<u8>, WsEnd>> {
        let f = match tokio::time::timeout(within, read_frame(&mut self.s, &mut self.pending)).await
        {
            Err(_) => bail!("nothing within {within:?}"),
            Ok(Err(_)) => return Ok(Err(WsEnd::Cut)),
            Ok(Ok(f)) => f,
        };
        if f.opcode == 0x8 {
            let code = match f.payload.as_slice() {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                _ => 1005,
            };
            let _ = write_frame(&mut self.s, 0x8, &f.payload[..f.payload.len().min(2)], true).await;
            // The server closes the TCP connection after the handshake.
            let mut b = [0u8; 256];
            let _ = tokio::time::timeout(within, async {
                while matches!(self.s.read(&mut b).await, Ok(n) if n > 0) {}
            })
            .await;
            return Ok(Err(WsEnd::Closed(code)));
        }
        Ok(Ok(f.payload))
    }

    /// Sends `msg` and waits for its echo (checked equal) or the end of the connection.
    pub(crate) async fn round_trip(&mut self, msg: &[u8], within: Duration) -> Result<Reply> {
        if self.send(msg).await.is_err() {
            return Ok(Reply::End(WsEnd::Cut));
        }
        match self.next(within).await? {
            Ok(p) if p == msg => Ok(Reply::Echo),
            Ok(p) => bail!(
                "echo {:?} for {:?}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(msg)
            ),
            Err(end) => Ok(Reply::End(end)),
        }
    }

    /// Waits for the end of the connection (no data expected).
    pub(crate) async fn wait_end(&mut self, within: Duration) -> Result<WsEnd> {
        match self.next(within).await? {
            Ok(p) => bail!("unexpected data {p:?}"),
            Err(end) => Ok(end),
        }
    }
}

/// A request for `path` with upgrade headers, on a fresh connection; returns the
/// response head and body read until close (the proxy closes after it: the answer was
/// not a switch, and the request said `Connection: close` too).
pub(crate) async fn refused_upgrade(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).await?;
    Ok(String::from_utf8_lossy(&all).into_owned())
}
