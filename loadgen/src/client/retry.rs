//! What a careful client does with a retryable failure
//! ([`RetryPolicy::Safe`], [`RetryPolicy::Both`]): it opens a new
//! connection and sends the same request once more, as Go's `net/http` and
//! browsers do when a reused keep-alive connection fails before any byte of
//! the response (see [`reloadbench_model::outcome::is_retryable`]).
//!
//! The retry is never retried again: it runs on a new connection, where a
//! failure is not retryable.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::time::Instant;

use reloadbench_model::load::RetryPolicy;
use reloadbench_model::outcome::FailureClass;

use super::Scratch;
use super::Wire;
use super::conn::Conn;
use super::reader::{Asked, Failed};
use super::response::Response;
use super::{ClientCtx, exchange_timed};
use crate::record::Recorder;
use crate::run::Shared;

/// Whether the first attempt's failure is retried under `policy`: the
/// request is idempotent, went out on a reused connection and got no byte
/// of response.
pub(crate) fn wanted(
    policy: RetryPolicy,
    idempotent: bool,
    reused: bool,
    class: FailureClass,
) -> bool {
    policy.retries() && idempotent && reused && class.before_response()
}

/// The second attempt: its connection (when the connect succeeded), when it
/// connected, and its result.
pub(crate) struct Retried<C> {
    /// The new connection, `None` when the connect (or TLS handshake) failed.
    pub(crate) stream: Option<C>,
    /// When the new connection was established (or the connect gave up).
    pub(crate) connected: Instant,
    /// The exchange's result, or the connect's failure.
    pub(crate) result: Result<Response, Failed>,
}

/// Connects anew and runs the same exchange once more. The new connection
/// (and its TLS handshake, which may fail: a failure of the retry) is
/// recorded in `rec` as any other.
pub(crate) async fn once<C: Conn>(
    ctx: &ClientCtx,
    source: Option<Ipv4Addr>,
    request: Wire<'_>,
    scratch: &Scratch,
    asked: Asked,
    shared: &Shared,
    rec: &RefCell<Recorder>,
) -> Retried<C> {
    match C::open(ctx, source, shared, rec).await {
        Err(class) => Retried {
            stream: None,
            connected: Instant::now(),
            result: Err(Failed { class, bytes: 0 }),
        },
        Ok(opened) => {
            let mut stream = opened.conn;
            let result = exchange_timed(ctx, &mut stream, request, scratch, asked).await;
            Retried {
                stream: Some(stream),
                connected: opened.at,
                result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retryable_failures_under_a_retrying_policy() {
        let c = FailureClass::Closed;
        assert!(wanted(RetryPolicy::Safe, true, true, c));
        assert!(wanted(RetryPolicy::Both, true, true, FailureClass::Reset));
        assert!(
            !wanted(RetryPolicy::None, true, true, c),
            "never by default"
        );
        assert!(!wanted(RetryPolicy::Safe, false, true, c), "not a POST");
        assert!(
            !wanted(RetryPolicy::Safe, true, false, c),
            "not a new connection"
        );
        assert!(!wanted(
            RetryPolicy::Safe,
            true,
            true,
            FailureClass::Truncated
        ));
        assert!(!wanted(
            RetryPolicy::Safe,
            true,
            true,
            FailureClass::Timeout
        ));
    }
}
