//! HTTP/2 from clients, on the `h2` crate: one connection's streams served concurrently
//! (each forwarded over HTTP/1.1 by `stream`; a WebSocket's extended CONNECT, RFC 8441,
//! by `connect`), its limits, its keep-alive PINGs and its graceful close.
//!
//! Graceful close (drain, idle timeout): h2's two-step shutdown. A first `GOAWAY` with
//! last-stream-id 2^31-1 and a `PING`; on the `PING`'s ACK, the final `GOAWAY` with the
//! last stream id refproxy has taken (every stream up to it is answered; the client may
//! retry the ones above it elsewhere). Streams still open go on until they end (or the
//! drain deadline, which drops the connection); then the connection closes, lingering
//! (a FIN, then the client's late frames read and dropped until it closes). A client
//! that does not ACK the `PING` gets the final `GOAWAY` once it has no stream open and
//! `timeouts.h2_ping_timeout` has passed since the first one. A draining process starts
//! this on every HTTP/2 connection at once, idle ones included.
//!
//! Limits (see [`crate::config::Http2Config`]): `SETTINGS_MAX_CONCURRENT_STREAMS` (one
//! stream more is refused with `RST_STREAM REFUSED_STREAM`), `SETTINGS_MAX_HEADER_LIST_SIZE`
//! (a larger head gets 431, and bounds the CONTINUATION frames of a head), the initial
//! windows, and the two reset-stream limits that end a connection with
//! `GOAWAY ENHANCE_YOUR_CALM` (rapid reset), and so does the premature-reset guard
//! (`premature`: too many streams reset by the client soon after refproxy forwarded
//! them, counted `premature_reset`). A client address's budget of premature ends across
//! its connections (`budget`: young forwarded streams reset, or cut by the client ending
//! its connection, beyond the streams each connection let live) refuses new connections
//! from an address without tokens (`GOAWAY ENHANCE_YOUR_CALM` at once, counted
//! `address_premature_reset`). Frames that break the protocol end the
//! connection with the `GOAWAY` code h2 picks (`PROTOCOL_ERROR`, `FRAME_SIZE_ERROR`, ...);
//! other connections are not affected. The streams of one connection hold at most
//! `limits.h2_max_origin_slots_per_connection` origin slots at once (`share`), and h2
//! holds at most `limits.h2_max_send_buffer` response bytes per stream. A connection with no stream open for
//! `timeouts.idle` is closed gracefully; one that leaves a keep-alive `PING` sent after
//! `timeouts.h2_ping_interval` unanswered for `timeouts.h2_ping_timeout` is closed.

mod body;
mod budget;
mod connect;
mod corked;
mod prefixed;
mod premature;
#[cfg(test)]
mod send_buffer_tests;
mod share;
mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use h2::Reason;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::counters::ErrorKind;
use super::{Shared, Stage};
use crate::deadline::after;
use crate::forward::{Forwarder, client_ip_value};
pub(super) use budget::Budget;
pub(super) use prefixed::Prefixed;
use stream::StreamCtx;

/// The client connection preface of HTTP/2 (RFC 9113 3.4).
pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a cleartext connection say, once HTTP/2 is on.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Preface {
    /// The whole client preface: HTTP/2 with prior knowledge.
    Complete,
    /// A beginning of it: read more before deciding.
    Partial,
    /// Not HTTP/2: an HTTP/1.x request.
    No,
}

/// Looks for the client preface at the start of `pending`.
pub(super) fn preface(pending: &[u8]) -> Preface {
    let n = pending.len().min(PREFACE.len());
    if pending.get(..n) != PREFACE.get(..n) {
        Preface::No
    } else if n == PREFACE.len() {
        Preface::Complete
    } else {
        Preface::Partial
    }
}

/// The h2 server settings of `cfg`.
fn builder(cfg: &crate::config::Http2Config) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(cfg.max_concurrent_streams)
        .max_header_list_size(cfg.max_header_list_size)
        .initial_window_size(cfg.initial_stream_window)
        .initial_connection_window_size(cfg.initial_connection_window)
        .max_pending_accept_reset_streams(cfg.max_pending_reset_streams as usize)
        .max_local_error_reset_streams(Some(cfg.max_local_error_reset_streams as usize))
        .max_send_buffer_size(cfg.max_send_buffer as usize);
    // WebSockets over HTTP/2 (RFC 8441, `connect`).
    b.enable_connect_protocol();
    b
}

/// Serves an HTTP/2 connection (its preface still to be read from `io`) until it ends.
/// Dropped at the drain deadline, which drops the connection and its streams (they run
/// in this task, so they are gone before the connection stops counting as open).
pub(super) async fn serve<T>(
    io: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    forwarder: Arc<Forwarder>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = shared.cfg.clone();
    let h2cfg = cfg.http2;
    // h2's writes gathered: what one poll of the connection produced goes out in one
    // write, made after the poll (`uncork`).
    let (io, uncork) = corked::cork(io, corked::GATHER_BYTES);
    let handshaken = {
        let mut handshake = std::pin::pin!(builder(&h2cfg).handshake::<_, Bytes>(io));
        let handshake = std::future::poll_fn(|cx| {
            let polled = handshake.as_mut().poll(cx);
            uncork.uncork(cx);
            polled
        });
        tokio::time::timeout(cfg.timeouts.header_read, handshake).await
    };
    let mut conn = match handshaken {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "h2 handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "h2 handshake not done in time");
            return;
        }
    };
    // An address out of tokens for premature ends (`budget`): the connection is refused
    // before any stream is taken (GOAWAY ENHANCE_YOUR_CALM, last-stream-id 0).
    let ip = peer.ip();
    let refused = shared.h2_budget.exhausted(ip, Instant::now());
    if refused {
        tracing::debug!(%peer, "address out of premature-end tokens: GOAWAY ENHANCE_YOUR_CALM");
        forwarder.counters.error(ErrorKind::AddressPrematureReset);
        conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
    }
    let ctx = Arc::new(StreamCtx {
        forwarded_for: client_ip_value(peer.ip()),
        shared: shared.clone(),
        forwarder,
        peer,
        share: share::Share::new(cfg.h2_origin_share()),
        tunnel_streams: AtomicUsize::new(0),
        written: uncork.written(),
    });
    let mut keepalive: Pin<Box<dyn Future<Output = ()> + Send>> = match conn.ping_pong() {
        Some(pings) => Box::pin(keep_alive(pings, h2cfg)),
        None => Box::pin(std::future::pending()),
    };
    let mut stage = shared.stage.subscribe();
    // The streams run in this task: no task to spawn, schedule and join per stream.
    let mut streams = FuturesUnordered::new();
    let mut idle_since = Instant::now();
    // When the graceful shutdown began (the first GOAWAY), and whether the final GOAWAY
    // was forced for a client that did not answer the PING.
    let mut going_away: Option<Instant> = refused.then(Instant::now);
    let mut forced_final = refused;
    // Set once refproxy closes the connection abruptly for a limit (the premature-reset
    // guard, a refused address): streams ended after that are not the client's doing,
    // and are not counted against its address.
    let mut cut_by_us = refused;
    // For the address's budget, charged when the connection ends (`budget`): the
    // forwarded streams the client reset young, and the forwarded streams that lived
    // (answered, or ended older than the window).
    let (mut premature_ends, mut lived) = (0u32, 0u32);
    // Set when the client ended the connection (EOF, TCP reset, its GOAWAY, an error of
    // its making) before refproxy began to close it: its streams still open were cut by
    // the client, and count against its address's budget.
    let mut client_ended = false;
    let window = h2cfg.premature_reset_window;
    let mut premature =
        premature::Account::new(h2cfg.premature_reset_window, h2cfg.max_premature_resets);
    // Set while a stream other than a tunnel is open: the deadline would cut a response
    // in progress.
    let mut in_progress = super::cut::InProgress::new(shared.clone());
    loop {
        in_progress.set(
            streams
                .len()
                .saturating_sub(ctx.tunnel_streams.load(Ordering::Relaxed)) as u64,
        );
        if going_away.is_none() && matches!(*stage.borrow_and_update(), Stage::Draining(_)) {
            tracing::debug!(%peer, open = streams.len(), "draining: GOAWAY");
            conn.graceful_shutdown();
            going_away = Some(Instant::now());
        }
        let idle_at = (streams.is_empty() && going_away.is_none())
            .then(|| after(idle_since, cfg.timeouts.idle));
        let final_at = going_away
            .filter(|_| streams.is_empty() && !forced_final)
            .map(|since| after(since, h2cfg.ping_timeout));
        tokio::select! {
            accepted = std::future::poll_fn(|cx| {
                let accepted = conn.poll_accept(cx);
                uncork.uncork(cx);
                accepted
            }) => match accepted {
                Some(Ok((req, mut respond))) => {
                    if refused {
                        // Not reached: h2 ignores streams above the GOAWAY's last id.
                        respond.send_reset(Reason::REFUSED_STREAM);
                    } else {
                        streams.push(stream::serve(req, respond, ctx.clone()));
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "h2 connection ended with an error");
                    client_ended = going_away.is_none();
                    break;
                }
                None => {
                    client_ended = going_away.is_none();
                    break;
                }
            },
            Some(end) = streams.next() => {
                if !cut_by_us {
                    if end.premature_reset(window) {
                        premature_ends = premature_ends.saturating_add(1);
                    } else if end.lived(window) {
                        lived = lived.saturating_add(1);
                    }
                }
                let tripped = premature.record(end) && !cut_by_us;
                if tripped {
                    tracing::debug!(%peer, "premature resets over limits.h2_max_premature_resets: GOAWAY ENHANCE_YOUR_CALM");
                    ctx.forwarder.counters.error(ErrorKind::PrematureReset);
                    // The last stream id taken goes in the GOAWAY; h2 ends the open
                    // streams with it (each gives up its origin connection, counted
                    // aborted) and then the connection.
                    conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                    going_away.get_or_insert_with(Instant::now);
                    forced_final = true;
                    cut_by_us = true;
                }
                if streams.is_empty() {
                    idle_since = Instant::now();
                }
            }
            Ok(()) = stage.changed() => {}
            () = sleep_until(idle_at), if idle_at.is_some() => {
                tracing::debug!(%peer, "idle h2 connection: GOAWAY");
                conn.graceful_shutdown();
                going_away = Some(Instant::now());
            }
            () = sleep_until(final_at), if final_at.is_some() => {
                tracing::debug!(%peer, "no PING ACK after the first GOAWAY: final GOAWAY");
                conn.abrupt_shutdown(Reason::NO_ERROR);
                forced_final = true;
            }
            () = &mut keepalive => {
                tracing::debug!(%peer, "keep-alive PING not answered: closing");
                break;
            }
        }
    }
    in_progress.set(0);
    // The connection is gone: streams still running cannot deliver anything. Dropping
    // it tells each of them (as a reset), so that each counts itself aborted as over
    // HTTP/1.1; one that has not ended by `drain.linger` is dropped.
    drop(keepalive);
    drop(conn);
    // The streams the client cut by ending the connection, forwarded less than the
    // window ago, are premature ends too.
    let mut young_cuts = 0u32;
    let ended = async {
        while let Some(end) = streams.next().await {
            young_cuts += u32::from(client_ended && end.young_cut(window));
        }
    };
    if tokio::time::timeout(cfg.drain.linger, ended).await.is_err() {
        drop(streams);
    }
    // The address pays for the premature ends beyond the forwarded streams that lived:
    // a connection that cut as many as it let finish costs nothing (as the per-connection
    // account allows), so that a client ending a long run with its streams in flight (a
    // benchmark's last second) is not charged for them, while one that opens connections
    // only to cut what they forwarded pays for every stream.
    let charge = premature_ends
        .saturating_add(young_cuts)
        .saturating_sub(lived);
    if charge > 0 {
        let taken = shared.h2_budget.take(ip, charge, Instant::now());
        tracing::debug!(%peer, premature_ends, young_cuts, lived, ?taken, "premature ends charged to the client's address");
    }
    // A lingering close, as over HTTP/1.1: what h2 gathered and could not write yet
    // goes out, then a FIN, and what the client still sends (frames in flight when it
    // got the last GOAWAY) is read and dropped until it closes, so that the close is not
    // a reset that could take the last GOAWAY and responses from the client before it
    // reads them.
    if let Some((mut io, rest)) = uncork.into_parts() {
        let most = if shared.draining.load(Ordering::Relaxed) {
            cfg.drain.linger
        } else {
            super::conn::LINGER
        };
        let until = after(Instant::now(), most);
        let _ = tokio::time::timeout_at(until.into(), io.write_all(&rest)).await;
        super::close::linger(&mut io, until).await;
    }
}

/// Sleeps until `at` (a branch guard makes sure it is `Some`).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends a PING every `ping_interval`; resolves when one is not answered within
/// `ping_timeout`. Never resolves once the connection is gone (its end is seen by the
/// accept loop).
async fn keep_alive(mut pings: h2::PingPong, cfg: crate::config::Http2Config) {
    loop {
        tokio::time::sleep(cfg.ping_interval).await;
        match tokio::time::timeout(cfg.ping_timeout, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(_)) => std::future::pending::<()>().await,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_is_told_apart_from_http1() {
        assert_eq!(preface(PREFACE), Preface::Complete);
        assert_eq!(
            preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"),
            Preface::Complete
        );
        assert_eq!(preface(b"PRI * HT"), Preface::Partial);
        assert_eq!(preface(b"GET / HTTP/1.1\r\n"), Preface::No);
        assert_eq!(preface(b"PRI * HTTP/1.1\r\n"), Preface::No);
    }
}
