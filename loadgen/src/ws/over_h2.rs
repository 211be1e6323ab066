//! `--ws --h2`: WebSockets over HTTP/2 (RFC 8441, extended CONNECT).
//!
//! Each client opens its own HTTP/2 connection (prior knowledge for `http://`, ALPN
//! `h2` for `https://`), waits for the server's SETTINGS (a PING's ACK comes after
//! them), and opens one stream with `:method CONNECT`, `:protocol websocket`,
//! `sec-websocket-version: 13`. A `:status 200` opens the WebSocket: tungstenite's
//! protocol then runs over the stream ([`H2Io`], DATA frames both ways under flow
//! control), and the session is counted exactly as over HTTP/1.1 ([`super::client`]).
//! Any other status is a failed open (5xx or other), a stream or connection error is
//! classed as for `--h2` requests.
//!
//! A GOAWAY read before the CONNECT went out means no attempt was made on that
//! connection: the client opens another one, uncounted. A CONNECT the GOAWAY refused
//! (its stream id above the last-stream-id: never processed) fails the attempt as
//! `goaway_refused`; with `--retry-refused` it is sent once more on a new connection first
//! (the retries are counted in the report's `retries`).
//!
//! A server that does not advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` cannot carry
//! WebSockets over HTTP/2: the run stops, and fails with an error naming the setting.

use std::cell::{Cell, RefCell};
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use reloadbench_h2io::H2Stream;
use reloadbench_model::outcome::FailureClass;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::WsCtx;
use super::client::{Opener, WsConn, config};
use crate::client::ClientCtx;
use crate::http2::tap::{FrameScanner, GoAway};
use crate::record::Recorder;
use crate::run::Shared;

/// Pause before another connection when one went away before its CONNECT was sent.
const RETRY_PAUSE: Duration = Duration::from_millis(1);

/// How long the connection of a WebSocket that ended is given to close on its own.
const CONN_LINGER: Duration = Duration::from_secs(1);

/// What the clients of a `--ws --h2` run share.
#[derive(Debug)]
pub(crate) struct OverH2 {
    /// The CONNECT request's URI (`:scheme`, `:authority`, `:path`).
    uri: String,
    /// The target's `host[:port]`.
    authority: String,
    /// Why the run cannot go on (the server does not allow extended CONNECT).
    fatal: OnceLock<String>,
    /// `--retry-refused`: a CONNECT refused by a GOAWAY is sent once more on a new
    /// connection (counted in the report's `retries`).
    retry_refused: bool,
}

impl OverH2 {
    /// For the target `url`.
    pub(crate) fn new(url: &crate::target::UrlParts, retry_refused: bool) -> OverH2 {
        let scheme = if url.tls { "https" } else { "http" };
        OverH2 {
            uri: format!("{scheme}://{}{}", url.host_header, url.path),
            authority: url.host_header.clone(),
            fatal: OnceLock::new(),
            retry_refused,
        }
    }

    /// The reason the run stopped, if it did.
    pub(crate) fn fatal(&self) -> Option<&str> {
        self.fatal.get().map(String::as_str)
    }
}

/// The TLS client `tls` offering only `h2` in ALPN.
pub(crate) fn alpn_h2(tls: crate::client::TlsCtx) -> crate::client::TlsCtx {
    let mut config = std::sync::Arc::unwrap_or_clone(tls.config);
    config.alpn_protocols = vec![b"h2".to_vec()];
    crate::client::TlsCtx {
        config: std::sync::Arc::new(config),
        server_name: tls.server_name,
    }
}

/// `--streams` is not a `--ws --h2` setting (one WebSocket per connection).
pub(crate) fn check(config: &crate::LoadConfig) -> Result<(), crate::error::LoadError> {
    if config.h2 && config.streams != 1 {
        return Err(crate::error::LoadError::InvalidConfig {
            field: "streams",
            reason: "--ws --h2 opens one WebSocket per connection: no --streams".to_owned(),
        });
    }
    Ok(())
}

/// The error of a server without extended CONNECT.
fn not_advertised(authority: &str) -> String {
    format!(
        "{authority} does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 in its HTTP/2 \
         SETTINGS: it takes no WebSockets over HTTP/2 (RFC 8441); drop --h2 for WebSockets \
         over HTTP/1.1"
    )
}

/// A WebSocket over an HTTP/2 stream, on connections of kind `C`.
pub(crate) struct ExtendedConnect<C>(PhantomData<C>);

impl<C: WsConn> Opener for ExtendedConnect<C>
where
    C::Io: 'static,
{
    type Io = H2Io;

    async fn open(
        ctx: &ClientCtx,
        ws: &WsCtx,
        id: u64,
        shared: &Shared,
        rec: &RefCell<Recorder>,
    ) -> Result<WebSocketStream<H2Io>, FailureClass> {
        let deadline = tokio::time::Instant::now() + ctx.timeout;
        let retry_refused = ws.h2.as_ref().is_some_and(|o| o.retry_refused);
        let mut retried = false;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let opened = tokio::time::timeout(left, C::open(ctx, ctx.source(id), shared, rec))
                .await
                .map_err(|_| FailureClass::Timeout)??;
            let goaway = Rc::new(Cell::new(false));
            let io = GoawayTap {
                io: opened.conn.io(),
                scanner: FrameScanner::default(),
                seen: goaway.clone(),
            };
            match tokio::time::timeout_at(deadline, connect(io, ws, shared, &goaway)).await {
                Err(_) => return Err(FailureClass::Timeout),
                // Refused by a GOAWAY: never processed, safe to send again.
                Ok(Err(Attempt::Failed(FailureClass::GoawayRefused)))
                    if retry_refused && !retried =>
                {
                    retried = true;
                    rec.borrow_mut().retried(0);
                }
                Ok(Err(Attempt::Failed(class))) => return Err(class),
                // The connection went away before the CONNECT was sent: no attempt was
                // made on it; open another, as a browser would.
                Ok(Err(Attempt::NotSent)) => {
                    if shared.is_stopped() {
                        return Err(FailureClass::Closed);
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Ok(Ok(io)) => {
                    let role = Role::Client;
                    return Ok(WebSocketStream::from_raw_socket(io, role, Some(config())).await);
                }
            }
        }
    }
}

/// Why an extended CONNECT did not open a WebSocket.
enum Attempt {
    /// The server sent a GOAWAY (or closed the connection after one) before the CONNECT
    /// went out: nothing was attempted on this connection.
    NotSent,
    /// The attempt failed, by class.
    Failed(FailureClass),
}

impl From<FailureClass> for Attempt {
    fn from(c: FailureClass) -> Attempt {
        Attempt::Failed(c)
    }
}

/// The class of an h2 error while opening (as `--h2` classes a stream's error).
fn class_of(e: &h2::Error) -> FailureClass {
    if e.is_go_away() && e.is_remote() {
        FailureClass::GoawayRefused
    } else if e.is_reset() && e.is_remote() {
        FailureClass::StreamReset
    } else if let Some(io) = e.get_io() {
        match io.kind() {
            io::ErrorKind::ConnectionReset => FailureClass::Reset,
            _ => FailureClass::Closed,
        }
    } else {
        FailureClass::ProtocolError
    }
}

/// The HTTP/2 handshake on `io`, then the extended CONNECT stream; `goaway` is set by
/// `io` when the server sends a GOAWAY.
async fn connect<T>(
    io: T,
    ws: &WsCtx,
    shared: &Shared,
    goaway: &Cell<bool>,
) -> Result<H2Io, Attempt>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let Some(over) = ws.h2.as_ref() else {
        return Err(FailureClass::ClientError.into());
    };
    // Before the CONNECT is sent, a failure after a GOAWAY is no attempt.
    let before_send = |e: h2::Error| {
        if goaway.get() {
            Attempt::NotSent
        } else {
            Attempt::Failed(class_of(&e))
        }
    };
    let (send, mut conn) = h2::client::Builder::new()
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| Attempt::Failed(class_of(&e)))?;
    let mut pings = conn.ping_pong().ok_or(FailureClass::ClientError)?;
    let (done, ended) = oneshot::channel::<()>();
    tokio::task::spawn_local(drive(conn, ended));
    // The server's SETTINGS come first on its side of the connection: once a PING's ACK
    // is read, they were.
    pings.ping(h2::Ping::opaque()).await.map_err(before_send)?;
    if !send.is_extended_connect_protocol_enabled() {
        let _ = over.fatal.set(not_advertised(&over.authority));
        shared.stop();
        return Err(FailureClass::ProtocolError.into());
    }
    let mut send = send.ready().await.map_err(before_send)?;
    if goaway.get() {
        return Err(Attempt::NotSent);
    }
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(over.uri.as_str())
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .body(())
        .map_err(|_| Attempt::Failed(FailureClass::ClientError))?;
    req.extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let (resp, stream) = send.send_request(req, false).map_err(before_send)?;
    // Sent: from now on every failure is the attempt's (a GOAWAY that does not cover the
    // stream refuses it: `goaway_refused`).
    let resp = resp.await.map_err(|e| Attempt::Failed(class_of(&e)))?;
    let status = resp.status();
    if status != http::StatusCode::OK {
        return Err(Attempt::Failed(if status.is_server_error() {
            FailureClass::Http5xx
        } else {
            FailureClass::HttpOther
        }));
    }
    Ok(H2Io {
        stream: H2Stream::new(resp.into_body(), stream),
        _conn: done,
    })
}

/// The IO of a connection, its read side tapped for GOAWAY frames (which h2 does not
/// hand to its user), as `--h2`'s tap does.
struct GoawayTap<T> {
    io: T,
    scanner: FrameScanner,
    seen: Rc<Cell<bool>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for GoawayTap<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let seen = &this.seen;
            let new = buf.filled().get(before..).unwrap_or_default();
            this.scanner.feed(new, &mut |_: GoAway| seen.set(true));
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GoawayTap<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Runs the connection until it ends, or until [`CONN_LINGER`] after its WebSocket was
/// dropped (`ended` resolves).
async fn drive<T>(conn: h2::client::Connection<T, Bytes>, ended: oneshot::Receiver<()>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    tokio::pin!(conn);
    tokio::select! {
        _ = &mut conn => return,
        _ = ended => {}
    }
    let _ = tokio::time::timeout(CONN_LINGER, conn).await;
}

/// An extended CONNECT stream as a byte stream ([`H2Stream`]), holding its connection
/// open: dropped with the stream, the connection task then closes the connection.
pub(crate) struct H2Io {
    stream: H2Stream,
    _conn: oneshot::Sender<()>,
}

impl AsyncRead for H2Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
