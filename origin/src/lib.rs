//! A fast HTTP/1.1 and HTTP/2 (h2c) origin server for benchmarks.
//!
//! It answers every request, on any path and of any method, with the same body of a
//! fixed size (32,987 bytes by default, the page of the original HAProxy reload
//! experiment), with `Content-Length` and keep-alive, over HTTP/1.1 or, for a
//! client that opens with the HTTP/2 preface (h2c with prior knowledge), over
//! HTTP/2 on the same port; a request's own body (POST,
//! PUT, ...) is read whole before the answer. An optional delay
//! is applied before each response. It is meant never to be the bottleneck of
//! a measurement: the body is built once and shared, and connections are
//! served on a multi-threaded runtime.
//!
//! [`Origin`] is the in-process server (tests bind it on port 0); [`run`] is the
//! `reloadbench origin` subcommand, which prints one
//! [`reloadbench_model::event::Event`] `ready` line on stdout when it accepts
//! connections.
//!
//! The origin also keeps a book of what it received and answered (totals, answers per
//! millisecond, answers per method, request body bytes read, the `x-reloadbench-id` of
//! every answered request: [`Origin::ledger`]);
//! the WebSockets of `/ws` and the streamed responses of `/stream` are counted in its
//! `ws` and `streams` parts; `reloadbench origin --ledger PATH` writes it to PATH as JSON
//! ([`reloadbench_model::ledger::OriginLedger`]) when it stops on SIGTERM or SIGINT. An
//! origin killed before that leaves no file, so a missing count is never read as 0.

mod book;
mod cli;
mod long_book;
mod server;

pub use cli::{OriginArgs, run};
pub use server::{
    BACKLOG, DEFAULT_BODY_BYTES, LongOptions, Origin, OriginConfig, OriginError, WS_CLOSE_LIMIT,
};

/// The largest body the origin serves (1 GiB): the body is built in memory
/// once, so a larger one would fail to start rather than serve. Enforced by
/// [`check_body_bytes`], which the `--body-bytes` flag, [`Origin::bind`] and
/// reloadbench's scenario validation call.
pub const MAX_BODY_BYTES: u64 = 1 << 30;

/// A body size over [`MAX_BODY_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be at most {MAX_BODY_BYTES} (1 GiB), found {0}")]
pub struct BodyTooLarge(pub u64);

/// `n` as a body size, if the origin serves bodies that large.
pub fn check_body_bytes(n: u64) -> Result<usize, BodyTooLarge> {
    if n > MAX_BODY_BYTES {
        return Err(BodyTooLarge(n));
    }
    usize::try_from(n).map_err(|_| BodyTooLarge(n))
}
