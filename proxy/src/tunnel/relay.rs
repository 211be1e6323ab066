//! The byte relay of one tunnel, both ways at once, under the idle bound and the drain
//! policy (see the module docs of [`crate::tunnel`]).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::Tunnels;
use super::frames::{CLOSE_GOING_AWAY, Frames};
use crate::config::TunnelPolicy;
use crate::serve::Stage;
use reloadbench_http1::UpgradeKind;

/// Read buffer of each direction.
const BUF: usize = 16 * 1024;

/// What a tunnel needs of its process.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) tunnels: &'a Tunnels,
    /// The process's stage (serving, draining): `close` acts on the drain's start.
    pub(crate) stage: watch::Receiver<Stage>,
    pub(crate) policy: TunnelPolicy,
    /// `timeouts.body`: no byte either way for this long closes the tunnel.
    pub(crate) idle: Duration,
    /// `drain.linger`: how long the client's answer to a close frame is read.
    pub(crate) linger: Duration,
}

/// How a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Both sides ended their streams.
    Closed,
    /// The proxy ended it with a close frame 1001.
    GoingAway,
    /// No byte moved for the idle bound.
    Idle,
    /// A read or write failed (a reset, a stalled write).
    Broken,
    /// The proxy was to end it with a close frame 1001 but could not write that frame
    /// within `drain.linger` (a client that does not read, an origin frame that does not
    /// end): dropped without one.
    Cut,
}

/// How the origin→client direction ended.
enum Down {
    /// The origin ended its stream; passed on to the client.
    Eof,
    /// The close frame 1001 was written to the client.
    GoingAway,
}

/// When a byte last moved, in milliseconds since the tunnel started.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Relays between `client` and `origin` until the tunnel ends; `early` are client bytes
/// that came with the request head, sent to the origin first; `greeting` are origin
/// bytes that came with its `101`, sent to the client first (and followed as frames,
/// as every byte in that direction).
pub(crate) async fn run<C>(
    client: &mut C,
    early: &[u8],
    mut origin: TcpStream,
    greeting: &[u8],
    kind: UpgradeKind,
    ctx: Context<'_>,
) -> End
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let guard = ctx.tunnels.guard();
    // Only a close asked from now on ends this tunnel (or one latched while draining).
    let since = ctx.tunnels.closing().borrow().asked;
    let activity = Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
    };
    if !early.is_empty() && write_all(&mut origin, early, ctx.idle).await.is_err() {
        guard.ended(false);
        return End::Broken;
    }
    let polite = polite_close(kind, ctx.policy, ctx.stage.clone(), ctx.tunnels, since);
    // A close frame not written within `drain.linger` of the close being asked: cut.
    let cutoff = async {
        polite_close(kind, ctx.policy, ctx.stage.clone(), ctx.tunnels, since).await;
        tokio::time::sleep(ctx.linger).await;
    };
    let end = {
        let (client_read, client_write) = tokio::io::split(&mut *client);
        let (origin_read, origin_write) = origin.split();
        let up = copy(client_read, origin_write, &activity, ctx.idle);
        let down = copy_down(
            origin_read,
            client_write,
            greeting,
            &activity,
            ctx.idle,
            polite,
            kind == UpgradeKind::WebSocket,
        );
        tokio::pin!(up, down, cutoff);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let idle_at = activity.last() + ctx.idle;
            tokio::select! {
                r = &mut up, if !up_done => match r {
                    Ok(()) => up_done = true,
                    Err(_) => break End::Broken,
                },
                r = &mut down, if !down_done => match r {
                    Ok(Down::Eof) => down_done = true,
                    Ok(Down::GoingAway) => break End::GoingAway,
                    Err(_) => break End::Broken,
                },
                () = &mut cutoff => break End::Cut,
                () = tokio::time::sleep_until(idle_at.into()) => {
                    if activity.last() + ctx.idle <= Instant::now() {
                        break End::Idle;
                    }
                }
            }
            if up_done && down_done {
                break End::Closed;
            }
        }
    };
    if end == End::GoingAway {
        // The origin connection closes without a close frame; the client's answer to
        // ours (and anything it sent meanwhile) is read and dropped, so that the close
        // resets nothing.
        drop(origin);
        linger(client, ctx.linger).await;
    }
    if end == End::Cut {
        // Dropped without `ended`: counted cut.
        drop(guard);
    } else {
        guard.ended(end == End::GoingAway);
    }
    end
}

/// Resolves when a WebSocket tunnel must be ended politely: at the drain's start with
/// the `close` policy, or when the process is told to close its tunnels after the
/// tunnel started (`since`: [`super::CloseAll::asked`] then), or before it while
/// draining. Never for other protocols.
async fn polite_close(
    kind: UpgradeKind,
    policy: TunnelPolicy,
    mut stage: watch::Receiver<Stage>,
    tunnels: &Tunnels,
    since: u64,
) {
    if kind != UpgradeKind::WebSocket {
        return std::future::pending().await;
    }
    let mut all = tunnels.closing();
    let drain = async {
        if policy == TunnelPolicy::Close {
            // The sender lives as long as the server: an error means it is gone, and
            // then nothing drains.
            if stage.wait_for(|s| *s != Stage::Serving).await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = drain => {}
        told = async { all.wait_for(|c| c.closes(since)).await.is_ok() } => {
            if !told {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Copies client→origin until the client ends its stream, then passes the end on.
async fn copy<R, W>(mut from: R, mut to: W, activity: &Activity, idle: Duration) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = from.read(&mut buf).await?;
        activity.touch();
        if n == 0 {
            let _ = tokio::time::timeout(idle, to.shutdown()).await;
            return Ok(());
        }
        write_all(&mut to, buf.get(..n).unwrap_or_default(), idle).await?;
        activity.touch();
    }
}

/// Copies origin→client (`greeting` first: origin bytes read before the relay started)
/// until the origin ends its stream or `polite` asks for the close frame (WebSockets
/// only: `websocket`), written at the next frame boundary.
async fn copy_down<R, W>(
    mut from: R,
    mut to: W,
    greeting: &[u8],
    activity: &Activity,
    idle: Duration,
    polite: impl Future<Output = ()>,
    websocket: bool,
) -> io::Result<Down>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    let mut frames = Frames::default();
    let mut closing = false;
    let mut first = Some(greeting).filter(|g| !g.is_empty());
    tokio::pin!(polite);
    loop {
        let data = if let Some(g) = first.take() {
            g
        } else {
            let n = tokio::select! {
                biased;
                () = &mut polite, if websocket && !closing => {
                    closing = true;
                    if frames.at_boundary() {
                        write_all(&mut to, &CLOSE_GOING_AWAY, idle).await?;
                        return Ok(Down::GoingAway);
                    }
                    continue;
                }
                r = from.read(&mut buf) => r?,
            };
            activity.touch();
            if n == 0 {
                let _ = tokio::time::timeout(idle, to.shutdown()).await;
                return Ok(Down::Eof);
            }
            buf.get(..n).unwrap_or_default()
        };
        let relayed = if closing {
            data.get(..frames.until_boundary(data)).unwrap_or_default()
        } else {
            if websocket {
                frames.feed(data);
            }
            data
        };
        write_all(&mut to, relayed, idle).await?;
        activity.touch();
        if closing && frames.at_boundary() {
            write_all(&mut to, &CLOSE_GOING_AWAY, idle).await?;
            return Ok(Down::GoingAway);
        }
    }
}

/// Writes all of `data`, failing with `TimedOut` when the peer takes nothing for `idle`.
async fn write_all<W: AsyncWrite + Unpin>(
    to: &mut W,
    data: &[u8],
    idle: Duration,
) -> io::Result<()> {
    match tokio::time::timeout(idle, to.write_all(data)).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Shuts the client's sending side down, then reads and drops what it sends until it
/// closes or `max` passes (the shutdown included).
async fn linger<C: AsyncRead + AsyncWrite + Unpin>(client: &mut C, max: Duration) {
    let until = tokio::time::Instant::now() + max;
    let _ = tokio::time::timeout_at(until, client.shutdown()).await;
    let mut scratch = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, client.read(&mut scratch)).await {
        if n == 0 {
            break;
        }
    }
}
