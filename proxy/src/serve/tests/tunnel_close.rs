//! Tunnels told to close (SIGUSR1's `Server::close_tunnels`): the close frame 1001 at
//! the end of the origin's frame even when that frame started in the bytes that came
//! with the `101`, only the tunnels open at the signal closed in a process still
//! serving, and a tunnel whose close frame cannot be written cut after `drain.linger`.
//! A raw origin written here records what it saw.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{Client, Server, head_end, limit, ok, proxy};
use crate::tunnel::TunnelReport;
use crate::tunnel::frames::CLOSE_GOING_AWAY;

/// What a tunnel origin does after its `101`.
#[derive(Clone)]
pub(super) enum Then {
    /// Writes `greeting` with the `101` (one write), then echoes every byte it reads.
    Echo { greeting: Vec<u8> },
    /// Reports [`Seen::Running`], then sends one frame that never ends for as long as
    /// the proxy takes its bytes.
    Flood,
}

/// What the origin saw.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// A flood tunnel is running (its 101 went out).
    Running,
    /// A tunnel connection ended (EOF or error either way).
    Ended,
}

/// An origin answering `Upgrade: websocket` requests with `101` and [`Then`], and other
/// requests with `200 plain` (then closing).
pub(super) struct TunnelOrigin {
    pub(super) addr: SocketAddr,
    /// Upgrade requests received.
    pub(super) upgrades: Arc<AtomicU64>,
    /// Plain requests received.
    pub(super) plain: Arc<AtomicU64>,
    pub(super) seen: mpsc::UnboundedReceiver<Seen>,
}

impl TunnelOrigin {
    pub(super) async fn start(then: Then) -> TunnelOrigin {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let upgrades = Arc::new(AtomicU64::new(0));
        let plain = Arc::new(AtomicU64::new(0));
        let (tx, seen) = mpsc::unbounded_channel();
        let (u, p) = (upgrades.clone(), plain.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (then, tx, u, p) = (then.clone(), tx.clone(), u.clone(), p.clone());
                tokio::spawn(serve(s, then, tx, u, p));
            }
        });
        TunnelOrigin {
            addr,
            upgrades,
            plain,
            seen,
        }
    }

    /// The next thing the origin saw, within `within`.
    pub(super) async fn next(&mut self, within: Duration) -> Option<Seen> {
        timeout(within, self.seen.recv()).await.ok().flatten()
    }
}

async fn serve(
    mut s: TcpStream,
    then: Then,
    tx: mpsc::UnboundedSender<Seen>,
    upgrades: Arc<AtomicU64>,
    plain: Arc<AtomicU64>,
) {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if !super::fill_from(&mut s, &mut buf).await {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    if !head.contains("upgrade: websocket") {
        plain.fetch_add(1, Ordering::SeqCst);
        let mut resp = ok(b"plain");
        resp.splice(17..17, b"Connection: close\r\n".iter().copied());
        let _ = s.write_all(&resp).await;
        return;
    }
    upgrades.fetch_add(1, Ordering::SeqCst);
    let mut out =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
            .to_vec();
    let mut rest = buf.split_off(end);
    match then {
        Then::Echo { greeting } => {
            out.extend_from_slice(&greeting);
            out.append(&mut rest);
            if s.write_all(&out).await.is_ok() {
                let mut chunk = [0u8; 16384];
                while let Ok(n) = s.read(&mut chunk).await {
                    if n == 0 || s.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        Then::Flood => {
            if s.write_all(&out).await.is_ok() {
                let _ = tx.send(Seen::Running);
                // A binary frame of 2^40 bytes: it never ends here.
                let mut frame = vec![0x82, 127];
                frame.extend_from_slice(&(1u64 << 40).to_be_bytes());
                let chunk = vec![b'f'; 65536];
                let mut next = frame;
                while s.write_all(&next).await.is_ok() {
                    next.clone_from(&chunk);
                }
            }
        }
    }
    let _ = tx.send(Seen::Ended);
}

/// A WebSocket upgrade request.
pub(super) const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Sends the upgrade request and reads the `101` head; returns the bytes read after it.
pub(super) async fn upgrade(c: &mut Client) -> Vec<u8> {
    c.send(UPGRADE).await;
    let mut buf = Vec::new();
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        let more = timeout(limit(), super::fill_from(&mut c.stream, &mut buf)).await;
        assert!(more.unwrap(), "EOF before the 101: {buf:?}");
    };
    assert!(buf.starts_with(b"HTTP/1.1 101 "), "{buf:?}");
    buf.split_off(end)
}

/// Reads exactly `n` more bytes after `have`.
async fn read_n(c: &mut Client, mut have: Vec<u8>, n: usize) -> Vec<u8> {
    while have.len() < n {
        let more = timeout(limit(), super::fill_from(&mut c.stream, &mut have)).await;
        assert!(more.unwrap(), "EOF after {have:?}");
    }
    have
}

/// An unmasked text frame of one byte (the origin echoes client bytes as they are: what
/// comes back down must be whole frames).
fn text(b: u8) -> [u8; 3] {
    [0x81, 1, b]
}

/// Sends `b` through the tunnel and returns as many bytes back (the origin echoes).
async fn round_trip(c: &mut Client, b: &[u8]) -> Vec<u8> {
    c.send(b).await;
    read_n(c, Vec::new(), b.len()).await
}

async fn read_to_end(c: &mut Client) -> Vec<u8> {
    let mut rest = Vec::new();
    timeout(limit(), c.stream.read_to_end(&mut rest))
        .await
        .expect("the proxy did not close the tunnel")
        .unwrap();
    rest
}

/// Waits until the server's tunnel counts satisfy `done` (they change when a tunnel
/// task ends, which nothing outside the server can observe).
pub(super) async fn tunnels_until(server: &Server, done: impl Fn(&TunnelReport) -> bool) {
    let waited = timeout(limit(), async {
        while !done(&server.tunnels()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{:?}", server.tunnels());
}

/// Waits until the server has no open tunnel.
pub(super) async fn no_tunnel_open(server: &Server) {
    tunnels_until(server, |t| t.open == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_close_frame_waits_for_the_end_of_a_frame_that_came_with_the_101() {
    // The origin's 101 comes with the header of a 1000-byte binary frame and 10 bytes
    // of its payload, in one write.
    let mut greeting = vec![0x82, 126, 0x03, 0xE8];
    greeting.extend_from_slice(&[b'g'; 10]);
    let o = TunnelOrigin::start(Then::Echo {
        greeting: greeting.clone(),
    })
    .await;
    let (server, addr) = proxy(vec![o.addr], |c| {
        c.drain.linger = Duration::from_millis(300);
    });
    let mut c = Client::connect(addr).await;
    let after_101 = upgrade(&mut c).await;
    assert_eq!(read_n(&mut c, after_101, 14).await, greeting);
    // Told to close while the origin's frame is 990 bytes short.
    server.close_tunnels();
    // The rest of the frame, sent up and echoed down by the origin.
    c.send(&[b'p'; 990]).await;
    let rest = read_to_end(&mut c).await;
    let mut expected = vec![b'p'; 990];
    expected.extend_from_slice(&CLOSE_GOING_AWAY);
    assert_eq!(rest.len(), expected.len(), "{rest:?}");
    assert_eq!(rest, expected);
    no_tunnel_open(&server).await;
    let t = server.tunnels();
    assert_eq!((t.opened, t.going_away, t.cut), (1, 1, 0), "{t:?}");
    assert_eq!(o.upgrades.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_while_serving_ends_only_the_tunnels_open_then() {
    let o = TunnelOrigin::start(Then::Echo {
        greeting: Vec::new(),
    })
    .await;
    let (server, addr) = proxy(vec![o.addr], |c| {
        c.drain.linger = Duration::from_millis(300);
    });
    let mut before = Client::connect(addr).await;
    assert!(upgrade(&mut before).await.is_empty());
    assert_eq!(round_trip(&mut before, &text(b'a')).await, text(b'a'));
    server.close_tunnels();
    assert_eq!(read_to_end(&mut before).await, CLOSE_GOING_AWAY);
    drop(before);
    tunnels_until(&server, |t| t.going_away == 1).await;
    // Tunnels opened after the signal go on: the process still serves WebSockets.
    for i in 0..3u8 {
        let mut after = Client::connect(addr).await;
        assert!(upgrade(&mut after).await.is_empty());
        for m in [b'b' + i, b'x'] {
            assert_eq!(round_trip(&mut after, &text(m)).await, text(m));
        }
    }
    no_tunnel_open(&server).await;
    let t = server.tunnels();
    assert_eq!((t.opened, t.going_away, t.cut), (4, 1, 0), "{t:?}");
    assert_eq!(o.upgrades.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_whose_close_frame_cannot_be_written_is_cut_after_the_linger() {
    let mut o = TunnelOrigin::start(Then::Flood).await;
    let linger = Duration::from_millis(300);
    let (server, addr) = proxy(vec![o.addr], |c| {
        c.drain.linger = linger;
        // Far beyond the waits below: the idle bound is not what ends the tunnel.
        c.timeouts.body = Duration::from_secs(600);
    });
    let mut c = Client::connect(addr).await;
    let after_101 = upgrade(&mut c).await;
    assert_eq!(o.next(limit()).await, Some(Seen::Running));
    // The header of the origin's endless frame and some of its payload went through the
    // tunnel; the client never reads again.
    let got = read_n(&mut c, after_101, 11).await;
    assert_eq!(got[..2], [0x82, 127]);
    server.close_tunnels();
    let asked = std::time::Instant::now();
    // The close frame can never be written: the tunnel is cut, the origin sees its end.
    assert_eq!(o.next(limit()).await, Some(Seen::Ended));
    assert!(asked.elapsed() >= linger, "{:?}", asked.elapsed());
    no_tunnel_open(&server).await;
    let t = server.tunnels();
    assert_eq!((t.opened, t.going_away, t.cut), (1, 0, 1), "{t:?}");
    // The client's connection is gone too (reset: its unread bytes were dropped).
    let mut scratch = vec![0u8; 1 << 20];
    let ended = timeout(limit(), async {
        loop {
            match c.stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the client connection is still open");
    assert_eq!(o.upgrades.load(Ordering::SeqCst), 1);
}
