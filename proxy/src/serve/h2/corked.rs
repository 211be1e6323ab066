//! The client connection under an h2 server connection, its writes gathered into one
//! write per turn of the connection's task.
//!
//! h2 writes each DATA frame of 256 bytes or more with a write of its own, and flushes
//! before it takes the next frame: a 32 KiB response is three or four writes, each a
//! system call and, on loopback, a wake-up of the reader. [`Corked`] takes what h2
//! writes into one buffer and answers its flushes at once; the task that polls the
//! connection calls [`Uncork::uncork`] after each poll, which writes the buffer
//! out (and flushes what is under it). So every frame h2 produced in one poll goes out
//! in one write.
//!
//! The buffer is taken from a few spare ones kept per thread when h2 first writes, and
//! given back once written out: an idle connection holds none, and the bytes are copied
//! into memory that the thread used last (in cache) rather than into a buffer of the
//! connection's own.
//!
//! The buffer is bounded by `cap`: a write into a full buffer first writes it out, and
//! waits (h2 waits with it) while the socket takes nothing. A write error met by
//! `uncork` is kept and returned by the next read, write or flush h2 makes (the
//! connection's task is woken for it). `poll_shutdown` writes the buffer out before
//! shutting the connection down.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many bytes the buffer gathers before a write must wait for the socket: the
/// responses of several streams (10 streams of 32 KiB: 2 writes, where 64 KiB made 6
/// and cost about 3 % more CPU per request).
pub(crate) const GATHER_BYTES: usize = 256 * 1024;

/// How many emptied buffers a thread keeps for the next connection that writes.
const SPARE_BUFFERS: usize = 4;

thread_local! {
    /// Emptied buffers, the last one used first.
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer of at least `cap` bytes: a spare one if there is one.
fn take_buffer(cap: usize) -> Vec<u8> {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .filter(|b| b.capacity() >= cap)
        .unwrap_or_else(|| Vec::with_capacity(cap))
}

/// Keeps an emptied buffer for the next connection, if the thread has few.
fn give_back(mut buf: Vec<u8>) {
    buf.clear();
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        if spare.len() < SPARE_BUFFERS {
            spare.push(buf);
        }
    });
}

/// What [`Corked`] and [`Uncork`] share (one task uses both: never contended).
struct State<T> {
    io: T,
    /// Bytes written by h2, not yet written to `io` (from `start` on); no buffer (no
    /// capacity) while there are none.
    buf: Vec<u8>,
    start: usize,
    cap: usize,
    /// A write error met by [`Uncork::uncork`], for h2's next call.
    failed: Option<io::Error>,
    /// Bytes written to `io` so far: the connection's progress, which the minimum send
    /// rate of its streams counts.
    written: Arc<AtomicU64>,
}

impl<T> State<T> {
    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// The error kept for h2, if any (its kind stays for the calls after it).
    fn check(&mut self) -> io::Result<()> {
        match self.failed.take() {
            Some(e) => {
                self.failed = Some(e.kind().into());
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl<T: AsyncWrite + Unpin> State<T> {
    /// Writes the buffer out, until it is empty or `io` takes no more.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.start < self.buf.len() {
            let pending = self.buf.get(self.start..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.start += n;
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        if self.buf.capacity() > 0 {
            give_back(std::mem::take(&mut self.buf));
        }
        self.start = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes the buffer out and flushes `io`.
    fn poll_uncork(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

/// The IO h2 is given: writes gathered, flushes answered at once.
pub(crate) struct Corked<T>(Arc<Mutex<State<T>>>);

/// The handle of the task polling the connection: writes out what [`Corked`] gathered.
pub(crate) struct Uncork<T>(Arc<Mutex<State<T>>>);

/// `io` with its writes gathered up to `cap` bytes, and the handle that writes them out.
pub(crate) fn cork<T>(io: T, cap: usize) -> (Corked<T>, Uncork<T>) {
    let state = Arc::new(Mutex::new(State {
        io,
        buf: Vec::new(),
        start: 0,
        cap: cap.max(1),
        failed: None,
        written: Arc::new(AtomicU64::new(0)),
    }));
    (Corked(state.clone()), Uncork(state))
}

fn lock<T>(state: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: AsyncWrite + Unpin> Uncork<T> {
    /// Writes out what was gathered and flushes the connection, as far as the socket
    /// takes it now (the task is woken when it takes more); an error is kept for h2's
    /// next call, and the task is woken so that h2 makes it.
    pub(crate) fn uncork(&self, cx: &mut Context<'_>) {
        let mut state = lock(&self.0);
        if state.failed.is_some() {
            return;
        }
        if let Poll::Ready(Err(e)) = state.poll_uncork(cx) {
            state.failed = Some(e);
            cx.waker().wake_by_ref();
        }
    }

    /// The count of bytes written to the IO so far.
    pub(crate) fn written(&self) -> Arc<AtomicU64> {
        lock(&self.0).written.clone()
    }

    /// The IO and the bytes gathered but not written yet, once h2 has let go of its
    /// [`Corked`] half (`None` while it holds it).
    pub(crate) fn into_parts(self) -> Option<(T, Vec<u8>)> {
        let state = Arc::try_unwrap(self.0).ok()?;
        let mut state = state.into_inner().unwrap_or_else(|e| e.into_inner());
        let rest = state.pending().to_vec();
        if state.buf.capacity() > 0 {
            give_back(std::mem::take(&mut state.buf));
        }
        Some((state.io, rest))
    }

    /// Whether the connection holds a buffer.
    #[cfg(test)]
    pub(crate) fn holds_buffer(&self) -> bool {
        lock(&self.0).buf.capacity() > 0
    }

    /// How many bytes are gathered and not written yet.
    #[cfg(test)]
    pub(crate) fn gathered(&self) -> usize {
        lock(&self.0).pending().len()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Corked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = lock(&self.0);
        state.check()?;
        Pin::new(&mut state.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Corked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut state = lock(&self.0);
        state.check()?;
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        if state.pending().len() >= state.cap {
            ready!(state.poll_write_out(cx))?;
        }
        if state.buf.capacity() == 0 {
            state.buf = take_buffer(state.cap);
        }
        let mut room = state.cap.saturating_sub(state.pending().len());
        let mut taken = 0;
        for b in bufs {
            let n = b.len().min(room);
            state.buf.extend_from_slice(b.get(..n).unwrap_or_default());
            taken += n;
            room -= n;
            if room == 0 {
                break;
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Answered at once: the bytes go out at the next [`Uncork::uncork`].
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.0).check()?;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = lock(&self.0);
        state.check()?;
        ready!(state.poll_uncork(cx))?;
        Pin::new(&mut state.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What the test IO did and how it behaves, as the test sets it.
    #[derive(Default)]
    struct Log {
        /// The bytes of each write call that took some.
        writes: Vec<Vec<u8>>,
        flushes: usize,
        shut: bool,
        /// At most this many bytes per write (0: no bound).
        per_write: usize,
        /// Writes are `Pending` (the waker kept) while set.
        blocked: bool,
        waker: Option<Waker>,
        /// Writes fail while set.
        broken: bool,
    }

    /// An IO written here: it records each write and flush, takes a bounded number of
    /// bytes per write, and blocks or fails as the test says; reads never complete.
    #[derive(Clone, Default)]
    struct TestIo(Arc<Mutex<Log>>);

    impl TestIo {
        fn log(&self) -> MutexGuard<'_, Log> {
            self.0.lock().unwrap()
        }

        fn written(&self) -> Vec<u8> {
            self.log().writes.concat()
        }
    }

    impl AsyncRead for TestIo {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for TestIo {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut log = self.log();
            if log.broken {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if log.blocked {
                log.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = match log.per_write {
                0 => buf.len(),
                max => buf.len().min(max),
            };
            log.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.log().flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.log().shut = true;
            Poll::Ready(Ok(()))
        }
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn context() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn write(c: &mut Corked<TestIo>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<usize> {
        Pin::new(c).poll_write(cx, bytes).map(|r| r.unwrap())
    }

    fn flush(c: &mut Corked<TestIo>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(c).poll_flush(cx)
    }

    #[test]
    fn writes_and_flushes_are_gathered_until_uncorked_then_written_at_once() {
        let io = TestIo::default();
        let (mut c, u) = cork(io.clone(), 1024);
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(write(&mut c, &mut cx, b"head"), Poll::Ready(4));
        assert!(flush(&mut c, &mut cx).is_ready());
        let parts = [io::IoSlice::new(b"-a"), io::IoSlice::new(b"-b")];
        let n = Pin::new(&mut c).poll_write_vectored(&mut cx, &parts);
        assert!(matches!(n, Poll::Ready(Ok(4))));
        assert!(flush(&mut c, &mut cx).is_ready());
        let log = io.log();
        assert_eq!((log.writes.len(), log.flushes), (0, 0));
        drop(log);
        assert_eq!(u.gathered(), 8);
        u.uncork(&mut cx);
        assert_eq!(io.log().writes, vec![b"head-a-b".to_vec()]);
        assert_eq!(io.log().flushes, 1);
        assert_eq!(u.gathered(), 0);
        // Written out: the buffer went back to the thread's spare ones.
        assert!(!u.holds_buffer());
        // Nothing gathered: uncorking writes nothing.
        u.uncork(&mut cx);
        assert_eq!(io.log().writes.len(), 1);
    }

    #[test]
    fn partial_writes_are_continued_in_order() {
        let io = TestIo::default();
        io.log().per_write = 3;
        let (mut c, u) = cork(io.clone(), 1024);
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(write(&mut c, &mut cx, b"0123456789"), Poll::Ready(10));
        u.uncork(&mut cx);
        assert_eq!(io.written(), b"0123456789");
        assert_eq!(io.log().writes.len(), 4);
        assert_eq!(u.gathered(), 0);
    }

    #[test]
    fn a_full_buffer_makes_writes_wait_for_the_socket() {
        let io = TestIo::default();
        io.log().blocked = true;
        let (mut c, u) = cork(io.clone(), 8);
        let (woken, waker) = context();
        let mut cx = Context::from_waker(&waker);
        // Only what fits is taken.
        assert_eq!(write(&mut c, &mut cx, b"abcdef"), Poll::Ready(6));
        assert_eq!(write(&mut c, &mut cx, b"ghijkl"), Poll::Ready(2));
        // Full, and the socket takes nothing: uncorking and writing wait.
        u.uncork(&mut cx);
        assert_eq!(write(&mut c, &mut cx, b"ijkl"), Poll::Pending);
        assert_eq!(u.gathered(), 8);
        assert!(u.holds_buffer());
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        // The socket takes bytes again: the waiting task is woken, the write goes on.
        io.log().blocked = false;
        io.log().waker.take().unwrap().wake();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(write(&mut c, &mut cx, b"ijkl"), Poll::Ready(4));
        u.uncork(&mut cx);
        assert_eq!(io.written(), b"abcdefghijkl");
    }

    #[test]
    fn a_write_error_met_when_uncorking_is_given_to_the_next_call_and_wakes_the_task() {
        let io = TestIo::default();
        io.log().broken = true;
        let (mut c, u) = cork(io.clone(), 64);
        let (woken, waker) = context();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(write(&mut c, &mut cx, b"frame"), Poll::Ready(5));
        u.uncork(&mut cx);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        match flush(&mut c, &mut cx) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("{other:?}"),
        }
        // Later calls fail too, reads included.
        let w = Pin::new(&mut c).poll_write(&mut cx, b"more");
        assert!(matches!(w, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset));
        let mut space = [0u8; 4];
        let mut buf = ReadBuf::new(&mut space);
        let r = Pin::new(&mut c).poll_read(&mut cx, &mut buf);
        assert!(matches!(r, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset));
    }

    #[test]
    fn shutdown_writes_out_what_was_gathered_first() {
        let io = TestIo::default();
        let (mut c, _u) = cork(io.clone(), 64);
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(write(&mut c, &mut cx, b"goaway"), Poll::Ready(6));
        assert!(matches!(
            Pin::new(&mut c).poll_shutdown(&mut cx),
            Poll::Ready(Ok(()))
        ));
        let log = io.log();
        assert_eq!((log.writes.concat(), log.shut), (b"goaway".to_vec(), true));
    }

    /// A socket end that counts the writes made on it.
    struct Counted<T>(T, Arc<AtomicUsize>);

    impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = ready!(Pin::new(&mut self.0).poll_write(cx, buf))?;
            self.1.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    /// An h2 server on a corked socket, polled as `serve` polls it: every request is
    /// answered with `body_bytes` bytes in one `send_data`.
    async fn corked_server(io: Counted<tokio::io::DuplexStream>, body_bytes: usize) {
        let (io, uncork) = cork(io, GATHER_BYTES);
        let mut handshake = std::pin::pin!(h2::server::handshake(io));
        let handshake = std::future::poll_fn(|cx| {
            let polled = handshake.as_mut().poll(cx);
            uncork.uncork(cx);
            polled
        });
        let mut conn = handshake.await.unwrap();
        let body = Bytes::from(vec![7u8; body_bytes]);
        loop {
            let accepted = std::future::poll_fn(|cx| {
                let accepted = conn.poll_accept(cx);
                uncork.uncork(cx);
                accepted
            });
            let Some(Ok((_req, mut respond))) = accepted.await else {
                return;
            };
            let mut send = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            send.send_data(body.clone(), true).unwrap();
        }
    }

    #[tokio::test]
    async fn an_h2_response_of_several_data_frames_goes_out_in_one_write() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(AtomicUsize::new(0));
        let body_bytes = 40_000; // three DATA frames of at most 16 KiB
        let task = tokio::spawn(corked_server(Counted(server, writes.clone()), body_bytes));
        let (mut send, conn) = h2::client::handshake(client).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut get = async || {
            let req = http::Request::get("http://localhost/").body(()).unwrap();
            let (resp, _) = send.send_request(req, true).unwrap();
            let mut body = resp.await.unwrap().into_body();
            let mut got = 0;
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                got += chunk.len();
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            got
        };
        // The first exchange also carries the SETTINGS and their ACKs.
        assert_eq!(get().await, body_bytes);
        let before = writes.load(Ordering::SeqCst);
        assert_eq!(get().await, body_bytes);
        assert_eq!(writes.load(Ordering::SeqCst) - before, 1);
        drop(send);
        task.abort();
    }

    #[tokio::test]
    async fn bytes_arrive_in_order_through_a_small_pipe() {
        let (a, mut b) = tokio::io::duplex(16);
        let (mut c, u) = cork(a, 8);
        let data: Vec<u8> = (0..200u8).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        });
        let expected = data.clone();
        let writer = async move {
            for part in data.chunks(7) {
                c.write_all(part).await.unwrap();
                std::future::poll_fn(|cx| {
                    u.uncork(cx);
                    Poll::Ready(())
                })
                .await;
            }
            c.shutdown().await.unwrap();
        };
        writer.await;
        assert_eq!(reader.await.unwrap(), expected);
    }
}
