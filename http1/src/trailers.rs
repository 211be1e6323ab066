//! The trailer section of a chunked body (RFC 9112 7.1.2), checked like a head and
//! rewritten for the next hop.
//!
//! Policy: the section gets the syntax checks of a head's field lines (no obs-fold, no
//! line that is not `name: value`) and its limits ([`MAX_TRAILERS`] bytes, at most
//! [`MAX_HEADERS`] fields). A well-formed section is forwarded without the fields that
//! must not be in a trailer or apply to one hop only: hop-by-hop fields, those named by
//! a `Connection` field of the section or of the message's head (RFC 9110 7.6.1), and the framing and routing fields `Content-Length`, `Host`,
//! `Transfer-Encoding` and `Trailer` (RFC 9110 6.5.1). A malformed or too large section
//! is an error: the whole message is refused, nothing of the section is forwarded.

use crate::chunked::{At, ChunkError};
use crate::headers::{self, ConnectionNames, ConnectionTokens};
use crate::{MAX_HEADERS, MAX_TRAILERS};

/// Fields never forwarded in a trailer section, besides the hop-by-hop ones.
const NOT_IN_TRAILERS: [&str; 2] = ["content-length", "host"];

/// Checks the trailer `section` (field lines, then the CRLF that ends the body) and
/// appends what is forwarded of it to `out`: the allowed field lines and the final CRLF.
/// `head_named` are the fields the message head's `Connection` named.
pub fn forward_trailers(
    section: &[u8],
    head_named: &ConnectionNames,
    out: &mut Vec<u8>,
) -> Result<(), ChunkError> {
    if section.len() > MAX_TRAILERS {
        return Err(ChunkError::TrailersTooLarge {
            at: At::Trailers(MAX_TRAILERS),
        });
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let fields = match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((len, fields))) if len == section.len() => fields,
        Ok(httparse::Status::Complete((len, _))) => {
            return Err(ChunkError::Malformed {
                what: "bytes after the end of the trailer section",
                at: At::Trailers(len),
            });
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ChunkError::TrailersTooLarge { at: At::Unknown });
        }
        Ok(httparse::Status::Partial) => {
            return Err(ChunkError::Malformed {
                what: "trailer section without its final CRLF",
                at: At::Trailers(section.len()),
            });
        }
        Err(e) => {
            return Err(ChunkError::Malformed {
                what: trailer_error(e),
                at: At::Unknown,
            });
        }
    };
    let tokens = ConnectionTokens::of(fields);
    for h in fields.iter() {
        let name = h.name;
        if headers::is_connection_specific(name, &tokens)
            || head_named.names(name)
            || NOT_IN_TRAILERS.iter().any(|n| n.eq_ignore_ascii_case(name))
        {
            continue;
        }
        headers::push(out, name.as_bytes(), h.value);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// What httparse found wrong in a trailer section.
fn trailer_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "malformed trailer field name",
        httparse::Error::HeaderValue => "malformed trailer field value",
        httparse::Error::NewLine => "malformed line ending in the trailer section",
        _ => "malformed trailer section",
    }
}
