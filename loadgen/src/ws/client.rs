//! One WebSocket client: open, exchange messages until the connection ends
//! or the run does, reopen; each attempt, connection and message recorded
//! exactly once.
//!
//! A message carries its sequence number in its first 8 bytes; the echo
//! with that number settles it. Messages wait in send order; each tick
//! (every message interval) first settles the ones whose timeout passed as
//! `late`, then sends the next. When the connection ends, the messages still
//! waiting are `late` if their timeout had passed, else `lost`. When the run
//! ends, the client stops sending, waits for the outstanding echoes (at most
//! the message timeout), settles what is left as late, counts the connection
//! `open at end` and closes it (1000).
//!
//! The client reads while it sends (one future polls both), so a server
//! that echoes one whole message while the next is being written never
//! deadlocks with it. A connection writes one message at a time: a tick that
//! comes while the previous message is still being written sends the next
//! one as soon as that write finishes. A write the server does not take is
//! not given up: its message is late at its timeout, as any message without
//! its echo on a connection that stays open, and the connection counts as the
//! server ended it or, at the run's end, `open at end`; then, with a message
//! still half written, the client cannot write a close frame and drops the
//! connection. So a run ends at most the message timeout plus two
//! [`CLOSE_WAIT`]s after `-t`, whatever the server does once it has answered
//! the handshake.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use reloadbench_model::outcome::FailureClass;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use super::record::{self, Col};
use super::{SEQ_BYTES, WsCtx};
use crate::client::{ClientCtx, Conn, TlsConn};
use crate::record::Recorder;
use crate::run::Shared;

/// First back-off after a failed attempt (as the request clients).
const BACKOFF_MIN: Duration = Duration::from_micros(500);
/// Largest back-off.
const BACKOFF_MAX: Duration = Duration::from_millis(50);
/// Stands for "no time limit" (stop() ends such a run).
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
/// The close code a frame without one reports (RFC 6455, 7.1.5).
const NO_STATUS: u16 = 1005;
/// How long the client waits for the server's answer to its own close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A connection kind whose stream can carry a WebSocket.
pub(crate) trait WsConn: Conn {
    /// The byte stream.
    type Io: AsyncRead + AsyncWrite + Unpin;
    /// The connection as a byte stream.
    fn io(self) -> Self::Io;
}

impl WsConn for TcpStream {
    type Io = TcpStream;
    fn io(self) -> TcpStream {
        self
    }
}

impl WsConn for TlsConn {
    type Io = TlsStream<TcpStream>;
    fn io(self) -> TlsStream<TcpStream> {
        self.0
    }
}

/// How an opened connection's session ended.
enum End {
    /// The server sent a close frame with this code.
    Closed(u16),
    /// EOF, reset or a broken stream without a close frame.
    Cut,
    /// The run ended with the connection open.
    RunOver,
}

/// Everything a client's session needs at hand.
struct Session<'a> {
    shared: &'a Shared,
    ws: &'a WsCtx,
    rec: &'a RefCell<Recorder>,
    /// Sequence number and send time of each message awaiting its echo.
    pending: VecDeque<(u64, Instant)>,
    next_seq: u64,
    payload: Vec<u8>,
}

impl Session<'_> {
    fn t(&self, at: Instant) -> u64 {
        self.shared.offset_ns(at)
    }

    fn count(&self, at: Instant, col: Col, n: u64) {
        if n > 0 {
            record::of(self.rec, self.ws.bucket_ns).count(self.t(at), col, n);
        }
    }

    /// Settles the waiting messages whose timeout passed as late.
    fn expire(&mut self, now: Instant) {
        let timeout = self.ws.options.message_timeout;
        let mut n = 0;
        while let Some(&(_, sent)) = self.pending.front() {
            if now.saturating_duration_since(sent) < timeout {
                break;
            }
            self.pending.pop_front();
            n += 1;
        }
        self.count(now, Col::Late, n);
    }

    /// Settles the message an echo names; an echo of a message already
    /// settled (late) or unknown is ignored.
    fn echo(&mut self, data: &[u8]) {
        let Some(seq) = data
            .get(..SEQ_BYTES)
            .and_then(|b| <[u8; SEQ_BYTES]>::try_from(b).ok())
            .map(u64::from_le_bytes)
        else {
            return;
        };
        let Some(pos) = self.pending.iter().position(|(s, _)| *s == seq) else {
            return;
        };
        let Some((_, sent)) = self.pending.remove(pos) else {
            return;
        };
        let now = Instant::now();
        let rtt = now.saturating_duration_since(sent);
        if rtt < self.ws.options.message_timeout {
            record::of(self.rec, self.ws.bucket_ns).echoed(self.t(now), rtt.as_micros() as u64);
        } else {
            self.count(now, Col::Late, 1);
        }
    }

    /// The connection ended: what still waits is late if its timeout has
    /// passed (timeouts are otherwise checked on ticks only), else lost
    /// with the connection.
    fn lose_pending(&mut self, now: Instant) {
        self.expire(now);
        let n = self.pending.len() as u64;
        self.pending.clear();
        self.count(now, Col::Lost, n);
    }

    /// The next message.
    fn message(&mut self) -> Message {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.payload[..SEQ_BYTES].copy_from_slice(&seq.to_le_bytes());
        self.pending.push_back((seq, Instant::now()));
        Message::Binary(Bytes::copy_from_slice(&self.payload))
    }

    /// Counts the next message sent and hands it to `out` to write.
    fn send(&mut self, out: &mut Outgoing, now: Instant) {
        let msg = self.message();
        self.count(now, Col::Sent, 1);
        out.msg = Some(msg);
        out.busy = true;
    }
}

/// The message a connection is writing, if any.
#[derive(Default)]
struct Outgoing {
    /// The message, until the stream is ready to take it.
    msg: Option<Message>,
    /// A message is being written (taken by the stream or not).
    busy: bool,
}

impl Outgoing {
    /// Writes the message: ready when it is written whole (or the write
    /// failed).
    fn poll_write<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut WebSocketStream<S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WsError>> {
        if let Some(msg) = self.msg.take() {
            let taken = match stream.poll_ready_unpin(cx) {
                Poll::Pending => {
                    self.msg = Some(msg);
                    return Poll::Pending;
                }
                Poll::Ready(ready) => ready.and_then(|()| stream.start_send_unpin(msg)),
            };
            if let Err(e) = taken {
                self.busy = false;
                return Poll::Ready(Err(e));
            }
        }
        let flushed = ready!(stream.poll_flush_unpin(cx));
        self.busy = false;
        Poll::Ready(flushed)
    }
}

/// What a connection did next.
enum Io {
    /// The message being written was written whole, or its write failed.
    Written(Result<(), WsError>),
    /// An item was read (`None`: the stream ended).
    Read(Option<Result<Message, WsError>>),
}

/// Writes `out`'s message (if any) and reads, together: the first of the
/// two to finish. The reading never waits for the writing.
async fn io<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut WebSocketStream<S>,
    out: &mut Outgoing,
) -> Io {
    poll_fn(|cx| {
        if out.busy
            && let Poll::Ready(written) = out.poll_write(stream, cx)
        {
            return Poll::Ready(Io::Written(written));
        }
        stream.poll_next_unpin(cx).map(Io::Read)
    })
    .await
}

/// Whether the run is over (stopped, or its time limit passed).
fn over(shared: &Shared) -> bool {
    shared.is_stopped() || shared.deadline().is_some_and(|d| Instant::now() >= d)
}

/// Sleeps `pause`, but not past the run's end; false when the run is over.
async fn pause(shared: &Shared, pause: Duration) -> bool {
    let until = Instant::now() + pause;
    let until = shared.deadline().map_or(until, |d| until.min(d));
    shared.sleep_until(until).await && !over(shared)
}

/// The class of a failed WebSocket handshake (after the connect succeeded).
fn classify_handshake(e: &WsError) -> FailureClass {
    match e {
        WsError::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionReset => FailureClass::Reset,
            std::io::ErrorKind::UnexpectedEof => FailureClass::Closed,
            std::io::ErrorKind::BrokenPipe => FailureClass::WriteError,
            _ => FailureClass::BadResponse,
        },
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::HandshakeIncomplete) => FailureClass::Closed,
        WsError::Http(resp) if resp.status().is_server_error() => FailureClass::Http5xx,
        WsError::Http(_) => FailureClass::HttpOther,
        _ => FailureClass::BadResponse,
    }
}

/// The client's WebSocket configuration: small buffers, so that ten
/// thousand idle connections stay small.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a connection and makes the WebSocket handshake.
async fn open<C: WsConn>(
    ctx: &ClientCtx,
    ws: &WsCtx,
    id: u64,
    shared: &Shared,
    rec: &RefCell<Recorder>,
) -> Result<WebSocketStream<C::Io>, FailureClass> {
    let opened = C::open(ctx, ctx.source(id), shared, rec).await?;
    let handshake = tokio_tungstenite::client_async_with_config(
        ws.url.as_str(),
        opened.conn.io(),
        Some(config()),
    );
    match tokio::time::timeout(ctx.timeout, handshake).await {
        Err(_) => Err(FailureClass::Timeout),
        Ok(Err(e)) => Err(classify_handshake(&e)),
        Ok(Ok((stream, _response))) => Ok(stream),
    }
}

/// Runs client `id` until the run is over.
pub(crate) async fn run<C: WsConn>(
    id: u64,
    shared: Arc<Shared>,
    ctx: Arc<ClientCtx>,
    rec: Rc<RefCell<Recorder>>,
) {
    let Some(ws) = ctx.ws.clone() else {
        return;
    };
    let mut backoff = BACKOFF_MIN;
    let mut ended_at: Option<Instant> = None;
    let mut next_seq = 0;
    while !over(&shared) {
        match open::<C>(&ctx, &ws, id, &shared, &rec).await {
            Err(class) => {
                let now = Instant::now();
                record::of(&rec, ws.bucket_ns).failed(shared.offset_ns(now), class);
                shared.ws[2].fetch_add(1, Ordering::SeqCst);
                let waited = matches!(class, FailureClass::ConnectTimeout | FailureClass::Timeout);
                if !waited && !pause(&shared, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Ok(stream) => {
                backoff = BACKOFF_MIN;
                let now = Instant::now();
                let reconnect =
                    ended_at.map(|e| now.saturating_duration_since(e).as_micros() as u64);
                record::of(&rec, ws.bucket_ns).opened(shared.offset_ns(now), reconnect);
                shared.ws[0].fetch_add(1, Ordering::SeqCst);
                let mut session = Session {
                    shared: &shared,
                    ws: &ws,
                    rec: &rec,
                    pending: VecDeque::new(),
                    next_seq,
                    payload: vec![0; ws.options.message_bytes],
                };
                let end = hold(stream, &mut session).await;
                next_seq = session.next_seq;
                let now = Instant::now();
                let t = shared.offset_ns(now);
                match end {
                    End::RunOver => break,
                    End::Closed(code) => record::of(&rec, ws.bucket_ns).closed(t, code),
                    End::Cut => record::of(&rec, ws.bucket_ns).count(t, Col::Cut, 1),
                }
                shared.ws[1].fetch_add(1, Ordering::SeqCst);
                ended_at = Some(now);
                if !ws.options.reconnect_delay.is_zero()
                    && !pause(&shared, ws.options.reconnect_delay).await
                {
                    break;
                }
            }
        }
    }
}

/// Holds an open connection: messages out every interval, echoes in, until
/// the connection or the run ends.
async fn hold<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: WebSocketStream<S>,
    s: &mut Session<'_>,
) -> End {
    let mut tick = tokio::time::interval(s.ws.options.message_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = s.shared.deadline().unwrap_or_else(|| Instant::now() + FAR);
    let shared = s.shared;
    let run_over = shared.sleep_until(deadline);
    tokio::pin!(run_over);
    let mut out = Outgoing::default();
    // A tick came while the previous message was being written.
    let mut due = false;
    loop {
        tokio::select! {
            _ = &mut run_over => break,
            _ = tick.tick() => {
                let now = Instant::now();
                s.expire(now);
                if over(s.shared) {
                    break;
                }
                if out.busy {
                    due = true;
                } else {
                    s.send(&mut out, now);
                }
            }
            io = io(&mut stream, &mut out) => match io {
                Io::Written(Ok(())) => {
                    if std::mem::take(&mut due) {
                        let now = Instant::now();
                        s.expire(now);
                        if over(s.shared) {
                            break;
                        }
                        s.send(&mut out, now);
                    }
                }
                Io::Written(Err(_)) => {
                    let end = after_error(&mut stream, s).await;
                    s.lose_pending(Instant::now());
                    return end;
                }
                Io::Read(msg) => {
                    if let Some(end) = received(msg, s) {
                        s.lose_pending(Instant::now());
                        finish_close(&mut stream).await;
                        return end;
                    }
                }
            }
        }
    }
    // The run is over: wait for the outstanding echoes (a message still
    // being written goes on being written), then close.
    let run_ended = Instant::now();
    let until = s.pending.back().map_or_else(Instant::now, |(_, sent)| {
        *sent + s.ws.options.message_timeout
    });
    while !s.pending.is_empty() {
        let Ok(io) = tokio::time::timeout_at(until.into(), io(&mut stream, &mut out)).await else {
            break;
        };
        let end = match io {
            Io::Written(Ok(())) => continue,
            Io::Written(Err(_)) => after_error(&mut stream, s).await,
            Io::Read(msg) => match received(msg, s) {
                None => continue,
                Some(end) => {
                    finish_close(&mut stream).await;
                    end
                }
            },
        };
        s.lose_pending(Instant::now());
        return end;
    }
    // Their timeouts have passed (or the server went silent): late.
    let left = s.pending.len() as u64;
    s.pending.clear();
    s.count(Instant::now(), Col::Late, left);
    record::of(s.rec, s.ws.bucket_ns).open_at_end(s.t(run_ended));
    if out.busy {
        // Part of a message is written: no close frame can follow it.
        return End::RunOver;
    }
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "run over".into(),
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, stream.close(Some(bye))).await;
    finish_close(&mut stream).await;
    End::RunOver
}

/// Settles a received item: `Some(end)` when it ends the connection.
fn received(msg: Option<Result<Message, WsError>>, s: &mut Session<'_>) -> Option<End> {
    match msg {
        Some(Ok(Message::Binary(b))) => s.echo(&b),
        Some(Ok(Message::Text(t))) => s.echo(t.as_bytes()),
        Some(Ok(Message::Close(frame))) => {
            return Some(End::Closed(frame.map_or(NO_STATUS, |f| u16::from(f.code))));
        }
        Some(Ok(_)) => {}
        Some(Err(_)) | None => return Some(End::Cut),
    }
    None
}

/// After a failed send: a close frame already read makes it a clean close.
async fn after_error<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut WebSocketStream<S>,
    s: &mut Session<'_>,
) -> End {
    loop {
        match tokio::time::timeout(CLOSE_WAIT, stream.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                return End::Closed(frame.map_or(NO_STATUS, |f| u16::from(f.code)));
            }
            Ok(Some(Ok(m))) => {
                let _ = received(Some(Ok(m)), s);
            }
            _ => return End::Cut,
        }
    }
}

/// Lets tungstenite answer a close and see the end of the stream (bounded).
async fn finish_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut WebSocketStream<S>) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}
