//! What a parser accepts beyond RFC 9112's strict grammar.
//!
//! The strict rules are the default: refproxy sits between clients and origins, where a
//! leniency one side has and the other lacks is a way to smuggle a request. loadgen only
//! reads what a server sends it and opts into [`LineEndings::CrlfOrLf`].

/// How lines end in the parts of a message the crate scans byte by byte (the chunked
/// coding: chunk lines, the line ending chunk data, trailer lines, the final line).
///
/// Head lines are parsed by httparse, which takes a bare LF in either mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineEndings {
    /// CRLF only; a bare LF is an error (refproxy).
    #[default]
    Crlf,
    /// CRLF or a bare LF (RFC 9112 2.2: a recipient MAY take a single LF as a line
    /// terminator); for a client that only reads (loadgen).
    CrlfOrLf,
}
