//! One client connection: request heads read under the idle and head timers, each
//! request forwarded and its response relayed, `Connection: close` while draining.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_rustls::TlsAcceptor;

use super::close::{self, IdleClose};
use super::counters::ErrorKind;
use super::cut::InProgress;
use super::stream::ClientStream;
use super::{Shared, Stage};
use crate::deadline::after;
use crate::forward::relay::{self, Buffered};
use crate::forward::{Forwarder, Outcome, ResponseOpts, client_ip_value};
use reloadbench_http1::{self as http1, Framing, RequestHead};

/// Room made in the client buffer before each read of a request head.
const HEAD_READ: usize = 4096;

/// Longest lingering close (see [`Next::Linger`]).
pub(super) const LINGER: Duration = Duration::from_secs(5);

/// Whether `pending` may hold a complete head: it has an empty line (LF LF or LF CR LF)
/// that ends at or after byte `scanned` (the bytes before it were looked at already).
fn head_may_end(pending: &[u8], scanned: usize) -> bool {
    let from = scanned.saturating_sub(2);
    let tail = pending.get(from..).unwrap_or_default();
    tail.iter().enumerate().any(|(i, b)| {
        *b == b'\n'
            && matches!(
                (tail.get(i + 1), tail.get(i + 2)),
                (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n'))
            )
    })
}

/// Counts one open connection; created at accept, dropped when its task ends
/// (or is dropped without running), which wakes a waiting drain. It goes after the
/// connection's future (an HTTP/2 connection's streams run in it): a drain forced at
/// the deadline reports after every stream it dropped has counted how it ended.
pub(super) struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    pub(super) fn new(shared: Arc<Shared>) -> OpenGuard {
        shared.open.send_modify(|n| *n += 1);
        OpenGuard(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The TLS side of a listener: its acceptor and the handshake timeout.
#[derive(Clone)]
pub(super) struct Handshake {
    pub(super) acceptor: TlsAcceptor,
    pub(super) timeout: Duration,
}

/// Serves one accepted client connection until it ends, is closed by a timer, or the
/// drain deadline forces it closed. On a TLS listener (`tls`), the handshake comes first,
/// within its timeout: a client that fails it (garbage, a stall, an oversized hello) is
/// closed. Requests go to the origins through `forwarder`, the pool of the serving thread.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    open: OpenGuard,
    forwarder: Arc<Forwarder>,
    tls: Option<Handshake>,
) {
    let shared = open.0.clone();
    // Small responses must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let mut force = shared.stage.subscribe();
    let accepted = Instant::now();
    let served = async move {
        let client = match tls {
            None => ClientStream::Plain(stream),
            Some(h) => {
                let idle_close = shared.cfg.drain.idle_close;
                let expired =
                    handshake_expired(shared.stage.subscribe(), accepted, h.timeout, idle_close);
                tokio::select! {
                    done = h.acceptor.accept(stream) => match done {
                        Ok(tls) => ClientStream::Tls(Box::new(tls)),
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed: closing");
                            return;
                        }
                    },
                    () = expired => {
                        tracing::debug!(%peer, "TLS handshake not done in time: closing");
                        return;
                    }
                }
            }
        };
        if let ClientStream::Tls(t) = &client
            && t.get_ref().1.alpn_protocol() == Some(b"h2")
        {
            let io = super::h2::Prefixed::new(Vec::new(), client);
            return super::h2::serve(io, peer, shared, forwarder).await;
        }
        let conn = Conn {
            exchange: InProgress::new(shared.clone()),
            client: Buffered::new(client, Vec::with_capacity(HEAD_READ)),
            forwarded_for: client_ip_value(peer.ip()),
            stage: shared.stage.subscribe(),
            idle_since: accepted,
            served: 0,
            shared,
            forwarder,
            peer,
        };
        conn.run().await;
    };
    tokio::select! {
        biased;
        // Dropping the connection's future closes its sockets.
        _ = force.wait_for(|p| *p == Stage::Force) => {}
        () = served => {}
    }
    drop(open);
}

/// Resolves when a TLS handshake begun at `accepted` must be given up: at its
/// `timeout`, or, once the process drains, `idle_close` after the later of the
/// accept and the drain's start, as an idle cleartext connection is closed (a
/// connection that never completes its handshake must not hold an old process
/// until the drain deadline).
async fn handshake_expired(
    mut stage: watch::Receiver<Stage>,
    accepted: Instant,
    timeout: Duration,
    idle_close: Duration,
) {
    let limit = after(accepted, timeout);
    loop {
        let until = match *stage.borrow_and_update() {
            Stage::Serving => limit,
            Stage::Draining(since) => limit.min(after(accepted.max(since), idle_close)),
            Stage::Force => return,
        };
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => return,
            changed = stage.changed() => {
                if changed.is_err() {
                    // No more stages: only the limit is left.
                    tokio::time::sleep_until(until.into()).await;
                    return;
                }
            }
        }
    }
}

/// What to do after an exchange.
#[derive(Debug)]
enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close after what was written (`Connection: close` was sent).
    Close,
    /// Close after what was written, while the client may still be sending: shut the
    /// sending side down and read what comes for a while first, so that the close does
    /// not reset the connection (and lose the response) because of unread bytes.
    Linger,
    /// Close at once: the connection broke.
    Abort,
    /// The client sent the HTTP/2 preface (h2c with prior knowledge): serve HTTP/2.
    Http2,
    /// The connection switched protocols: relay it as a tunnel until it ends, holding
    /// its place under `limits.tunnels`.
    Tunnel(Box<crate::forward::Switched>, Option<OwnedSemaphorePermit>),
}

/// A client connection being served.
struct Conn {
    client: Buffered<ClientStream>,
    forwarded_for: Vec<u8>,
    stage: watch::Receiver<Stage>,
    /// When the last response was done (or the connection accepted).
    idle_since: Instant,
    /// Requests served on this connection so far.
    served: u64,
    /// Set from a request head read until its response is all written.
    exchange: InProgress,
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
    peer: SocketAddr,
}

impl Conn {
    async fn run(mut self) {
        loop {
            let req = match self.next_request().await {
                Ok(req) => req,
                Err(Next::Linger) => return self.linger(LINGER).await,
                Err(Next::Http2) => return self.http2().await,
                Err(_) => return,
            };
            self.served += 1;
            self.exchange.set(1);
            let next = self.handle(req).await;
            self.exchange.set(0);
            match next {
                Next::KeepAlive => {
                    self.idle_since = Instant::now();
                    self.client.shrink(HEAD_READ);
                }
                // Bytes of a next request already read would reset the close.
                Next::Close if !self.client.pending().is_empty() => {
                    return self.linger(LINGER).await;
                }
                // The drain closes a connection the client meant to keep: a next request
                // may already be on its way, and must not be answered with a reset.
                Next::Close if self.draining() => {
                    let linger = self.shared.cfg.drain.linger;
                    return self.linger(linger).await;
                }
                Next::Close => return self.close().await,
                Next::Abort | Next::Http2 => return,
                Next::Linger => return self.linger(LINGER).await,
                Next::Tunnel(switched, slot) => return self.tunnel(*switched, slot).await,
            }
        }
    }

    /// Serves the connection as HTTP/2: the preface read so far is read again by h2.
    async fn http2(self) {
        let Buffered { stream, buf, start } = self.client;
        let read = buf.get(start..).unwrap_or_default().to_vec();
        let io = super::h2::Prefixed::new(read, stream);
        super::h2::serve(io, self.peer, self.shared, self.forwarder).await;
    }

    /// Closes after a complete last response: over TLS, `close_notify` goes out first (a
    /// broken exchange is dropped without it, so that the client sees the truncation).
    async fn close(mut self) {
        if let ClientStream::Tls(_) = self.client.stream {
            let stall = self.shared.cfg.timeouts.body;
            let _ = tokio::time::timeout(stall, self.client.stream.shutdown()).await;
        }
    }

    /// Relays the switched connection as a tunnel until it ends (see [`crate::tunnel`]).
    async fn tunnel(
        mut self,
        switched: crate::forward::Switched,
        _slot: Option<OwnedSemaphorePermit>,
    ) {
        let early = self.client.pending().to_vec();
        let ctx = crate::tunnel::relay::Context {
            tunnels: &self.shared.tunnels,
            stage: self.stage.clone(),
            policy: self.shared.cfg.drain.tunnels,
            idle: self.shared.cfg.timeouts.body,
            linger: self.shared.cfg.drain.linger,
        };
        let end = crate::tunnel::relay::run(
            &mut self.client.stream,
            &early,
            switched.origin,
            &switched.greeting,
            switched.kind,
            ctx,
        )
        .await;
        tracing::debug!(peer = %self.peer, ?end, "tunnel ended");
    }

    /// Closes gracefully while the client may still be sending: shuts the sending side
    /// down, then reads and drops what arrives until the client closes, for at most `max`.
    async fn linger(mut self, max: Duration) {
        close::linger(&mut self.client.stream, after(Instant::now(), max)).await;
    }

    /// The next request head. `Err` says how to close the connection: at once (the
    /// client closed it or a timer expired) or lingering (the head was refused and
    /// answered, and more of it may be on the way).
    async fn next_request(&mut self) -> Result<RequestHead, Next> {
        // When this head started: its first byte, or the accept for a new connection.
        // The head must be complete within `timeouts.header_read` from then.
        let mut head_started: Option<Instant> = None;
        // Pending bytes already looked at for the end of the head.
        let mut scanned: usize = 0;
        loop {
            // RFC 9112 2.2: empty lines before a request line are ignored; they do not
            // start a head (nor its timer).
            let blank = self
                .client
                .pending()
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            self.client.consume(blank);
            scanned = scanned.saturating_sub(blank);
            let pending = self.client.pending();
            if !pending.is_empty() {
                let first = if self.served == 0 {
                    self.idle_since
                } else {
                    Instant::now()
                };
                head_started.get_or_insert(first);
                // With HTTP/2 on, a new connection may start with the client preface,
                // which has an empty line of its own: a part of it is no head yet.
                let h2 = self.served == 0 && self.shared.cfg.http2.enabled;
                let partial_preface = match h2.then(|| super::h2::preface(pending)) {
                    Some(super::h2::Preface::Complete) => return Err(Next::Http2),
                    Some(super::h2::Preface::Partial) => true,
                    _ => false,
                };
                if !partial_preface
                    && (head_may_end(pending, scanned) || pending.len() > http1::MAX_REQUEST_HEAD)
                {
                    match http1::parse_request(pending, &self.forwarded_for) {
                        Ok(Some(req)) => {
                            self.client.consume(req.head_len);
                            return Ok(req);
                        }
                        Ok(None) => {}
                        Err(reject) => {
                            tracing::debug!(peer = %self.peer, %reject, "request refused");
                            self.forwarder.counters.error(ErrorKind::BadRequest);
                            return Err(if self.answer(reject.status(), true, false).await {
                                Next::Linger
                            } else {
                                Next::Abort
                            });
                        }
                    }
                }
                // A part of the preface is looked at again once more has come.
                scanned = if partial_preface {
                    0
                } else {
                    self.client.pending().len()
                };
            }
            let read = match head_started {
                Some(at) => {
                    let deadline = after(at, self.shared.cfg.timeouts.header_read);
                    tokio::time::timeout_at(deadline.into(), self.client.read_more(HEAD_READ))
                        .await
                        .unwrap_or(Ok(0))
                }
                None => self.read_while_idle().await,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return Err(Next::Abort);
            }
        }
    }

    /// Waits for the first bytes of a request on an idle connection; `Ok(0)` when the
    /// idle timer (or, while draining, the idle-close timer) closes it first. A new
    /// connection must send its first request within `timeouts.header_read`.
    async fn read_while_idle(&mut self) -> std::io::Result<usize> {
        let cfg = &self.shared.cfg;
        let wait = if self.served == 0 {
            cfg.timeouts.header_read.min(cfg.timeouts.idle)
        } else {
            cfg.timeouts.idle
        };
        loop {
            let stage = *self.stage.borrow_and_update();
            let (deadline, draining) = match stage {
                Stage::Serving => (after(self.idle_since, wait), false),
                Stage::Draining(since) => {
                    let drain_at = after(self.idle_since.max(since), cfg.drain.idle_close);
                    (drain_at.min(after(self.idle_since, wait)), true)
                }
                Stage::Force => return Ok(0),
            };
            tokio::select! {
                read = self.client.read_more(HEAD_READ) => return read,
                () = tokio::time::sleep_until(deadline.into()) => {
                    return self.close_idle(draining).await;
                }
                Ok(()) = self.stage.changed() => {}
            }
        }
    }

    /// The idle timer (or, while draining, the idle-close timer) expired: closes the
    /// connection gracefully (see [`close::idle`]) and returns `Ok(0)`, or, if a request
    /// had already arrived, reads it as [`Conn::read_while_idle`] would have.
    async fn close_idle(&mut self, draining: bool) -> std::io::Result<usize> {
        let how = close::idle(self.client.stream.tcp());
        if how == IdleClose::Request {
            tracing::debug!(peer = %self.peer, draining, "request arrived as the idle timer expired: serving it");
            return self.client.read_more(HEAD_READ).await;
        }
        if draining {
            self.shared.idle_closed.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(peer = %self.peer, draining, "closing idle client connection");
        if how == IdleClose::Linger {
            let until = after(Instant::now(), self.shared.cfg.drain.linger);
            if close::linger(&mut self.client.stream, until).await > 0 {
                if draining {
                    self.shared.idle_raced.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(peer = %self.peer, draining, "a request raced the close of an idle connection: read and dropped (the client saw EOF, no reset)");
            }
        }
        Ok(0)
    }

    /// Forwards one request and relays its response.
    async fn handle(&mut self, req: RequestHead) -> Next {
        let keep_alive = req.keep_alive;
        let http10 = req.http10;
        let has_body = req.body != Framing::None;
        if req.expect_continue {
            let go_on = b"HTTP/1.1 100 Continue\r\n\r\n";
            let mut out = [IoSlice::new(go_on)];
            let stall = self.shared.cfg.timeouts.body;
            if relay::write_all(&mut self.client.stream, &mut out, stall)
                .await
                .is_err()
            {
                return Next::Abort;
            }
        }
        let opts = ResponseOpts {
            keep_alive,
            draining: &self.shared.draining,
            shared_progress: None,
            forwarded_at: None,
        };
        // A place under `limits.tunnels`, taken before an upgrade request is forwarded.
        let tunnel_slot = match req.upgrade {
            Some(_) => match self.shared.tunnels.slot() {
                Some(slot) => Some(slot),
                None => {
                    // Frames the client sent behind its request may follow: the
                    // connection is closed after the answer, as after an unread body.
                    let outcome = Outcome::Failed(crate::forward::Failure::TunnelsFull);
                    return self.after(outcome, keep_alive, true, http10, None).await;
                }
            },
            None => None,
        };
        let outcome = self.forwarder.forward(req, &mut self.client, opts).await;
        self.after(outcome, keep_alive, has_body, http10, tunnel_slot)
            .await
    }

    /// Counts an exchange's outcome and says what comes next (the proxy's answer to a
    /// failure written first).
    async fn after(
        &mut self,
        outcome: Outcome,
        keep_alive: bool,
        has_body: bool,
        http10: bool,
        tunnel_slot: Option<OwnedSemaphorePermit>,
    ) -> Next {
        let counters = &self.forwarder.counters;
        match &outcome {
            Outcome::Done { .. } => counters.completed(),
            Outcome::Aborted => counters.aborted(),
            Outcome::SlowClient(_) => counters.error(ErrorKind::SlowClient),
            Outcome::Failed(f) => counters.error(ErrorKind::of(f)),
            Outcome::Switched(_) => counters.completed(),
        }
        match outcome {
            Outcome::Done { close: false, .. } => Next::KeepAlive,
            Outcome::Done { linger: true, .. } => Next::Linger,
            Outcome::Done { close: true, .. } => Next::Close,
            Outcome::Aborted => Next::Abort,
            Outcome::SlowClient(why) => {
                tracing::debug!(peer = %self.peer, %why, "response cut: the client reads below limits.min_send_rate");
                Next::Abort
            }
            Outcome::Switched(switched) => Next::Tunnel(switched, tunnel_slot),
            Outcome::Failed(failure) => {
                tracing::debug!(peer = %self.peer, %failure, "origin exchange failed");
                // A request body may be left unread: the connection cannot go on.
                let close = !keep_alive || has_body || self.draining();
                match self.answer(failure.status(), close, http10).await {
                    false => Next::Abort,
                    true if has_body => Next::Linger,
                    true if close => Next::Close,
                    true => Next::KeepAlive,
                }
            }
        }
    }

    /// Writes a response generated by the proxy (to an HTTP/1.0 client when `http10`);
    /// `false` when the write failed.
    async fn answer(&mut self, status: u16, close: bool, http10: bool) -> bool {
        let resp = http1::error_response(status, self.forwarder.served_by(), close, http10);
        let stall = self.shared.cfg.timeouts.body;
        relay::write_all(&mut self.client.stream, &mut [IoSlice::new(&resp)], stall)
            .await
            .is_ok()
    }

    /// Whether the server is draining: responses then carry `Connection: close`.
    fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::head_may_end;

    #[test]
    fn a_head_may_end_only_at_an_empty_line_not_yet_scanned() {
        assert!(!head_may_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0));
        assert!(head_may_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0));
        assert!(head_may_end(b"GET / HTTP/1.1\n\n", 0));
        // The end straddles what was scanned before and what came after.
        assert!(head_may_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 25));
        assert!(!head_may_end(b"GET / HTTP/1.1\r\nHost: a\r\nX: b", 24));
    }
}
