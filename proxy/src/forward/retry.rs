//! One retry for a request caught by an origin closing a reused idle connection.
//!
//! An origin may close an idle keep-alive connection (its keep-alive timeout, a reload)
//! at the moment the proxy takes that connection from its pool and writes a request on it.
//! hyper_util's client retries by itself only when the request was never written
//! (`retry_canceled_requests`, on by default); once written, the exchange fails with
//! "connection closed before message completed" or a reset, and no response byte came.
//!
//! Such a request is sent once more, on a fresh connection, when all of these hold:
//! - its method is idempotent and it has no body ([`Replay::of`]), so sending it twice
//!   is harmless and no body has to be kept;
//! - the failed connection was established before the request started, i.e. it came
//!   from the idle pool ([`ConnectedAt`]);
//! - the failure is a close or reset before the response head ([`is_retryable`]).
//!
//! A failure on a fresh connection is never retried: the origin itself is broken.

use std::error::Error as StdError;
use std::io;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body_util::{Either, Empty};
use hyper::body::{Body, Incoming};

use super::connector::ConnectedAt;

/// Body of a request sent to an origin: the client's streamed body, or none.
pub type OriginBody = Either<Incoming, Empty<Bytes>>;

/// What is needed to send a bodyless request again.
#[derive(Debug)]
pub(crate) struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Replay {
    /// Prepares `req` for sending. A request that may be retried is sent without its
    /// (empty) body and a copy of its head is kept; any other request is sent as is.
    pub(crate) fn of(req: Request<Incoming>) -> (Request<OriginBody>, Option<Replay>) {
        if !req.method().is_idempotent() || !req.body().is_end_stream() {
            return (req.map(Either::Left), None);
        }
        let replay = Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        };
        (req.map(|_| Either::Right(Empty::new())), Some(replay))
    }

    /// The request to send again.
    pub(crate) fn request(self) -> Request<OriginBody> {
        let mut req = Request::new(Either::Right(Empty::new()));
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

/// Whether a failed exchange of a request started at `started` may be retried: it failed
/// on a connection established before `started` (a reused pooled connection) and the
/// origin closed or reset it before the response head.
pub(crate) fn is_retryable(err: &hyper_util::client::legacy::Error, started: Instant) -> bool {
    if err.is_connect() {
        return false;
    }
    let reused = err.connect_info().is_some_and(|info| {
        let mut extras = http::Extensions::new();
        info.get_extras(&mut extras);
        extras.get::<ConnectedAt>().is_some_and(|at| at.0 < started)
    });
    reused && closed_before_response(err)
}

/// Whether the cause of `err` is the connection closing or being reset.
fn closed_before_response(err: &(dyn StdError + 'static)) -> bool {
    let mut cause = err.source();
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        cause = e.source();
    }
    false
}
