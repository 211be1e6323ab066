//! How a response body is delimited and whether its connection can carry another
//! exchange (RFC 9112 6.3, 9.3): the rules refproxy's and loadgen's response parsers share.

use crate::Framing;
use crate::headers::Codings;

/// The framing of a response body to a request that was HEAD when `head_request`, from
/// the folded `Transfer-Encoding` `codings` and `Content-Length` `length` of its head.
///
/// No body for HEAD, 1xx, 204 and 304; chunked when `chunked` is the last coding (a
/// `Content-Length` beside it is ignored); until the close for any other coding or
/// without either header; else the length.
pub(crate) fn response_body(
    status: u16,
    head_request: bool,
    codings: Option<Codings>,
    length: Option<u64>,
) -> Framing {
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    match (codings, length) {
        _ if no_body => Framing::None,
        (Some(c), _) if c.chunked_last => Framing::Chunked,
        (Some(_), _) => Framing::UntilClose,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::UntilClose,
    }
}

/// Whether the connection can carry another exchange after this response's `body`:
/// the head keeps it alive, the body does not end with the close, and the head did not
/// carry both framings (a message with both may be an attack on the next hop: the
/// connection is used once only).
pub(crate) fn reusable(
    keep_alive: bool,
    body: Framing,
    codings: Option<Codings>,
    length: Option<u64>,
) -> bool {
    keep_alive && body != Framing::UntilClose && !(codings.is_some() && length.is_some())
}
