//! One client connection: request heads read under the idle and head timers, each
//! request forwarded and its response relayed, `Connection: close` while draining.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{Phase, Shared};
use crate::deadline::after;
use crate::forward::relay::{self, Buffered};
use crate::forward::{Forwarder, Outcome, ResponseOpts, client_ip_value};
use crate::http1::{self, Framing, RequestHead};

/// Room made in the client buffer before each read of a request head.
const HEAD_READ: usize = 4096;

/// Counts one open connection; created at accept, dropped when its task ends
/// (or is dropped without running), which wakes a waiting drain.
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

/// Serves one accepted client connection until it ends, is closed by a timer, or the
/// drain deadline forces it closed. Requests go to the origins through `forwarder`, the
/// pool of the serving thread.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    open: OpenGuard,
    forwarder: Arc<Forwarder>,
) {
    let shared = open.0.clone();
    // Small responses must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let mut force = shared.phase.subscribe();
    let conn = Conn {
        client: Buffered::new(stream, Vec::with_capacity(HEAD_READ)),
        forwarded_for: client_ip_value(peer.ip()),
        phase: shared.phase.subscribe(),
        idle_since: Instant::now(),
        served: 0,
        shared,
        forwarder,
        peer,
    };
    tokio::select! {
        biased;
        // Dropping the connection's future closes its sockets.
        _ = force.wait_for(|p| *p == Phase::Force) => {}
        () = conn.run() => {}
    }
    drop(open);
}

/// What to do after an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close after what was written (`Connection: close` was sent).
    Close,
    /// Close at once: the connection broke.
    Abort,
}

/// A client connection being served.
struct Conn {
    client: Buffered,
    forwarded_for: Vec<u8>,
    phase: watch::Receiver<Phase>,
    /// When the last response was done (or the connection accepted).
    idle_since: Instant,
    /// Requests served on this connection so far.
    served: u64,
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
    peer: SocketAddr,
}

impl Conn {
    async fn run(mut self) {
        loop {
            let Some(req) = self.next_request().await else {
                return;
            };
            self.served += 1;
            match self.handle(req).await {
                Next::KeepAlive => {
                    self.idle_since = Instant::now();
                    self.client.shrink(HEAD_READ);
                }
                Next::Close => {
                    let _ = self.client.stream.shutdown().await;
                    return;
                }
                Next::Abort => return,
            }
        }
    }

    /// The next request head; `None` when the connection is to be closed (the client
    /// closed it, a timer expired, or the head was refused and answered).
    async fn next_request(&mut self) -> Option<RequestHead> {
        // When the first bytes of this head arrived; the head must be complete
        // within `timeouts.header_read` from then.
        let mut head_started: Option<Instant> = None;
        loop {
            if !self.client.pending().is_empty() {
                head_started.get_or_insert_with(Instant::now);
                match http1::parse_request(self.client.pending(), &self.forwarded_for) {
                    Ok(Some(req)) => {
                        self.client.consume(req.head_len);
                        return Some(req);
                    }
                    Ok(None) => {}
                    Err(reject) => {
                        tracing::debug!(peer = %self.peer, %reject, "request refused");
                        self.answer(reject.status(), true).await;
                        let _ = self.client.stream.shutdown().await;
                        return None;
                    }
                }
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
                return None;
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
            let phase = *self.phase.borrow_and_update();
            let (deadline, draining) = match phase {
                Phase::Serving => (after(self.idle_since, wait), false),
                Phase::Draining(since) => {
                    let drain_at = after(self.idle_since.max(since), cfg.drain.idle_close);
                    (drain_at.min(after(self.idle_since, wait)), true)
                }
                Phase::Force => return Ok(0),
            };
            tokio::select! {
                read = self.client.read_more(HEAD_READ) => return read,
                () = tokio::time::sleep_until(deadline.into()) => {
                    if draining {
                        self.shared.idle_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(peer = %self.peer, draining, "closing idle client connection");
                    return Ok(0);
                }
                Ok(()) = self.phase.changed() => {}
            }
        }
    }

    /// Forwards one request and relays its response.
    async fn handle(&mut self, req: RequestHead) -> Next {
        let keep_alive = req.keep_alive;
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
        };
        match self.forwarder.forward(req, &mut self.client, opts).await {
            Outcome::Done { close: false } => Next::KeepAlive,
            Outcome::Done { close: true } => Next::Close,
            Outcome::Aborted => Next::Abort,
            Outcome::Failed(failure) => {
                tracing::debug!(peer = %self.peer, %failure, "origin exchange failed");
                // A request body may be left unread: the connection cannot go on.
                let close = !keep_alive || has_body || self.draining();
                if self.answer(failure.status(), close).await {
                    if close { Next::Close } else { Next::KeepAlive }
                } else {
                    Next::Abort
                }
            }
        }
    }

    /// Writes a response generated by the proxy; `false` when the write failed.
    async fn answer(&mut self, status: u16, close: bool) -> bool {
        let resp = http1::error_response(status, self.forwarder.served_by(), close);
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
