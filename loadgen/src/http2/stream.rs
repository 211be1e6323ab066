//! One request on one HTTP/2 stream, and the class of a stream that failed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use reloadbench_model::outcome::FailureClass;

use super::H2Kind;

/// A complete response.
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The `Server` field, read only when asked (the run's first response).
    pub(crate) server: Option<String>,
    pub(crate) body_bytes: u64,
    /// Request sent (headers, and body if any, handed to the connection).
    pub(crate) written: Instant,
    /// Response head received.
    pub(crate) first_byte: Instant,
}

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// No stream was opened: the connection takes no new stream (GOAWAY
    /// received, or ended). The request goes to another connection.
    NotSent,
    /// The stream failed with this class; `code` is a reset's error code.
    Failed {
        class: FailureClass,
        code: Option<u32>,
    },
}

/// The class of a stream's error, and a reset's error code.
pub(crate) fn classify(e: &h2::Error) -> (FailureClass, Option<u32>) {
    let code = e.reason().map(u32::from);
    if e.is_go_away() && e.is_remote() {
        // h2 fails with the GOAWAY exactly the streams above its last-stream-id.
        (FailureClass::GoawayRefused, None)
    } else if e.is_reset() && e.is_remote() {
        (FailureClass::StreamReset, code)
    } else if e.is_library() {
        (FailureClass::ProtocolError, None)
    } else if e.is_io() {
        (FailureClass::StreamLost, None)
    } else if e.reason().is_some() {
        // A bare reason: a connection or stream error h2 raised on a frame.
        (FailureClass::ProtocolError, None)
    } else {
        (FailureClass::ClientError, None)
    }
}

/// Sends request `id` of `kind` on `send` and reads its whole response,
/// all within `timeout` (waiting for the server to allow one more stream
/// included); `usable` is asked once the connection is ready for a new
/// stream (a GOAWAY may have come while waiting). The `Server` field is
/// copied only `with_server`.
pub(crate) async fn exchange(
    send: &SendRequest<Bytes>,
    kind: &H2Kind,
    id: Option<u64>,
    timeout: Duration,
    usable: impl Fn() -> bool,
    with_server: bool,
) -> Result<Answer, Attempt> {
    let attempt = async {
        let ready = match send.clone().ready().await {
            Ok(s) => s,
            Err(_) => return Err(Attempt::NotSent),
        };
        if !usable() {
            return Err(Attempt::NotSent);
        }
        on_stream(ready, kind, id, with_server).await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(Attempt::Failed {
            class: FailureClass::Timeout,
            code: None,
        }),
        Ok(r) => r,
    }
}

async fn on_stream(
    mut send: SendRequest<Bytes>,
    kind: &H2Kind,
    id: Option<u64>,
    with_server: bool,
) -> Result<Answer, Attempt> {
    let mut req = http::Request::new(());
    *req.method_mut() = kind.method.clone();
    *req.uri_mut() = kind.uri.clone();
    *req.headers_mut() = kind.headers.clone();
    if let Some(id) = id {
        req.headers_mut().insert(
            reloadbench_model::ledger::ID_HEADER,
            http::HeaderValue::from(id),
        );
    }
    let failed = |e: h2::Error| {
        let (class, code) = classify(&e);
        Attempt::Failed { class, code }
    };
    let (response, mut body_tx) = match send.send_request(req, kind.body.is_none()) {
        Ok(r) => r,
        // No stream was opened: the connection refuses new ones.
        Err(e) if e.is_go_away() || e.is_io() => return Err(Attempt::NotSent),
        Err(e) => return Err(failed(e)),
    };
    if let Some(body) = &kind.body {
        body_tx.send_data(body.clone(), true).map_err(failed)?;
    }
    let written = Instant::now();
    let resp = response.await.map_err(failed)?;
    let first_byte = Instant::now();
    let status = resp.status().as_u16();
    let server = with_server
        .then(|| resp.headers().get(http::header::SERVER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = resp.into_body();
    let mut body_bytes = 0u64;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(failed)?;
        body_bytes += chunk.len() as u64;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    // Trailers end the stream when sent; an error here is the stream's.
    body.trailers().await.map_err(failed)?;
    Ok(Answer {
        status,
        server,
        body_bytes,
        written,
        first_byte,
    })
}
