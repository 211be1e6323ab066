//! How a request can fail, and how those classes map onto ab's counters.
//!
//! Every request has exactly one outcome: success (a 2xx response read in
//! full) or one [`FailureClass`]. Classes follow the phase of the request in
//! which it failed, so a reload's damage can be told apart: refused connects
//! mean nobody listened, resets before any byte mean a queued connection was
//! dropped, truncated responses mean an in-flight request was cut.

use serde::{Deserialize, Serialize};

/// Why a request failed. Exactly one per failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The connect was refused (`ECONNREFUSED`): nothing listened on the port.
    ConnectRefused,
    /// The connect did not complete within the timeout.
    ConnectTimeout,
    /// The connect failed for another reason on the server's side (host or network unreachable, ...).
    ConnectError,
    /// The TCP connect succeeded but the TLS handshake did not: the server
    /// sent an alert, reset or closed the connection, or did not finish the
    /// handshake within the timeout (any handshake failure but a rejected
    /// certificate).
    TlsHandshake,
    /// The TLS handshake failed because the client rejected the server's
    /// certificate (not signed by a trusted CA, wrong name, expired, ...).
    TlsCertificate,
    /// The connection was reset before any byte of the response arrived.
    Reset,
    /// The connection was closed (EOF) before any byte of the response arrived.
    Closed,
    /// The response head arrived but the body was short, broken or reset.
    Truncated,
    /// No complete response within the timeout after the request was sent.
    Timeout,
    /// Writing the request failed.
    WriteError,
    /// The response was not valid HTTP/1.x.
    BadResponse,
    /// A 5xx response (read in full).
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// A response that is neither 2xx nor 5xx (read in full).
    HttpOther,
    /// The load generator's own side failed (e.g. `EADDRNOTAVAIL`: out of
    /// ephemeral ports, or `EMFILE`). Not a failure of the server under test.
    ClientError,
    /// HTTP/2: the stream's id was above the last-stream-id of a GOAWAY the
    /// server sent, so the server never processed it (safe to retry).
    GoawayRefused,
    /// HTTP/2: the server reset the stream (RST_STREAM; its error code is
    /// counted in the report's `h2.reset_codes`).
    StreamReset,
    /// HTTP/2: the connection ended (EOF, TCP reset) while the stream was
    /// open, and no GOAWAY refused it.
    StreamLost,
    /// HTTP/2: the server broke the protocol (a frame or setting that must
    /// not be there, or not HTTP/2 at all), and the client closed the
    /// connection with a GOAWAY of its own.
    ProtocolError,
}

impl FailureClass {
    /// All classes, in report order.
    pub const ALL: [FailureClass; 18] = [
        FailureClass::ConnectRefused,
        FailureClass::ConnectTimeout,
        FailureClass::ConnectError,
        FailureClass::TlsHandshake,
        FailureClass::TlsCertificate,
        FailureClass::Reset,
        FailureClass::Closed,
        FailureClass::Truncated,
        FailureClass::Timeout,
        FailureClass::WriteError,
        FailureClass::BadResponse,
        FailureClass::Http5xx,
        FailureClass::HttpOther,
        FailureClass::ClientError,
        FailureClass::GoawayRefused,
        FailureClass::StreamReset,
        FailureClass::StreamLost,
        FailureClass::ProtocolError,
    ];

    /// Stable snake_case key, as used in JSON and scenario expectations.
    pub fn key(self) -> &'static str {
        match self {
            FailureClass::ConnectRefused => "connect_refused",
            FailureClass::ConnectTimeout => "connect_timeout",
            FailureClass::ConnectError => "connect_error",
            FailureClass::TlsHandshake => "tls_handshake",
            FailureClass::TlsCertificate => "tls_certificate",
            FailureClass::Reset => "reset",
            FailureClass::Closed => "closed",
            FailureClass::Truncated => "truncated",
            FailureClass::Timeout => "timeout",
            FailureClass::WriteError => "write_error",
            FailureClass::BadResponse => "bad_response",
            FailureClass::Http5xx => "http_5xx",
            FailureClass::HttpOther => "http_other",
            FailureClass::ClientError => "client_error",
            FailureClass::GoawayRefused => "goaway_refused",
            FailureClass::StreamReset => "stream_reset",
            FailureClass::StreamLost => "stream_lost",
            FailureClass::ProtocolError => "protocol_error",
        }
    }

    /// Short human label for tables.
    pub fn label(self) -> &'static str {
        match self {
            FailureClass::ConnectRefused => "connect refused",
            FailureClass::ConnectTimeout => "connect timeout",
            FailureClass::ConnectError => "connect error",
            FailureClass::TlsHandshake => "TLS handshake failed",
            FailureClass::TlsCertificate => "TLS certificate rejected",
            FailureClass::Reset => "reset before response",
            FailureClass::Closed => "closed before response",
            FailureClass::Truncated => "truncated response",
            FailureClass::Timeout => "timeout",
            FailureClass::WriteError => "write error",
            FailureClass::BadResponse => "bad response",
            FailureClass::Http5xx => "HTTP 5xx",
            FailureClass::HttpOther => "HTTP other non-2xx",
            FailureClass::ClientError => "client-side error",
            FailureClass::GoawayRefused => "refused by GOAWAY",
            FailureClass::StreamReset => "stream reset",
            FailureClass::StreamLost => "stream lost",
            FailureClass::ProtocolError => "HTTP/2 protocol error",
        }
    }

    /// One sentence a newcomer can read next to the class's first use in a
    /// report: what the client saw and what it usually means for a reload.
    pub fn meaning(self) -> &'static str {
        match self {
            FailureClass::ConnectRefused => {
                "Nothing listened on the port when the client connected: the old process had \
                 closed its listening socket and the new one had not bound yet."
            }
            FailureClass::ConnectTimeout => {
                "The connect did not complete within the timeout: the listen queue was full or \
                 nobody accepted the connection."
            }
            FailureClass::ConnectError => {
                "The connect failed for another reason on the server's side (host or network \
                 unreachable, ...)."
            }
            FailureClass::TlsHandshake => {
                "The TCP connection opened but the TLS handshake failed: the server sent an \
                 alert, reset or closed the connection, or never finished the handshake."
            }
            FailureClass::TlsCertificate => {
                "The client rejected the server's TLS certificate: it is not signed by the \
                 trusted CA, names another host or has expired."
            }
            FailureClass::Reset => {
                "The connection was reset before any byte of the response came: typically it \
                 waited in a listen queue that was then closed, and the kernel dropped it."
            }
            FailureClass::Closed => {
                "The connection was closed before any byte of the response came: a process \
                 accepted it, then exited or closed it without answering."
            }
            FailureClass::Truncated => {
                "The response began but its body was cut short: the process serving a request \
                 in flight stopped."
            }
            FailureClass::Timeout => {
                "No complete response came within the timeout after the request was sent: it \
                 was accepted but never answered."
            }
            FailureClass::WriteError => {
                "Sending the request failed: the server side had already closed the connection."
            }
            FailureClass::BadResponse => "The response was not valid HTTP/1.x.",
            FailureClass::Http5xx => {
                "The server answered with a 5xx status, such as a proxy that could not reach its \
                 origin."
            }
            FailureClass::HttpOther => {
                "The server answered with a status that is neither 2xx nor 5xx."
            }
            FailureClass::ClientError => {
                "The load generator's own side failed (out of ephemeral ports or file \
                 descriptors): not a failure of the server under test."
            }
            FailureClass::GoawayRefused => {
                "The server's GOAWAY named a last stream below this HTTP/2 stream, so the server \
                 says it never processed it and a client can safely send it again."
            }
            FailureClass::StreamReset => {
                "The server reset this HTTP/2 stream with RST_STREAM before its response was \
                 complete, for instance a draining server cutting a long stream."
            }
            FailureClass::StreamLost => {
                "The HTTP/2 connection closed or was reset while this stream was open and no \
                 GOAWAY had refused it: a request in flight was cut."
            }
            FailureClass::ProtocolError => {
                "The server broke the HTTP/2 protocol (a frame or setting that must not be there, \
                 or no HTTP/2 at all), so the client closed the connection."
            }
        }
    }

    /// Parses a [`FailureClass::key`].
    pub fn from_key(key: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.key() == key)
    }

    /// Index into [`FailureClass::ALL`], for per-class counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// True when the connection failed before any byte of the response came
    /// back (`reset`, `closed`, `write_error`): the server cannot have
    /// answered, so an idempotent request can be sent again.
    ///
    /// A `timeout` is not one of them: the server may still be working on
    /// the request, and neither Go's `net/http` nor browsers resend it.
    pub fn before_response(self) -> bool {
        matches!(
            self,
            FailureClass::Reset | FailureClass::Closed | FailureClass::WriteError
        )
    }

    /// True for a failed TLS handshake (`tls_handshake`, `tls_certificate`).
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            FailureClass::TlsHandshake | FailureClass::TlsCertificate
        )
    }

    /// True when the failure is on the load generator's side, not the server's.
    pub fn is_client_side(self) -> bool {
        self == FailureClass::ClientError
    }

    /// True when the server said it never processed the request
    /// (`goaway_refused`: RFC 9113 §6.8): any request, of any method, on any
    /// connection, can be sent again.
    pub fn never_processed(self) -> bool {
        self == FailureClass::GoawayRefused
    }

    /// True for the HTTP/2 stream classes (`goaway_refused`, `stream_reset`,
    /// `stream_lost`, `protocol_error`).
    pub fn is_h2(self) -> bool {
        matches!(
            self,
            FailureClass::GoawayRefused
                | FailureClass::StreamReset
                | FailureClass::StreamLost
                | FailureClass::ProtocolError
        )
    }

    /// The ab counter this class corresponds to (each class maps to exactly one).
    ///
    /// A failed TLS handshake (`tls_handshake`, `tls_certificate`) is a
    /// connection that never became usable, so it counts under ab's
    /// "Connect", like a failed TCP connect: no request byte was sent.
    ///
    /// The HTTP/2 stream classes count where ab counts what a socket reader
    /// sees of them: a stream refused by GOAWAY, reset or lost is a failed
    /// receive ("Receive"), a protocol error an unparsable answer
    /// ("Exceptions", like `bad_response`).
    pub fn ab_counter(self) -> AbCounter {
        match self {
            FailureClass::ConnectRefused
            | FailureClass::ConnectTimeout
            | FailureClass::ConnectError
            | FailureClass::TlsHandshake
            | FailureClass::TlsCertificate
            | FailureClass::ClientError => AbCounter::Connect,
            FailureClass::Reset
            | FailureClass::Closed
            | FailureClass::Timeout
            | FailureClass::GoawayRefused
            | FailureClass::StreamReset
            | FailureClass::StreamLost => AbCounter::Receive,
            FailureClass::Truncated => AbCounter::Length,
            FailureClass::BadResponse | FailureClass::ProtocolError => AbCounter::Exceptions,
            FailureClass::WriteError => AbCounter::Write,
            FailureClass::Http5xx | FailureClass::HttpOther => AbCounter::Non2xx,
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Whether `method` is idempotent (RFC 9110 §9.2.2): `GET`, `HEAD`, `PUT`,
/// `DELETE`, `OPTIONS`, `TRACE`. Methods are case-sensitive (§9.1).
pub fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// Whether a careful client retries a failed request by itself, the rule
/// of Go's `net/http` and browsers: an idempotent method
/// ([`is_idempotent`]), sent on a reused keep-alive connection (the server
/// may have closed it while idle, just as the request went out), which
/// failed before any response byte ([`FailureClass::before_response`]);
/// or any request the server said it never processed
/// ([`FailureClass::never_processed`]: refused by an HTTP/2 GOAWAY).
pub fn is_retryable(method: &str, reused: bool, class: FailureClass) -> bool {
    class.never_processed() || (reused && class.before_response() && is_idempotent(method))
}

/// ab's failure counters ("Failed requests: N (Connect: a, Receive: b, Length: c,
/// Exceptions: d)", "Write errors", "Non-2xx responses"), each request counted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbCounter {
    /// ab's "Connect".
    Connect,
    /// ab's "Receive".
    Receive,
    /// ab's "Length".
    Length,
    /// ab's "Exceptions".
    Exceptions,
    /// ab's "Write errors".
    Write,
    /// ab's "Non-2xx responses".
    Non2xx,
}

/// The ab view of a run, computed from the classes without double counting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbView {
    /// connect_refused + connect_timeout + connect_error + tls_handshake +
    /// tls_certificate + client_error.
    pub connect: u64,
    /// reset + closed + timeout + goaway_refused + stream_reset + stream_lost.
    pub receive: u64,
    /// truncated.
    pub length: u64,
    /// bad_response + protocol_error.
    pub exceptions: u64,
    /// write_error.
    pub write_errors: u64,
    /// http_5xx + http_other.
    pub non_2xx: u64,
}

impl AbView {
    /// Builds the view from per-class counts indexed by [`FailureClass::index`].
    pub fn from_counts(counts: &[u64; FailureClass::ALL.len()]) -> AbView {
        let mut v = AbView::default();
        for class in FailureClass::ALL {
            v.add(class, counts[class.index()]);
        }
        v
    }

    /// Adds `n` failures of `class` to the counter ab would show them in.
    pub fn add(&mut self, class: FailureClass, n: u64) {
        match class.ab_counter() {
            AbCounter::Connect => self.connect += n,
            AbCounter::Receive => self.receive += n,
            AbCounter::Length => self.length += n,
            AbCounter::Exceptions => self.exceptions += n,
            AbCounter::Write => self.write_errors += n,
            AbCounter::Non2xx => self.non_2xx += n,
        }
    }

    /// Sum of all counters: equals the number of failed requests.
    pub fn total(&self) -> u64 {
        self.connect
            + self.receive
            + self.length
            + self.exceptions
            + self.write_errors
            + self.non_2xx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_index_matches_all() {
        for (i, c) in FailureClass::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(FailureClass::from_key(c.key()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.key()));
        }
    }

    #[test]
    fn every_class_has_one_sentence_of_meaning() {
        for c in FailureClass::ALL {
            let m = c.meaning();
            assert!(m.ends_with('.'), "{c:?}: {m}");
            assert!(m.starts_with(char::is_uppercase), "{c:?}: {m}");
            assert_eq!(m.matches(". ").count(), 0, "{c:?}: one sentence: {m}");
            assert!(m.len() > 20, "{c:?}: {m}");
        }
    }

    #[test]
    fn retryable_needs_an_idempotent_method_a_reused_connection_and_no_response_byte() {
        for m in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"] {
            assert!(is_retryable(m, true, FailureClass::Closed), "{m}");
            assert!(is_retryable(m, true, FailureClass::Reset), "{m}");
            assert!(is_retryable(m, true, FailureClass::WriteError), "{m}");
            assert!(
                !is_retryable(m, false, FailureClass::Closed),
                "{m}: new connection"
            );
        }
        for m in ["POST", "PATCH", "CONNECT", "get", "BREW"] {
            assert!(!is_retryable(m, true, FailureClass::Closed), "{m}");
        }
        let before: Vec<_> = FailureClass::ALL
            .into_iter()
            .filter(|c| is_retryable("GET", true, *c))
            .collect();
        assert_eq!(
            before,
            [
                FailureClass::Reset,
                FailureClass::Closed,
                FailureClass::WriteError,
                FailureClass::GoawayRefused
            ]
        );
    }

    #[test]
    fn refused_by_goaway_is_retryable_whatever_the_method_and_connection() {
        let c = FailureClass::GoawayRefused;
        assert!(c.never_processed() && c.is_h2());
        assert!(
            !c.before_response(),
            "the HTTP/1.1 retry rule is not widened"
        );
        for m in ["GET", "POST", "PATCH"] {
            assert!(is_retryable(m, false, c), "{m}");
            assert!(is_retryable(m, true, c), "{m}");
        }
        for c in [
            FailureClass::StreamReset,
            FailureClass::StreamLost,
            FailureClass::ProtocolError,
        ] {
            assert!(c.is_h2() && !c.never_processed(), "{c:?}");
            assert!(!is_retryable("GET", true, c), "{c:?}");
        }
        assert_eq!(FailureClass::ALL.iter().filter(|c| c.is_h2()).count(), 4);
    }

    #[test]
    fn h2_classes_in_the_ab_view() {
        for c in [
            FailureClass::GoawayRefused,
            FailureClass::StreamReset,
            FailureClass::StreamLost,
        ] {
            assert_eq!(c.ab_counter(), AbCounter::Receive, "{c:?}");
        }
        assert_eq!(
            FailureClass::ProtocolError.ab_counter(),
            AbCounter::Exceptions
        );
    }

    #[test]
    fn tls_classes_are_connect_failures_in_the_ab_view_and_never_retried() {
        for c in [FailureClass::TlsHandshake, FailureClass::TlsCertificate] {
            assert!(c.is_tls());
            assert_eq!(c.ab_counter(), AbCounter::Connect);
            assert!(!c.before_response(), "{c:?}");
            assert!(!is_retryable("GET", true, c));
        }
        assert_eq!(
            FailureClass::from_key("tls_certificate"),
            Some(FailureClass::TlsCertificate)
        );
        assert_eq!(FailureClass::ALL.iter().filter(|c| c.is_tls()).count(), 2);
    }

    #[test]
    fn ab_view_counts_each_failure_once() {
        let mut counts = [0u64; FailureClass::ALL.len()];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = i as u64 + 1;
        }
        let v = AbView::from_counts(&counts);
        assert_eq!(v.total(), counts.iter().sum::<u64>());
    }
}
