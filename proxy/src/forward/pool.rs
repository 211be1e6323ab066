//! Idle keep-alive connections to one origin, kept by one serving thread.
//!
//! Connections are reused most-recently-idle first. One that has been idle longer than
//! the idle timeout, or on which the origin has closed, sent data or reported an error
//! while it was idle, is dropped instead of reused.

use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// An idle connection and when it became idle.
#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// The idle connections to one origin.
#[derive(Debug)]
pub(super) struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub(super) fn new(max_idle: usize, idle_timeout: Duration) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// The most recently idle connection that is still usable.
    pub(super) fn take(&self) -> Option<TcpStream> {
        let now = Instant::now();
        loop {
            let idle = self.lock().pop()?;
            if self.usable(&idle, now) {
                return Some(idle.stream);
            }
        }
    }

    /// Keeps `stream` for reuse, or drops it when the pool is full. Expired connections
    /// are released by [`Pool::sweep`].
    pub(super) fn put(&self, stream: TcpStream) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }

    /// Releases connections idle longer than the idle timeout, and those on which the
    /// origin closed, sent data or reported an error while they were idle.
    pub(super) fn sweep(&self) {
        let now = Instant::now();
        self.lock().retain(|i| self.usable(i, now));
    }

    /// Whether an idle connection may still carry a request at `now`.
    fn usable(&self, idle: &Idle, now: Instant) -> bool {
        now.duration_since(idle.since) < self.idle_timeout && still_open(&idle.stream)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        super::lock(&self.idle)
    }
}

/// Whether an idle connection can carry a request: nothing (no close, no data, no
/// error) has arrived on it since its last response. Costs a system call only when the
/// socket was reported readable.
fn still_open(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }
}
