//! One HTTP/2 stream: its request written as an HTTP/1.1 head and checked by the same
//! parser as an HTTP/1.1 client's (hop-by-hop fields, `X-Forwarded-For`, `Host`, the
//! framing checks), forwarded over the origin pool, its response sent back.
//!
//! The head is built from the pseudo-header fields (`:method`, `:path`, `Host` from
//! `:authority`, which replaces any `host` field) and the regular fields; `cookie`
//! fields are joined with `; ` (RFC 9113 8.2.3). A request body without
//! `content-length` goes to the origin chunked. h2 has already refused (with
//! `RST_STREAM PROTOCOL_ERROR`) requests with connection-specific fields (RFC 9113
//! 8.2.2), invalid pseudo-header fields or a body that contradicts its
//! `content-length`; a field value with CR, LF or NUL, which would split the HTTP/1.1
//! head, is a connection error for h2 already, and is refused here again
//! (`RST_STREAM PROTOCOL_ERROR`) so that no such value is ever written to an origin.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use tokio::io::AsyncWriteExt;

use super::body::{RequestBody, ResponseWriter};
use super::premature::End;
use crate::forward::{Forwarder, Outcome, ResponseOpts};
use crate::serve::Shared;
use crate::serve::counters::ErrorKind;
use reloadbench_http1::{self as http1, Framing};

/// The `RST_STREAM` code of a response cut because its client took it slower than
/// `limits.min_send_rate`: the client's behaviour costs the proxy too much.
pub(crate) const SLOW_CLIENT: Reason = Reason::ENHANCE_YOUR_CALM;

/// What every stream of a connection shares.
pub(crate) struct StreamCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) forwarder: Arc<Forwarder>,
    /// The client's `X-Forwarded-For` value.
    pub(crate) forwarded_for: Vec<u8>,
    pub(crate) peer: SocketAddr,
    /// The connection's share of the origin slots.
    pub(crate) share: super::share::Share,
    /// The connection's extended CONNECT streams (tunnels) being served: the drain
    /// deadline counts them as tunnels cut, not as responses cut.
    pub(crate) tunnel_streams: AtomicUsize,
    /// Bytes written to the connection's socket so far (its streams' minimum send rate
    /// counts the connection's progress).
    pub(crate) written: Arc<std::sync::atomic::AtomicU64>,
}

/// A request that cannot be written as an HTTP/1.1 head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// The HTTP/1.1 head of a stream's request (with the empty line that ends it), and
/// whether its body is sent chunked. `end_stream`: the request has no body.
pub(crate) fn request_head(
    parts: &http::request::Parts,
    end_stream: bool,
) -> Result<(Vec<u8>, bool), Malformed> {
    let authority = parts.uri.authority().map(|a| a.as_str());
    let target = if parts.method == http::Method::CONNECT {
        authority.unwrap_or_default()
    } else {
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    };
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        head.extend_from_slice(b"host: ");
        head.extend_from_slice(a.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let mut cookie: Vec<u8> = Vec::new();
    let mut has_length = false;
    for (name, value) in &parts.headers {
        let v = value.as_bytes();
        if v.iter().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return Err(Malformed);
        }
        if *name == http::header::HOST && authority.is_some() {
            continue;
        }
        if *name == http::header::COOKIE {
            if !cookie.is_empty() {
                cookie.extend_from_slice(b"; ");
            }
            cookie.extend_from_slice(v);
            continue;
        }
        has_length |= *name == http::header::CONTENT_LENGTH;
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    if !cookie.is_empty() {
        head.extend_from_slice(b"cookie: ");
        head.extend_from_slice(&cookie);
        head.extend_from_slice(b"\r\n");
    }
    let chunked = !end_stream && !has_length;
    if chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Ok((head, chunked))
}

/// Serves one stream: forwards its request, sends the response (or the proxy's answer:
/// 400, 431, 501, 502, 504, as over HTTP/1.1), and counts it in the ledger as an
/// HTTP/1.1 request is counted. A stream the client resets is given up at once; how it
/// ended (never forwarded; or forwarded, then reset by the client, or not) is told to
/// the connection's premature-reset account.
pub(crate) async fn serve(
    req: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    ctx: Arc<StreamCtx>,
) -> End {
    if super::connect::protocol(&req).is_some() {
        ctx.tunnel_streams.fetch_add(1, Ordering::Relaxed);
        // Boxed: a tunnel's state is large and rare; every stream's task would carry it.
        let end = Box::pin(super::connect::serve(req, respond, ctx.clone())).await;
        ctx.tunnel_streams.fetch_sub(1, Ordering::Relaxed);
        return end;
    }
    let writer = ResponseWriter::new(respond);
    let counters = &ctx.forwarder.counters;
    let (parts, recv) = req.into_parts();
    let Ok((head, chunked)) = request_head(&parts, recv.is_end_stream()) else {
        tracing::debug!(peer = %ctx.peer, "h2 request with a field that cannot be forwarded");
        counters.error(ErrorKind::BadRequest);
        writer.reset(Reason::PROTOCOL_ERROR);
        return End::Unforwarded;
    };
    let mut req = match http1::parse_request(&head, &ctx.forwarded_for) {
        Ok(Some(req)) => req,
        other => {
            let status = other.err().map_or(400, http1::Reject::status);
            tracing::debug!(peer = %ctx.peer, status, "h2 request refused");
            counters.error(ErrorKind::BadRequest);
            answer(&writer, &ctx, status).await;
            return End::Unforwarded;
        }
    };
    // The client takes the body without transfer coding, as an HTTP/1.0 client does:
    // the response is read for one (a chunked body is decoded).
    req.http10 = true;
    if req.expect_continue {
        writer.send_continue();
    }
    let has_body = req.body != Framing::None;
    let body = RequestBody::new(recv, chunked && has_body);
    let mut to = writer.clone();
    // Set when an origin slot is taken for the stream: the premature-reset clock starts
    // there, and a stream ended before it is not counted.
    let forwarded_at = OnceLock::new();
    let opts = ResponseOpts {
        keep_alive: true,
        draining: &ctx.shared.draining,
        shared_progress: Some(&ctx.written),
        forwarded_at: Some(&forwarded_at),
    };
    let forwarded = async {
        // A place in the connection's share first: beyond it, a stream waits here
        // holding nothing of the origin.
        let _place = match ctx.share.take(ctx.shared.cfg.timeouts.connect).await {
            Ok(place) => place,
            Err(failure) => return Outcome::Failed(failure),
        };
        ctx.forwarder.forward_stream(req, body, &mut to, opts).await
    };
    let reset = std::future::poll_fn(|cx| writer.poll_reset(cx));
    // Biased to the reset: a reset that came while the exchange relays the body makes
    // the relay fail too, and is told as a reset, not as that failure.
    let outcome = tokio::select! {
        biased;
        reason = reset => {
            tracing::debug!(peer = %ctx.peer, ?reason, "h2 stream reset by the client");
            counters.aborted();
            // A reset, or the connection's GOAWAY with an error; else the connection
            // is gone: cut.
            return match reason {
                Some(_) => end_of(&forwarded_at, true),
                None => cut(&forwarded_at),
            };
        }
        outcome = forwarded => outcome,
    };
    // An exchange that ended without a whole response, because the client reset the
    // stream meanwhile (the relay's write or read failed), is a reset too.
    let reset_by_client = !matches!(outcome, Outcome::Done { .. }) && writer.reset_by_client();
    // Ended without a whole response from the origin, nor a reset (its connection gone,
    // the exchange aborted or failed): the address's budget counts it if the client
    // ended the connection under it.
    let cut_short = !reset_by_client && !matches!(outcome, Outcome::Done { .. });
    match outcome {
        Outcome::Done { .. } => {
            counters.completed();
            writer.finish();
        }
        Outcome::Aborted => {
            counters.aborted();
            writer.reset(Reason::INTERNAL_ERROR);
        }
        Outcome::SlowClient(why) => {
            tracing::debug!(peer = %ctx.peer, %why, "h2 response cut: the client takes it below limits.min_send_rate");
            counters.error(ErrorKind::SlowClient);
            writer.reset(SLOW_CLIENT);
        }
        // Not reached: an HTTP/2 request never asks for an upgrade (its `connection`
        // and `upgrade` fields are malformed and refused before forwarding).
        Outcome::Switched(_) => {
            counters.aborted();
            writer.reset(Reason::PROTOCOL_ERROR);
        }
        Outcome::Failed(failure) => {
            tracing::debug!(peer = %ctx.peer, %failure, "origin exchange failed");
            counters.error(ErrorKind::of(&failure));
            if writer.not_started() {
                answer(&writer, &ctx, failure.status()).await;
            } else {
                writer.reset(Reason::INTERNAL_ERROR);
            }
        }
    }
    if cut_short {
        return cut(&forwarded_at);
    }
    end_of(&forwarded_at, reset_by_client)
}

/// How a forwarded stream cut short (not by a client reset) ended: `Cut`, timed from
/// when it was forwarded; not counted unless forwarded.
pub(super) fn cut(forwarded_at: &OnceLock<Instant>) -> End {
    match forwarded_at.get() {
        None => End::Unforwarded,
        Some(at) => End::Cut(at.elapsed()),
    }
}

/// How a stream ended for the premature-reset account: not counted unless forwarded
/// (`forwarded_at` set); then a reset by the client, timed from when it was forwarded,
/// or anything else.
pub(super) fn end_of(forwarded_at: &OnceLock<Instant>, reset_by_client: bool) -> End {
    match forwarded_at.get() {
        None => End::Unforwarded,
        Some(at) if reset_by_client => End::Reset(at.elapsed()),
        Some(_) => End::Other,
    }
}

/// Sends a response made by the proxy (its status and a short text body).
async fn answer(writer: &ResponseWriter, ctx: &StreamCtx, status: u16) {
    let resp = http1::error_response(status, ctx.forwarder.served_by(), false, false);
    let mut w = writer.clone();
    // The body waits for the client's window, as any response body: at most
    // `timeouts.body`.
    let wait = ctx.shared.cfg.timeouts.body;
    match tokio::time::timeout(wait, w.write_all(&resp)).await {
        Ok(Ok(())) => writer.finish(),
        _ => writer.reset(Reason::INTERNAL_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::Request<()>) -> http::request::Parts {
        req.into_parts().0
    }

    #[test]
    fn the_head_takes_host_from_the_authority_and_joins_cookies() {
        let p = parts(
            http::Request::get("http://example.com:8080/a?b=1")
                .header("host", "other")
                .header("cookie", "a=1")
                .header("cookie", "b=2")
                .header("x-y", "z")
                .body(())
                .unwrap(),
        );
        let (head, chunked) = request_head(&p, true).unwrap();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nhost: example.com:8080\r\nx-y: z\r\ncookie: a=1; b=2\r\n\r\n"
        );
        assert!(!chunked);
    }

    #[test]
    fn a_body_without_length_is_chunked() {
        let p = parts(http::Request::post("http://h/u").body(()).unwrap());
        let (head, chunked) = request_head(&p, false).unwrap();
        assert!(chunked);
        assert!(head.ends_with(b"transfer-encoding: chunked\r\n\r\n"));
        let p = parts(
            http::Request::post("http://h/u")
                .header("content-length", "3")
                .body(())
                .unwrap(),
        );
        assert!(!request_head(&p, false).unwrap().1);
    }
}
