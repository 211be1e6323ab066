//! WebSockets over HTTP/2 (RFC 8441): an extended CONNECT stream (`:method CONNECT`,
//! `:protocol websocket`; refproxy advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`)
//! carried to the origin as an HTTP/1.1 WebSocket upgrade.
//!
//! The origin gets `GET :path` with `Host` from `:authority`, `Upgrade: websocket`,
//! `Connection: upgrade`, a fresh `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, and
//! the client's other fields (`Sec-WebSocket-Protocol`, `-Extensions`, cookies, ...),
//! checked by the same parser as an HTTP/1.1 request. Its `101` answers the stream with
//! `:status 200` (with its fields but the connection-specific ones and
//! `Sec-WebSocket-Accept`, which HTTP/2 has no use for); then the stream is a tunnel
//! relayed by [`crate::tunnel::relay`] over [`H2Stream`]: counted in the process's
//! tunnels, bounded by `timeouts.body` when idle, and drained by `drain.tunnels` as an
//! HTTP/1.1 tunnel (`close` writes the 1001 close frame as DATA on the stream, then ends
//! it with END_STREAM). Any other answer of the origin is relayed as a response. An
//! extended CONNECT for another protocol gets 501.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::body::{ResponseWriter, push_head};
use super::premature::End;
use super::stream::{StreamCtx, cut, end_of, request_head};
use crate::forward::{Outcome, ResponseOpts};
use crate::serve::counters::ErrorKind;
use crate::tunnel::relay;
use reloadbench_h2io::H2Stream;
use reloadbench_http1::{self as http1, UpgradeKind};

/// The `:protocol` of an extended CONNECT request, if it is one.
pub(crate) fn protocol<B>(req: &http::Request<B>) -> Option<&str> {
    if req.method() != http::Method::CONNECT {
        return None;
    }
    req.extensions()
        .get::<h2::ext::Protocol>()
        .map(h2::ext::Protocol::as_str)
}

/// Serves one extended CONNECT stream (see the module docs) and counts it in the ledger
/// as an HTTP/1.1 upgrade request is counted. How it ended, for the premature-reset
/// account: a reset by the client after the upgrade was forwarded and before the tunnel
/// was established (the origin's `101` relayed) is a reset; an established tunnel is
/// not one, however it ends.
pub(crate) async fn serve(
    req: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    ctx: Arc<StreamCtx>,
) -> End {
    let counters = &ctx.forwarder.counters;
    let websocket = protocol(&req).is_some_and(|p| p.eq_ignore_ascii_case("websocket"));
    let (mut parts, recv) = req.into_parts();
    if !websocket {
        tracing::debug!(peer = %ctx.peer, "extended CONNECT for another protocol than websocket");
        counters.error(ErrorKind::BadRequest);
        answer(ResponseWriter::new(respond), &ctx, 501).await;
        return End::Unforwarded;
    }
    let Some(head) = upgrade_head(&mut parts) else {
        tracing::debug!(peer = %ctx.peer, "extended CONNECT with a field that cannot be forwarded");
        counters.error(ErrorKind::BadRequest);
        let mut respond = respond;
        respond.send_reset(Reason::PROTOCOL_ERROR);
        return End::Unforwarded;
    };
    let req = match http1::parse_request(&head, &ctx.forwarded_for) {
        Ok(Some(req)) if req.upgrade == Some(UpgradeKind::WebSocket) => req,
        other => {
            let status = other.err().map_or(400, http1::Reject::status);
            tracing::debug!(peer = %ctx.peer, status, "extended CONNECT refused");
            counters.error(ErrorKind::BadRequest);
            answer(ResponseWriter::new(respond), &ctx, status).await;
            return End::Unforwarded;
        }
    };
    // A place under `limits.tunnels`, taken before the upgrade is forwarded.
    let Some(tunnel_slot) = ctx.shared.tunnels.slot() else {
        let failure = crate::forward::Failure::TunnelsFull;
        counters.error(ErrorKind::of(&failure));
        answer(ResponseWriter::new(respond), &ctx, failure.status()).await;
        return End::Unforwarded;
    };
    let respond = Arc::new(Mutex::new(Some(respond)));
    let mut to = SwitchWriter::Head {
        respond: respond.clone(),
        head: Vec::new(),
    };
    // Set when the origin slot is taken for the upgrade (see `stream::end_of`).
    let forwarded_at = OnceLock::new();
    let opts = ResponseOpts {
        keep_alive: true,
        draining: &ctx.shared.draining,
        shared_progress: Some(&ctx.written),
        forwarded_at: Some(&forwarded_at),
    };
    let exchange = async {
        // A place in the connection's share first, as for any stream: beyond it, the
        // CONNECT waits here holding nothing of the origin. The tunnel gives its origin
        // slot back at the `101`, and so its place.
        let _place = match ctx.share.take(ctx.shared.cfg.timeouts.connect).await {
            Ok(place) => place,
            Err(failure) => return Outcome::Failed(failure),
        };
        ctx.forwarder
            .upgrade(req, UpgradeKind::WebSocket, &mut to, opts)
            .await
    };
    // A client that resets the stream before the answer ends the exchange at once (its
    // origin connection, slot and tunnel place given back), as for any stream.
    let reset = std::future::poll_fn(|cx| match lock(&respond).as_mut() {
        Some(r) => r.poll_reset(cx),
        None => Poll::Pending,
    });
    // Biased to the reset, as for any stream (see `stream::serve`).
    let outcome = tokio::select! {
        biased;
        reason = reset => {
            tracing::debug!(peer = %ctx.peer, ?reason, "extended CONNECT reset by the client");
            counters.aborted();
            return match reason {
                Ok(_) => end_of(&forwarded_at, true),
                Err(_) => cut(&forwarded_at),
            };
        }
        outcome = exchange => outcome,
    };
    let reset_by_client = to.reset_by_client();
    match (outcome, to) {
        (Outcome::Switched(switched), SwitchWriter::Tunnel { send, early }) => {
            counters.completed();
            tunnel(H2Stream::new(recv, send), &early, *switched, &ctx).await;
            drop(tunnel_slot);
            // Established: not counted as a reset, however it ends.
            return end_of(&forwarded_at, false);
        }
        (Outcome::Done { .. }, SwitchWriter::Response(w)) => {
            counters.completed();
            w.finish();
        }
        (Outcome::Failed(failure), SwitchWriter::Head { respond, head }) if head.is_empty() => {
            tracing::debug!(peer = %ctx.peer, %failure, "origin exchange failed");
            counters.error(ErrorKind::of(&failure));
            let respond = lock(&respond).take();
            if let Some(respond) = respond {
                answer(ResponseWriter::new(respond), &ctx, failure.status()).await;
            }
        }
        (outcome, to) => {
            let reason = match outcome {
                Outcome::Failed(failure) => {
                    counters.error(ErrorKind::of(&failure));
                    Reason::INTERNAL_ERROR
                }
                Outcome::SlowClient(why) => {
                    tracing::debug!(peer = %ctx.peer, %why, "h2 response cut: the client takes it below limits.min_send_rate");
                    counters.error(ErrorKind::SlowClient);
                    super::stream::SLOW_CLIENT
                }
                _ => {
                    counters.aborted();
                    Reason::INTERNAL_ERROR
                }
            };
            to.reset(reason);
        }
    }
    end_of(&forwarded_at, reset_by_client)
}

/// Rewrites the extended CONNECT `parts` into an HTTP/1.1 WebSocket upgrade head; `None`
/// for a field that cannot be written in one.
fn upgrade_head(parts: &mut http::request::Parts) -> Option<Vec<u8>> {
    parts.method = http::Method::GET;
    let h = &mut parts.headers;
    h.remove(http::header::SEC_WEBSOCKET_KEY);
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("upgrade"),
    );
    h.insert(
        http::header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&websocket_key()).ok()?,
    );
    h.insert(
        http::header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    request_head(parts, true).ok().map(|(head, _)| head)
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
fn websocket_key() -> String {
    use ring::rand::SecureRandom;
    let mut raw = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut raw);
    base64(&raw)
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Relays the switched stream until the tunnel ends; `early` are bytes written after the
/// `101`'s head, sent to the client first (the origin's bytes that came with its `101` are
/// in `switched.greeting`, which the relay follows frame by frame).
async fn tunnel(
    mut client: H2Stream,
    early: &[u8],
    switched: crate::forward::Switched,
    ctx: &StreamCtx,
) {
    let cfg = &ctx.shared.cfg;
    let crate::forward::Switched {
        origin,
        kind,
        greeting,
        ..
    } = switched;
    if !early.is_empty() {
        let written = tokio::time::timeout(cfg.timeouts.body, client.write_all(early)).await;
        if !matches!(written, Ok(Ok(()))) {
            client.reset(Reason::CANCEL);
            return;
        }
    }
    let rctx = relay::Context {
        tunnels: &ctx.shared.tunnels,
        stage: ctx.shared.stage.subscribe(),
        policy: cfg.drain.tunnels,
        idle: cfg.timeouts.body,
        linger: cfg.drain.linger,
    };
    let end = relay::run(&mut client, &[], origin, &greeting, kind, rctx).await;
    tracing::debug!(peer = %ctx.peer, ?end, "h2 tunnel ended");
    if matches!(end, relay::End::Idle | relay::End::Broken) {
        client.reset(Reason::CANCEL);
    }
}

/// Sends a response made by the proxy (its status and a short text body).
async fn answer(mut writer: ResponseWriter, ctx: &StreamCtx, status: u16) {
    let resp = http1::error_response(status, ctx.forwarder.served_by(), false, false);
    match writer.write_all(&resp).await {
        Ok(()) => writer.finish(),
        Err(_) => writer.reset(Reason::INTERNAL_ERROR),
    }
}

/// Fields of the origin's `101` that do not go into the `200` of the stream.
fn dropped(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "sec-websocket-accept",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// The stream's response side until the answer's head: shared by the [`SwitchWriter`]
/// and the watch for the client's reset.
type Respond = Arc<Mutex<Option<SendResponse<Bytes>>>>;

/// The response side, whatever a panic elsewhere left in the lock.
fn lock(respond: &Respond) -> std::sync::MutexGuard<'_, Option<SendResponse<Bytes>>> {
    respond
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the HTTP/1.1 answer the upgrade writes goes: a `101` head becomes the stream's
/// `200` (the bytes after it are kept for the tunnel), any other head and its body go to
/// a [`ResponseWriter`].
enum SwitchWriter {
    /// Collecting the answer's head.
    Head { respond: Respond, head: Vec<u8> },
    /// `200` sent for a `101`: the stream is a tunnel; `early` are origin bytes that
    /// followed the `101`.
    Tunnel {
        send: SendStream<Bytes>,
        early: Vec<u8>,
    },
    /// An ordinary response.
    Response(ResponseWriter),
    /// Nothing more can be sent.
    Gone,
}

impl SwitchWriter {
    /// Whether the client has reset the stream before its answer was whole (the relay
    /// of an ordinary answer failed on it, say); false for a tunnel.
    fn reset_by_client(&self) -> bool {
        match self {
            SwitchWriter::Head { respond, .. } => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                lock(respond)
                    .as_mut()
                    .is_some_and(|r| matches!(r.poll_reset(&mut cx), Poll::Ready(Ok(_))))
            }
            SwitchWriter::Response(w) => w.reset_by_client(),
            SwitchWriter::Tunnel { .. } | SwitchWriter::Gone => false,
        }
    }

    /// Ends the stream with `RST_STREAM`.
    fn reset(self, reason: Reason) {
        match self {
            SwitchWriter::Head { respond, .. } => {
                if let Some(mut respond) = lock(&respond).take() {
                    respond.send_reset(reason);
                }
            }
            SwitchWriter::Tunnel { mut send, .. } => send.send_reset(reason),
            SwitchWriter::Response(w) => w.reset(reason),
            SwitchWriter::Gone => {}
        }
    }

    /// Takes the complete head `head` (and the bytes after it): a `101` starts the tunnel,
    /// anything else an ordinary response.
    fn head_done(&mut self, cx: &mut Context<'_>, head: &[u8], end: usize) -> io::Result<()> {
        let SwitchWriter::Head { respond, .. } = std::mem::replace(self, SwitchWriter::Gone) else {
            return Err(io::ErrorKind::InvalidData.into());
        };
        let Some(respond) = lock(&respond).take() else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "unreadable response head");
        let mut fields = [httparse::EMPTY_HEADER; http1::MAX_HEADERS + 4];
        let mut parsed = httparse::Response::new(&mut fields);
        let complete = matches!(
            parsed.parse(head.get(..end).unwrap_or_default()),
            Ok(httparse::Status::Complete(_))
        );
        if complete && parsed.code == Some(101) {
            let mut resp = http::Response::new(());
            for h in parsed.headers.iter().filter(|h| !dropped(h.name)) {
                let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad())?;
                let value = HeaderValue::from_bytes(h.value).map_err(|_| bad())?;
                resp.headers_mut().append(name, value);
            }
            let mut respond = respond;
            let send = respond
                .send_response(resp, false)
                .map_err(io::Error::other)?;
            let early = head.get(end..).unwrap_or_default().to_vec();
            *self = SwitchWriter::Tunnel { send, early };
            return Ok(());
        }
        // Not a switch: the head (and what came after it) as an ordinary response. A
        // writer in its head phase takes every byte at once.
        let mut w = ResponseWriter::new(respond);
        match Pin::new(&mut w).poll_write(cx, head) {
            Poll::Ready(Ok(n)) if n == head.len() => {}
            Poll::Ready(Err(e)) => return Err(e),
            _ => return Err(bad()),
        }
        *self = SwitchWriter::Response(w);
        Ok(())
    }
}

impl AsyncWrite for SwitchWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this {
            SwitchWriter::Head { head, .. } => {
                if let Some(end) = push_head(head, buf) {
                    let head = std::mem::take(head);
                    this.head_done(cx, &head, end)?;
                }
                Poll::Ready(Ok(buf.len()))
            }
            SwitchWriter::Tunnel { early, .. } => {
                early.extend_from_slice(buf);
                Poll::Ready(Ok(buf.len()))
            }
            SwitchWriter::Response(w) => Pin::new(w).poll_write(cx, buf),
            SwitchWriter::Gone => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
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
    fn keys_are_16_bytes_in_base64() {
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        let k = websocket_key();
        assert_eq!(k.len(), 24);
        assert_ne!(k, websocket_key());
    }

    #[test]
    fn the_connect_becomes_an_upgrade_with_the_clients_ws_fields() {
        let mut req = http::Request::builder()
            .method("CONNECT")
            .uri("http://example.com:8080/chat?x=1")
            .header("sec-websocket-protocol", "chat, superchat")
            .header("sec-websocket-extensions", "permessage-deflate")
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));
        assert_eq!(protocol(&req), Some("websocket"));
        let (mut parts, ()) = req.into_parts();
        let head = String::from_utf8(upgrade_head(&mut parts).unwrap()).unwrap();
        assert!(
            head.starts_with("GET /chat?x=1 HTTP/1.1\r\nhost: example.com:8080\r\n"),
            "{head}"
        );
        for line in [
            "sec-websocket-protocol: chat, superchat\r\n",
            "sec-websocket-extensions: permessage-deflate\r\n",
            "upgrade: websocket\r\n",
            "connection: upgrade\r\n",
            "sec-websocket-version: 13\r\n",
            "sec-websocket-key: ",
        ] {
            assert!(head.contains(line), "{line} in {head}");
        }
        assert_eq!(head.matches("sec-websocket-version").count(), 1, "{head}");
        let parsed = http1::parse_request(head.as_bytes(), b"127.0.0.1")
            .unwrap()
            .unwrap();
        assert_eq!(parsed.upgrade, Some(UpgradeKind::WebSocket));
    }
}
