//! One request carried to an origin and its response carried back.
//!
//! A request without a body takes the short path ([`Forwarder::bodiless`]): head out,
//! response head in (with the one retry of the module docs), response body relayed. A
//! request with a body is relayed in both directions at once ([`Forwarder::with_body`]):
//! the upload goes on while the response head is awaited and while the response body is
//! relayed, so an origin may answer before, during or after reading the body.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::SemaphorePermit;

use super::relay::{self, BUF_BYTES, Buffered, Pace, RelayError};
use super::send_rate::TooSlow;
use super::{Failure, Forwarder, Origin};
use crate::serve::ClientStream;
use reloadbench_http1::{self as http1, Framing, Parsed, RequestHead, ResponseHead};

/// What the client connection wants of the response head.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResponseOpts<'a> {
    /// The client keeps its connection after this exchange (its request said so).
    pub(crate) keep_alive: bool,
    /// Set while the server drains: the response then carries `Connection: close`.
    pub(crate) draining: &'a AtomicBool,
    /// Bytes written to the client's socket so far, when the exchange shares the
    /// connection with others (HTTP/2): the minimum send rate counts the connection's
    /// progress too (see `send_rate`).
    pub(crate) shared_progress: Option<&'a Arc<AtomicU64>>,
    /// Set (once) to when an origin slot was taken for the exchange: from then an origin
    /// connection is committed to it (a pooled one taken, or a new one being opened).
    /// The HTTP/2 premature-reset guard counts only such streams, and from then.
    pub(crate) forwarded_at: Option<&'a OnceLock<Instant>>,
}

/// Records in `at` that an origin slot was taken now (the first time only).
pub(super) fn mark_forwarded(at: Option<&OnceLock<Instant>>) {
    if let Some(at) = at {
        let _ = at.set(Instant::now());
    }
}

/// How an exchange ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A response was relayed in full; with `close` it carried `Connection: close` and
    /// the client connection is to be closed.
    Done {
        /// The client connection closes now.
        close: bool,
        /// The client may still be sending (its request body was not read to its end):
        /// close gracefully, reading what it sends meanwhile, so that the close does not
        /// reset the connection before the response reached it.
        linger: bool,
    },
    /// Nothing was written to the client: it is answered with the failure's status.
    Failed(Failure),
    /// The exchange broke after the response began, or the client went away: the client
    /// connection is closed as it is.
    Aborted,
    /// The client took the response body slower than `limits.min_send_rate`: the
    /// response is cut (the client connection closed as it is, or the HTTP/2 stream
    /// reset), its origin connection closed.
    SlowClient(TooSlow),
    /// The origin accepted a protocol switch: its `101` was relayed, and the client
    /// connection is now a tunnel to the origin connection given.
    Switched(Box<super::Switched>),
}

/// How one attempt at getting a response head failed.
#[derive(Debug)]
enum Attempt {
    /// The connection failed before any response byte came: retryable on a reused
    /// connection.
    BeforeResponse(io::Error),
    /// Any other failure.
    Failed(Failure),
}

impl From<Attempt> for Failure {
    fn from(a: Attempt) -> Failure {
        match a {
            Attempt::BeforeResponse(e) => Failure::Broken(e),
            Attempt::Failed(f) => f,
        }
    }
}

/// A connection to an origin, in use by one exchange, and the origin's slot it holds.
struct Checkout<'a> {
    origin: &'a Origin,
    stream: TcpStream,
    /// The connection came from the pool.
    reused: bool,
    slot: SemaphorePermit<'a>,
}

impl Forwarder {
    /// Sends `req` (whose head was consumed from `client`; its body follows there) to
    /// the next origin, and relays the response to `client`.
    pub(crate) async fn forward(
        &self,
        mut req: RequestHead,
        client: &mut Buffered<ClientStream>,
        opts: ResponseOpts<'_>,
    ) -> Outcome {
        if let Some(kind) = req.upgrade {
            return self.upgrade(req, kind, &mut client.stream, opts).await;
        }
        let conn = match self.checkout_for(&mut req, opts.forwarded_at).await {
            Ok(conn) => conn,
            Err(failure) => return Outcome::Failed(failure),
        };
        if req.body == Framing::None {
            self.bodiless(conn, &req, &mut client.stream, opts).await
        } else {
            self.with_body(conn, &req, client, opts).await
        }
    }

    /// Sends `req`, the request of an HTTP/2 stream (its head rewritten for the origin,
    /// its body, if any, readable as an HTTP/1.1 body from `body`), to the next origin,
    /// and writes the response for the client to `to` as an HTTP/1.1 response.
    pub(crate) async fn forward_stream<CR, CW>(
        &self,
        mut req: RequestHead,
        body: CR,
        to: &mut CW,
        opts: ResponseOpts<'_>,
    ) -> Outcome
    where
        CR: AsyncRead + Unpin,
        CW: AsyncWrite + Unpin,
    {
        let conn = match self.checkout_for(&mut req, opts.forwarded_at).await {
            Ok(conn) => conn,
            Err(failure) => return Outcome::Failed(failure),
        };
        if req.body == Framing::None {
            return self.bodiless(conn, &req, to, opts).await;
        }
        let Checkout {
            origin,
            mut stream,
            slot,
            ..
        } = conn;
        self.counters.forwarded();
        let (mut pending, mut start) = (Vec::new(), 0);
        let parts = (&mut pending, &mut start);
        let (outcome, clean, buf) = self
            .both_ways(&req, body, to, parts, &mut stream, opts)
            .await;
        self.release(origin, stream, buf, clean, slot);
        outcome
    }

    /// A connection to an origin for `req`, whose head is then finished for that origin
    /// (its `Host` line if the client sent none, and the blank line).
    /// `forwarded_at` is set when a slot is taken (see [`ResponseOpts::forwarded_at`]).
    async fn checkout_for(
        &self,
        req: &mut RequestHead,
        forwarded_at: Option<&OnceLock<Instant>>,
    ) -> Result<Checkout<'_>, Failure> {
        let conn = self.checkout_any(forwarded_at).await?;
        if !req.has_host {
            req.upstream.extend_from_slice(&conn.origin.host_line);
        }
        req.upstream.extend_from_slice(b"\r\n");
        Ok(conn)
    }

    /// A connection to the next origin; when connecting to it fails and there are
    /// other origins, one to the origin after it.
    async fn checkout_any(
        &self,
        forwarded_at: Option<&OnceLock<Instant>>,
    ) -> Result<Checkout<'_>, Failure> {
        let none = || Failure::Connect(io::ErrorKind::NotFound.into());
        let first = self.pick().ok_or_else(none)?;
        let n = self.origins.len();
        match self
            .checkout(self.origins.get(first).ok_or_else(none)?, forwarded_at)
            .await
        {
            Err(Failure::Connect(e)) if n > 1 => {
                let next = self.origins.get((first + 1) % n).ok_or_else(none)?;
                tracing::debug!(error = %e, next = %next.addr, "connect failed: trying the next origin");
                self.checkout(next, forwarded_at).await
            }
            other => other,
        }
    }

    /// The short path of a request without a body; the response goes to `to`.
    async fn bodiless<W: AsyncWrite + Unpin>(
        &self,
        conn: Checkout<'_>,
        req: &RequestHead,
        to: &mut W,
        opts: ResponseOpts<'_>,
    ) -> Outcome {
        let Checkout {
            origin,
            stream,
            reused,
            slot,
        } = conn;
        let asked = async {
            match self.ask(stream, req).await {
                Err(Attempt::BeforeResponse(e)) if reused && req.replayable => {
                    tracing::debug!(error = %e, "reused origin connection closed: retrying once");
                    let stream = self.connect(origin).await?;
                    self.ask(stream, req).await.map_err(Failure::from)
                }
                other => other.map_err(Failure::from),
            }
        };
        let (head, mut from) = match asked.await {
            Ok(answer) => answer,
            Err(failure) => return Outcome::Failed(failure),
        };
        let reusable = head.reusable;
        let (outcome, body_done) = self
            .respond(head, &mut from, to, opts, req.http10, true)
            .await;
        let clean = reusable && body_done && from.pending().is_empty();
        let (stream, buf) = from.into_parts();
        self.release(origin, stream, buf, clean, slot);
        outcome
    }

    /// Writes the request head on `stream` and reads the response head, which is due
    /// within `timeouts.request`.
    async fn ask(
        &self,
        mut stream: TcpStream,
        req: &RequestHead,
    ) -> Result<(ResponseHead, Buffered), Attempt> {
        let mut out = [IoSlice::new(&req.upstream)];
        if let Err(e) = relay::write_all(&mut stream, &mut out, self.timeouts.body).await {
            return Err(Attempt::BeforeResponse(e.into_io()));
        }
        self.counters.forwarded();
        let mut from = Buffered::new(stream, self.take_buffer());
        match tokio::time::timeout(self.timeouts.request, read_head(&mut from, req)).await {
            Ok(head) => Ok((head?, from)),
            Err(_) => Err(Attempt::Failed(Failure::Timeout)),
        }
    }

    /// A request with a body: upload and response relayed at the same time.
    async fn with_body(
        &self,
        conn: Checkout<'_>,
        req: &RequestHead,
        client: &mut Buffered<ClientStream>,
        opts: ResponseOpts<'_>,
    ) -> Outcome {
        let Checkout {
            origin,
            mut stream,
            slot,
            ..
        } = conn;
        // Counted when the relay starts: head and body go out together.
        self.counters.forwarded();
        let Buffered {
            stream: client_stream,
            buf: client_buf,
            start: client_start,
        } = client;
        let parts = (client_buf, client_start);
        let (outcome, clean, buf) = match client_stream {
            ClientStream::Plain(s) => {
                let (r, w) = s.split();
                self.both_ways(req, r, w, parts, &mut stream, opts).await
            }
            ClientStream::Tls(s) => {
                let (r, w) = tokio::io::split(s.as_mut());
                self.both_ways(req, r, w, parts, &mut stream, opts).await
            }
        };
        self.release(origin, stream, buf, clean, slot);
        outcome
    }

    /// [`Forwarder::with_body`] on the two halves of the client connection: the client's
    /// pending bytes (`client`, taken and given back) are the start of the upload. Returns
    /// the outcome, whether the origin connection may be reused, and its buffer.
    async fn both_ways<CR, CW>(
        &self,
        req: &RequestHead,
        client_read: CR,
        mut client_write: CW,
        client: (&mut Vec<u8>, &mut usize),
        origin: &mut TcpStream,
        opts: ResponseOpts<'_>,
    ) -> (Outcome, bool, Vec<u8>)
    where
        CR: AsyncRead + Unpin,
        CW: AsyncWrite + Unpin,
    {
        let (client_buf, client_start) = client;
        let (origin_read, mut origin_write) = origin.split();
        let mut up = Buffered {
            stream: client_read,
            buf: std::mem::take(client_buf),
            start: std::mem::take(client_start),
        };
        let mut down = Buffered::new(origin_read, self.take_buffer());
        let (outcome, reusable) = self
            .duplex(
                req,
                &mut up,
                &mut origin_write,
                &mut down,
                &mut client_write,
                opts,
            )
            .await;
        *client_buf = std::mem::take(&mut up.buf);
        *client_start = up.start;
        let clean = reusable && down.pending().is_empty();
        (outcome, clean, down.into_parts().1)
    }

    /// Relays the request body from `up` to the origin while reading the response head
    /// from `down` and then relaying the response to the client. Returns the outcome and
    /// whether the origin connection may be reused.
    async fn duplex<CR, OW, OR, CW>(
        &self,
        req: &RequestHead,
        up: &mut Buffered<CR>,
        to_origin: &mut OW,
        down: &mut Buffered<OR>,
        to_client: &mut CW,
        opts: ResponseOpts<'_>,
    ) -> (Outcome, bool)
    where
        CR: AsyncRead + Unpin,
        OW: AsyncWrite + Unpin,
        OR: AsyncRead + Unpin,
        CW: AsyncWrite + Unpin,
    {
        let mut pace = Pace::stall(self.timeouts.body);
        let upload = relay::relay(
            up,
            to_origin,
            &req.upstream,
            req.body,
            false,
            &req.connection_names,
            &mut pace,
        );
        tokio::pin!(upload);
        // The upload's result once it ended.
        let mut sent: Option<Result<(), RelayError>> = None;
        // Armed when the upload ends: the response head is due `timeouts.request` later.
        let due = tokio::time::sleep(self.timeouts.request);
        tokio::pin!(due);
        let head = loop {
            tokio::select! {
                r = &mut upload, if sent.is_none() => {
                    match r {
                        Ok(()) => {}
                        // The origin stopped reading: its answer may be on the way.
                        Err(RelayError::Write(ref e)) => {
                            tracing::debug!(error = %e, "origin stopped reading the request body");
                        }
                        // Not reached: the upload is held to no minimum send rate.
                        Err(RelayError::TooSlow(ref e)) => {
                            tracing::debug!(error = %e, "origin read the request body too slowly");
                        }
                        Err(e @ (RelayError::Chunked(_) | RelayError::ChunkedBeforeHead(_))) => {
                            return (Outcome::Failed(Failure::BadBody(e)), false);
                        }
                        Err(RelayError::Read(e)) if e.kind() == io::ErrorKind::TimedOut => {
                            return (Outcome::Failed(Failure::ClientStalled), false);
                        }
                        Err(RelayError::Read(e)) => {
                            tracing::debug!(error = %e, "client went away in its request body");
                            return (Outcome::Aborted, false);
                        }
                    }
                    due.as_mut().reset(crate::deadline::from_now(self.timeouts.request));
                    sent = Some(r);
                }
                read = read_head(down, req) => match read {
                    Ok(head) => break head,
                    Err(a) => return (Outcome::Failed(a.into()), false),
                },
                () = &mut due, if sent.is_some() => return (Outcome::Failed(Failure::Timeout), false),
            }
        };
        let reusable = head.reusable;
        let uploaded = matches!(sent, Some(Ok(())));
        let response = self.respond(head, down, to_client, opts, req.http10, uploaded);
        tokio::pin!(response);
        let (mut outcome, body_done) = loop {
            tokio::select! {
                r = &mut upload, if sent.is_none() => sent = Some(r),
                done = &mut response => break done,
            }
        };
        let uploaded = matches!(sent, Some(Ok(())));
        if let Outcome::Done { linger, .. } = &mut outcome {
            *linger = !uploaded;
        }
        (outcome, reusable && body_done && uploaded)
    }

    /// Writes the response head for the client (with `Connection: close` when the
    /// client or the server is done with the connection, or the request body was not
    /// read to its end) and relays the body. Returns the outcome and whether the body
    /// was relayed to its end.
    pub(super) async fn respond<R, W>(
        &self,
        mut head: ResponseHead,
        from: &mut Buffered<R>,
        to: &mut W,
        opts: ResponseOpts<'_>,
        http10: bool,
        request_done: bool,
    ) -> (Outcome, bool)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let close = !opts.keep_alive
            || head.close_delimited
            || !request_done
            || opts.draining.load(Ordering::Relaxed);
        let mut out = std::mem::take(&mut head.downstream);
        out.extend_from_slice(&self.served_by);
        out.extend_from_slice(http1::connection_line(close, http10));
        out.extend_from_slice(b"\r\n");
        let mut pace = Pace {
            stall: self.timeouts.body,
            rate: self.send_rate.clone().sharing(opts.shared_progress),
        };
        let relayed = relay::relay(
            from,
            to,
            &out,
            head.body,
            head.dechunk,
            &head.connection_names,
            &mut pace,
        );
        match relayed.await {
            Ok(()) => (
                Outcome::Done {
                    close,
                    linger: false,
                },
                true,
            ),
            Err(e @ RelayError::ChunkedBeforeHead(_)) => {
                (Outcome::Failed(Failure::BadResponseBody(e)), false)
            }
            Err(RelayError::TooSlow(e)) => (Outcome::SlowClient(e), false),
            Err(e) => {
                tracing::debug!(error = %e, "response relay failed");
                (Outcome::Aborted, false)
            }
        }
    }

    /// A slot of `origin` (waiting for one at most `timeouts.connect`), then a
    /// connection to it: a pooled one or a new one.
    async fn checkout<'a>(
        &self,
        origin: &'a Origin,
        forwarded_at: Option<&OnceLock<Instant>>,
    ) -> Result<Checkout<'a>, Failure> {
        let slot = match origin.slots.try_acquire() {
            Ok(slot) => slot,
            // No slot free: wait for one. (The semaphore is never closed; if it were,
            // `acquire` would fail at once, and that is no slot too.)
            Err(_) => tokio::time::timeout(self.timeouts.connect, origin.slots.acquire())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or(Failure::NoSlot)?,
        };
        mark_forwarded(forwarded_at);
        let (stream, reused) = match origin.pool.take() {
            Some(stream) => (stream, true),
            None => (self.connect(origin).await?, false),
        };
        Ok(Checkout {
            origin,
            stream,
            reused,
            slot,
        })
    }

    /// After an exchange: the origin connection back to this thread's pool when `clean`
    /// (a complete exchange the origin allows to reuse), the read buffer kept for reuse,
    /// then the slot given back. The slots are shared by every thread and go to the
    /// longest waiter first, whichever thread it is on: a waiter on this thread then
    /// finds the pooled connection, one on another thread takes a connection from its
    /// own thread's pool or opens a new one.
    fn release(
        &self,
        origin: &Origin,
        stream: TcpStream,
        buf: Vec<u8>,
        clean: bool,
        slot: SemaphorePermit<'_>,
    ) {
        if clean {
            origin.pool.put(stream);
        } else {
            drop(stream);
        }
        self.give_buffer(buf);
        drop(slot);
    }

    pub(super) async fn connect(&self, origin: &Origin) -> Result<TcpStream, Failure> {
        let connecting = TcpStream::connect(origin.addr);
        let stream = tokio::time::timeout(self.timeouts.connect, connecting)
            .await
            .map_err(|_| Failure::Connect(io::ErrorKind::TimedOut.into()))?
            .map_err(Failure::Connect)?;
        stream.set_nodelay(true).map_err(Failure::Connect)?;
        Ok(stream)
    }
}

/// Reads the final response head from `from`, skipping interim (1xx) responses. A
/// connection that ends or fails before any byte came is [`Attempt::BeforeResponse`].
/// Cancel-safe: what was read stays in `from`.
async fn read_head<R: AsyncRead + Unpin>(
    from: &mut Buffered<R>,
    req: &RequestHead,
) -> Result<ResponseHead, Attempt> {
    let mut received = !from.pending().is_empty();
    loop {
        match http1::parse_response(from.pending(), req.is_head, req.http10) {
            Ok(Parsed::Final(head)) => {
                from.consume(head.head_len);
                return Ok(head);
            }
            Ok(Parsed::Interim(len)) => {
                from.consume(len);
                continue;
            }
            Ok(Parsed::Partial) => {}
            Err(e) => return Err(Attempt::Failed(e.into())),
        }
        match from.read_more(BUF_BYTES).await {
            Ok(0) if !received => {
                return Err(Attempt::BeforeResponse(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(0) => {
                let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(Attempt::Failed(Failure::Broken(eof)));
            }
            Ok(_) => received = true,
            Err(e) if !received => return Err(Attempt::BeforeResponse(e)),
            Err(e) => return Err(Attempt::Failed(Failure::Broken(e))),
        }
    }
}
