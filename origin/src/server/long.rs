//! The origin's long-lived endpoints, for loads that hold connections:
//!
//! - `GET /ws` with `Upgrade: websocket`: a WebSocket echo (every text or
//!   binary message sent back as it came). When the origin shuts down, each
//!   open WebSocket gets a close frame 1001 Going Away.
//! - `GET /stream?seconds=S&interval=I`: a chunked response that lasts `S`
//!   seconds (default 1), one small chunk every `I` (default 100 ms; `I` in
//!   ms, or a duration such as `250ms`), the first at once.
//! - `POST /upload`: an ordinary request (answered with the fixed body and
//!   kept in the book) whose body is read no faster than
//!   [`LongOptions::upload_rate`] bytes per second (unlimited when unset):
//!   a slow upload sink ([`upload_rate`]).
//!
//! `/ws` and `/stream` are not in the request counts of the origin's ledger
//! ([`crate::Origin::ledger`]): they have their own, kept by
//! [`crate::long_book`] (WebSockets opened, closed by the client, closed by
//! the origin with its code, cut, messages received and echoed; streams
//! started, complete and cut).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{
    CONNECTION, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use reloadbench_model::ws::{GOING_AWAY, OriginWsEnd};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::long_book::{LongBook, StreamOpen, WsOpen};

/// Longest `/stream` (one hour).
pub(crate) const MAX_STREAM: Duration = Duration::from_secs(3600);
/// Shortest `/stream` interval.
pub(crate) const MIN_STREAM_INTERVAL: Duration = Duration::from_millis(1);
/// How long a close handshake may take before the WebSocket is dropped.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Settings of the long-lived endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LongOptions {
    /// `POST /upload` reads at most this many bytes per second (`None`: as fast as sent).
    pub upload_rate: Option<u64>,
}

/// What the long-lived endpoints share with the server.
pub(crate) struct Long {
    pub(crate) options: LongOptions,
    /// Becomes true when the origin shuts down.
    pub(crate) stop: watch::Receiver<bool>,
    /// What `/ws` and `/stream` did.
    pub(crate) book: Arc<LongBook>,
}

/// The body of every origin response: the fixed body, or a stream.
pub(crate) type OriginBody = Either<Full<Bytes>, Ticks>;

/// Whether `req` is for one of the long-lived endpoints.
pub(crate) fn is_long(req: &Request<Incoming>) -> bool {
    matches!(
        (req.method(), req.uri().path()),
        (&Method::GET, "/ws" | "/stream")
    )
}

/// The rate at which the body of `req` is read: [`LongOptions::upload_rate`]
/// for `POST /upload`, none for any other request.
pub(crate) fn upload_rate(req: &Request<Incoming>, long: &Long) -> Option<u64> {
    let upload = req.method() == Method::POST && req.uri().path() == "/upload";
    long.options.upload_rate.filter(|r| upload && *r > 0)
}

/// Answers a request [`is_long`] accepted.
pub(crate) async fn serve(req: Request<Incoming>, long: &Long) -> Response<OriginBody> {
    match req.uri().path() {
        "/ws" => websocket(req, long),
        _ => stream(&req, &long.book),
    }
}

fn plain(status: StatusCode, text: String) -> Response<OriginBody> {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(text))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// Small buffers: many idle WebSockets stay small.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// `/ws`: answers the upgrade with 101 and echoes on the upgraded connection.
fn websocket(mut req: Request<Incoming>, long: &Long) -> Response<OriginBody> {
    let upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).filter(|_| upgrade) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "/ws needs Upgrade: websocket\n".to_owned(),
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let stop = long.stop.clone();
    let book = long.book.clone();
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let io = TokioIo::new(upgraded);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
            let open = book.ws_opened();
            let (end, code) = echo(ws, stop, &open).await;
            open.ended(end, code);
        }
    });
    let mut resp = Response::new(Either::Left(Full::new(Bytes::new())));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// Echoes every data message until the client closes, or the origin stops
/// (then closes with 1001 Going Away); how the WebSocket ended, and the
/// origin's close code when it closed it.
async fn echo<S>(
    mut ws: WebSocketStream<S>,
    mut stop: watch::Receiver<bool>,
    open: &WsOpen,
) -> (OriginWsEnd, Option<u16>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt as _, StreamExt as _};
    loop {
        tokio::select! {
            () = stopped(&mut stop) => {
                let bye = CloseFrame { code: CloseCode::Away, reason: "origin stopping".into() };
                return match tokio::time::timeout(CLOSE_WAIT, ws.close(Some(bye))).await {
                    Ok(Ok(())) => (OriginWsEnd::ClosedByServer, Some(GOING_AWAY)),
                    _ => (OriginWsEnd::Cut, None),
                };
            }
            msg = ws.next() => match msg {
                Some(Ok(m @ (Message::Binary(_) | Message::Text(_)))) => {
                    open.received();
                    if ws.send(m).await.is_err() {
                        return (OriginWsEnd::Cut, None);
                    }
                    open.echoed();
                }
                Some(Ok(Message::Close(_))) => {
                    // The client closed first; let tungstenite write the
                    // answering close frame and see the end (bounded).
                    let _ = tokio::time::timeout(CLOSE_WAIT, async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    return (OriginWsEnd::ClosedByClient, None);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (OriginWsEnd::Cut, None),
            },
        }
    }
}

/// Resolves once the origin stops (or its stop sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A `/stream` query value: `seconds` as (fractional) seconds, `interval` as
/// ms or a humantime duration.
fn query_duration(query: &str, name: &str, seconds: bool) -> Result<Option<Duration>, String> {
    for pair in query.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if k != name {
            continue;
        }
        let parsed = match v.parse::<f64>() {
            Ok(n) if (0.0..1e7).contains(&n) => Ok(Duration::from_secs_f64(if seconds {
                n
            } else {
                n / 1000.0
            })),
            Ok(_) => Err(format!("{name}={v}: out of range")),
            Err(_) => humantime::parse_duration(v).map_err(|e| format!("{name}={v}: {e}")),
        };
        return parsed.map(Some);
    }
    Ok(None)
}

/// `/stream?seconds=S&interval=I`.
fn stream(req: &Request<Incoming>, book: &Arc<LongBook>) -> Response<OriginBody> {
    let query = req.uri().query().unwrap_or("");
    let parsed = query_duration(query, "seconds", true)
        .and_then(|s| query_duration(query, "interval", false).map(|i| (s, i)));
    let (seconds, interval) = match parsed {
        Ok((s, i)) => (
            s.unwrap_or(Duration::from_secs(1)),
            i.unwrap_or(Duration::from_millis(100)),
        ),
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if seconds > MAX_STREAM || interval < MIN_STREAM_INTERVAL {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("seconds at most {MAX_STREAM:?}, interval at least {MIN_STREAM_INTERVAL:?}\n"),
        );
    }
    let chunks = (seconds.as_nanos() / interval.as_nanos()) as u64 + 1;
    let ticks = Ticks::new(interval, chunks, book.stream_started());
    let mut resp = Response::new(Either::Right(ticks));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// A body of `chunks` numbered lines (`00000000\n`, 9 bytes each), one per
/// interval, the first at once; counted complete in the book once its last
/// line was handed out, cut when dropped before.
pub(crate) struct Ticks {
    interval: tokio::time::Interval,
    left: u64,
    sent: u64,
    open: StreamOpen,
}

impl Ticks {
    fn new(every: Duration, chunks: u64, open: StreamOpen) -> Ticks {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks {
            interval,
            left: chunks,
            sent: 0,
            open,
        }
    }
}

impl Body for Ticks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        ready!(self.interval.poll_tick(cx));
        self.left -= 1;
        if self.left == 0 {
            self.open.complete();
        }
        let line = format!("{:08}\n", self.sent % 100_000_000);
        self.sent += 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_query_values() {
        let q = "seconds=0.5&interval=20";
        assert_eq!(
            query_duration(q, "seconds", true),
            Ok(Some(Duration::from_millis(500)))
        );
        assert_eq!(
            query_duration(q, "interval", false),
            Ok(Some(Duration::from_millis(20)))
        );
        assert_eq!(
            query_duration("interval=250ms", "interval", false),
            Ok(Some(Duration::from_millis(250)))
        );
        assert_eq!(query_duration("", "seconds", true), Ok(None));
        assert!(query_duration("seconds=x", "seconds", true).is_err());
    }
}
