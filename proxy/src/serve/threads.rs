//! The serving threads: one single-threaded tokio runtime per core, each accepting on
//! its own handle (a dup) of every listening socket and forwarding through its own
//! [`Forwarder`] (its own origin connection pool).
//!
//! The kernel spreads new connections over the threads' accept calls, unevenly; the
//! accepting thread hands a connection to the thread with the fewest open connections
//! ([`super::balance`]), where it then lives, with no work stealing between threads.
//! Everything the drain policy depends on (stage, open-connection count, running
//! accept loops) lives in the one [`Shared`] of the server, so that waits on it see
//! every thread.
//!
//! The thread count is the number of available cores, or `REFPROXY_THREADS` when that
//! environment variable holds a positive integer.

use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::runtime::Runtime;

use super::accept::{self, Running};
use super::conn::Handshake;
use super::{Identity, ServeError, Shared};
use crate::forward::Forwarder;

/// Environment variable overriding the number of serving threads.
pub(super) const THREADS_ENV: &str = "REFPROXY_THREADS";

/// Upper bound of the number of serving threads.
const MAX_THREADS: usize = 256;

/// How many serving threads to run: `REFPROXY_THREADS` when set to a positive
/// integer, else the number of available cores.
pub(super) fn thread_count() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
        .min(MAX_THREADS)
}

/// A runtime that is shut down without blocking when dropped, so that dropping it
/// is safe from any context (also from inside another runtime).
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts serving thread number `index` on `listeners` (this thread's own handles, each
/// with its TLS side if it terminates TLS).
/// The accept loops are counted in `shared.accepting` before this returns.
pub(super) fn spawn(
    index: usize,
    listeners: Vec<(TcpListener, Option<Handshake>)>,
    shared: &Arc<Shared>,
    id: Identity,
) -> Result<(), ServeError> {
    let thread_err = |source| ServeError::Thread { source };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(thread_err)?;
    let (loops, forwarder) = {
        // Registers the sockets and the origin pool with this thread's runtime.
        let _entered = rt.enter();
        let mut loops = Vec::with_capacity(listeners.len());
        for (l, tls) in listeners {
            let addr = l.local_addr();
            let t = tokio::net::TcpListener::from_std(l)
                .map_err(|source| ServeError::listener(addr, source))?;
            loops.push((t, tls, Running::new(shared.clone())));
        }
        (
            loops,
            Arc::new(Forwarder::new(
                &shared.cfg,
                id,
                &shared.origin_slots,
                shared.counters.thread(index),
            )),
        )
    };
    shared
        .balance
        .register(index, rt.handle().clone(), forwarder.clone());
    let rt = OwnedRuntime(Some(rt));
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("refproxy-serve-{index}"))
        .spawn(move || {
            if let Some(runtime) = &rt.0 {
                runtime.block_on(serve_thread(index, loops, forwarder, shared));
            }
            drop(rt);
        })
        .map_err(thread_err)?;
    Ok(())
}

/// Runs this thread's accept loops until they stop, then serves the connections
/// until the server has none left open; the origin pool is swept meanwhile.
async fn serve_thread(
    index: usize,
    loops: Vec<(tokio::net::TcpListener, Option<Handshake>, Running)>,
    forwarder: Arc<Forwarder>,
    shared: Arc<Shared>,
) {
    tokio::spawn(Forwarder::sweep_pools(Arc::downgrade(&forwarder)));
    let tasks: Vec<_> = loops
        .into_iter()
        .map(|(l, tls, running)| {
            tokio::spawn(accept::accept_loop(
                index,
                l,
                tls,
                running,
                shared.clone(),
                forwarder.clone(),
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    shared.balance.close(index);
    let mut open = shared.open.subscribe();
    // The sender lives in `shared`, which we hold: the wait cannot fail.
    let _ = open.wait_for(|n| *n == 0).await;
}
