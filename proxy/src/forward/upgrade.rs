//! An upgrade request (`Upgrade` + `Connection: upgrade`) carried to an origin: on a
//! `101 Switching Protocols` the client connection becomes a tunnel
//! ([`crate::tunnel`]); any other answer is relayed as an ordinary response.
//!
//! The request goes on a fresh origin connection (a protocol switch is not retried, and
//! a tunnel's connection never goes back to the pool), which takes a slot of its origin
//! for the exchange, as any request. On `101` the slot is given back: the tunnel's
//! connection is counted against `limits.tunnels` (a place the client connection took
//! before the request was forwarded, see [`crate::tunnel`]), not against
//! `limits.origin_connections`, so that long-lived tunnels never hold the slots that
//! ordinary requests wait for.

use std::io::{self, IoSlice};

use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use super::exchange::{Outcome, ResponseOpts};
use super::relay::{self, BUF_BYTES, Buffered};
use super::{Failure, Forwarder, Origin};
use reloadbench_http1::{self as http1, BadResponse, Parsed, RequestHead, UpgradeKind};

/// An accepted protocol switch: the `101` went to the client; the tunnel relays the rest.
#[derive(Debug)]
pub(crate) struct Switched {
    /// The origin connection; the bytes it sent after its `101` are in `greeting`.
    pub(crate) origin: TcpStream,
    /// Origin bytes read with the `101` (the start of the origin's first frames), not yet
    /// written to the client: the tunnel relays them first, through its frame tracker.
    pub(crate) greeting: Vec<u8>,
    /// The protocol switched to.
    pub(crate) kind: UpgradeKind,
}

/// What the origin answered an upgrade request.
enum Answer {
    Switch(http1::SwitchHead),
    Other(http1::ResponseHead),
}

impl Forwarder {
    /// Carries the upgrade request `req` (its head without `Host` line if the client sent
    /// none, and without the final CRLF; no body) to the next origin and relays the answer
    /// to `client` as HTTP/1.1 (the `101` head, or an ordinary response); `kind` is the
    /// protocol it asks for.
    pub(crate) async fn upgrade<W: AsyncWrite + Unpin>(
        &self,
        mut req: RequestHead,
        kind: UpgradeKind,
        client: &mut W,
        opts: ResponseOpts<'_>,
    ) -> Outcome {
        let none = || Failure::Connect(io::ErrorKind::NotFound.into());
        let Some(origin) = self.pick().and_then(|i| self.origins.get(i)) else {
            return Outcome::Failed(none());
        };
        let slot =
            match tokio::time::timeout(self.timeouts.connect, origin.slots.clone().acquire_owned())
                .await
            {
                Ok(Ok(slot)) => slot,
                _ => return Outcome::Failed(Failure::NoSlot),
            };
        super::exchange::mark_forwarded(opts.forwarded_at);
        if !req.has_host {
            req.upstream.extend_from_slice(&origin.host_line);
        }
        req.upstream.extend_from_slice(b"\r\n");
        let mut stream = match self.connect(origin).await {
            Ok(s) => s,
            Err(f) => return Outcome::Failed(f),
        };
        let mut out = [IoSlice::new(&req.upstream)];
        if let Err(e) = relay::write_all(&mut stream, &mut out, self.timeouts.body).await {
            return Outcome::Failed(Failure::Broken(e.into_io()));
        }
        self.counters.forwarded();
        let mut from = Buffered::new(stream, self.take_buffer());
        let answer = match tokio::time::timeout(self.timeouts.request, answer(&mut from)).await {
            Ok(Ok(a)) => a,
            Ok(Err(f)) => return Outcome::Failed(f),
            Err(_) => return Outcome::Failed(Failure::Timeout),
        };
        match answer {
            Answer::Other(head) => {
                let reusable = head.reusable;
                let (outcome, body_done) = self
                    .respond(head, &mut from, client, opts, req.http10, true)
                    .await;
                let clean = reusable && body_done && from.pending().is_empty();
                let (stream, buf) = from.into_parts();
                self.release_owned(origin, stream, buf, clean);
                drop(slot);
                outcome
            }
            Answer::Switch(head) => {
                let mut out = head.downstream;
                out.extend_from_slice(&self.served_by);
                out.extend_from_slice(b"\r\n");
                let greeting = from.pending().to_vec();
                let mut bufs = [IoSlice::new(&out)];
                let written = relay::write_all(client, &mut bufs, self.timeouts.body).await;
                let (stream, buf) = from.into_parts();
                self.give_buffer(buf);
                // A tunnel holds no request slot (it counts against `limits.tunnels`).
                drop(slot);
                if written.is_err() {
                    return Outcome::Aborted;
                }
                Outcome::Switched(Box::new(Switched {
                    origin: stream,
                    greeting,
                    kind,
                }))
            }
        }
    }

    /// After an ordinary answer to an upgrade request: the connection back to the pool
    /// when `clean`, the buffer kept for reuse.
    fn release_owned(&self, origin: &Origin, stream: TcpStream, buf: Vec<u8>, clean: bool) {
        if clean {
            origin.pool.put(stream);
        }
        self.give_buffer(buf);
    }
}

/// Reads the origin's answer: a `101` head, or a final response head (interim 1xx
/// responses skipped).
async fn answer(from: &mut Buffered) -> Result<Answer, Failure> {
    loop {
        match http1::parse_response(from.pending(), false, false) {
            Ok(Parsed::Final(head)) => {
                from.consume(head.head_len);
                return Ok(Answer::Other(head));
            }
            Ok(Parsed::Interim(len)) => {
                from.consume(len);
                continue;
            }
            Ok(Parsed::Partial) => {}
            Err(BadResponse::Switch) => {
                if let Some(head) = http1::parse_switch(from.pending())? {
                    from.consume(head.head_len);
                    return Ok(Answer::Switch(head));
                }
            }
            Err(e) => return Err(e.into()),
        }
        match from.read_more(BUF_BYTES).await {
            Ok(0) => return Err(Failure::Broken(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) => return Err(Failure::Broken(e)),
        }
    }
}
