//! TLS connections: the handshake (timed, its kind and failure classified)
//! and the exchange over a [`TlsStream`].
//!
//! A TLS stream cannot be read with `try_read` after a readiness wait as the
//! cleartext path does (rustls decrypts inside the read), so a read awaits
//! with a buffer in hand. That buffer comes from the worker's pool
//! ([`Scratch::tls_buffer`]) for the time of one exchange, never from the
//! shared scratch buffer, which must not be held across an await; an idle
//! keep-alive connection holds none.

use std::cell::RefCell;
use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use reloadbench_model::outcome::FailureClass;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Wire;
use super::conn::{Conn, Opened};
use super::reader::{Asked, Failed, Fed, Reader};
use super::response::{Response, Scratch, write_failure};
use super::{ClientCtx, connect, idle_check};
use crate::record::{Handshake, Recorder};
use crate::run::Shared;

/// The TLS client of a run: one configuration (with its one session store)
/// and the server's name, shared by every connection.
#[derive(Debug)]
pub(crate) struct TlsCtx {
    /// rustls's client configuration.
    pub(crate) config: Arc<ClientConfig>,
    /// The URL host: SNI (for a DNS name) and the certificate's name.
    pub(crate) server_name: ServerName<'static>,
}

/// A TLS connection.
pub(crate) struct TlsConn(pub(crate) TlsStream<TcpStream>);

/// The class of a failed handshake: a rejected certificate, or anything
/// else (alert, reset, EOF, garbage).
fn classify_handshake(e: &io::Error) -> FailureClass {
    let certificate = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        });
    if certificate {
        FailureClass::TlsCertificate
    } else {
        FailureClass::TlsHandshake
    }
}

/// What ended a handshake of the `tls_handshake` class (a detail of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandshakeEnd {
    /// The server sent an alert (its RFC 8446 name, e.g. `handshake_failure`).
    Alert(String),
    /// The connection was reset.
    Reset,
    /// The server closed the connection.
    Eof,
    /// Not done within the request timeout.
    Timeout,
    /// Anything else.
    Other,
}

impl HandshakeEnd {
    /// What ended a handshake that failed with `e`.
    pub(crate) fn of(e: &io::Error) -> HandshakeEnd {
        let rustls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::AlertReceived(alert)) = rustls {
            return HandshakeEnd::Alert(alert_name(*alert));
        }
        match e.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                HandshakeEnd::Reset
            }
            io::ErrorKind::UnexpectedEof => HandshakeEnd::Eof,
            _ => HandshakeEnd::Other,
        }
    }

    /// Counts it in `f`.
    pub(crate) fn count(self, f: &mut reloadbench_model::load::HandshakeFailures) {
        match self {
            HandshakeEnd::Alert(name) => *f.alerts.entry(name).or_default() += 1,
            HandshakeEnd::Reset => f.reset += 1,
            HandshakeEnd::Eof => f.eof += 1,
            HandshakeEnd::Timeout => f.timeout += 1,
            HandshakeEnd::Other => f.other += 1,
        }
    }
}

/// An alert's RFC 8446 name (`handshake_failure`) from rustls's (`HandshakeFailure`).
fn alert_name(alert: rustls::AlertDescription) -> String {
    let camel = format!("{alert:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `TLSv1.3`, as openssl and ab name versions.
fn version_name(v: Option<ProtocolVersion>) -> String {
    match v {
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    }
}

/// A failed connect or TLS handshake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsFailed {
    /// The request's class.
    pub(crate) class: FailureClass,
    /// The server answered the client's ALPN offer with the
    /// `no_application_protocol` alert: it speaks none of the protocols offered.
    pub(crate) no_application_protocol: bool,
}

impl From<FailureClass> for TlsFailed {
    fn from(class: FailureClass) -> TlsFailed {
        TlsFailed {
            class,
            no_application_protocol: false,
        }
    }
}

/// Whether the handshake failed on the server's `no_application_protocol` alert.
fn no_application_protocol(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
            )
        })
}

/// Connects to `addr` and makes the TLS handshake of `tls` within `timeout`
/// each, recording the connection and the handshake (completed or failed)
/// in `rec`; returns the stream and when its handshake completed. Shared by
/// the HTTP/1.1 and the HTTP/2 clients.
pub(crate) async fn connect_tls(
    tls: &TlsCtx,
    addr: std::net::SocketAddr,
    source: Option<Ipv4Addr>,
    timeout: std::time::Duration,
    shared: &Shared,
    rec: &RefCell<Recorder>,
) -> Result<(TlsStream<TcpStream>, Instant), TlsFailed> {
    // TCP_NODELAY always: a handshake is several small writes in a row
    // (as curl and browsers, which set it on every connection).
    let tcp = connect::connect(addr, source, timeout, true)
        .await
        .map_err(TlsFailed::from)?;
    let tcp_done = Instant::now();
    rec.borrow_mut().connected(shared.offset_ns(tcp_done));
    let connector = TlsConnector::from(tls.config.clone());
    let handshake = connector.connect(tls.server_name.clone(), tcp);
    let ended = match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err((
            TlsFailed::from(FailureClass::TlsHandshake),
            HandshakeEnd::Timeout,
        )),
        Ok(Err(e)) => Err((
            TlsFailed {
                class: classify_handshake(&e),
                no_application_protocol: no_application_protocol(&e),
            },
            HandshakeEnd::of(&e),
        )),
        Ok(Ok(s)) => Ok(s),
    };
    let stream = ended.map_err(|(failed, end)| {
        let mut rec = rec.borrow_mut();
        rec.handshakes_failed += 1;
        if failed.class == FailureClass::TlsHandshake {
            end.count(&mut rec.handshake_failures);
        }
        failed
    })?;
    let at = Instant::now();
    let session = stream.get_ref().1;
    let kind = match session.handshake_kind() {
        Some(HandshakeKind::Resumed) => Handshake::Resumed,
        _ => Handshake::Full,
    };
    rec.borrow_mut().handshake(
        shared.offset_ns(at),
        kind,
        (at - tcp_done).as_nanos() as u64,
        || {
            let cipher = session
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite()));
            (version_name(session.protocol_version()), cipher)
        },
    );
    Ok((stream, at))
}

impl Conn for TlsConn {
    async fn open(
        ctx: &ClientCtx,
        source: Option<Ipv4Addr>,
        shared: &Shared,
        rec: &RefCell<Recorder>,
    ) -> Result<Opened<TlsConn>, FailureClass> {
        let Some(tls) = &ctx.tls else {
            return Err(FailureClass::ClientError);
        };
        let (stream, at) = connect_tls(tls, ctx.addr, source, ctx.timeout, shared, rec)
            .await
            .map_err(|f| f.class)?;
        Ok(Opened {
            conn: TlsConn(stream),
            at,
        })
    }

    async fn exchange(
        &mut self,
        request: Wire<'_>,
        scratch: &Scratch,
        asked: Asked,
    ) -> Result<Response, Failed> {
        let stream = &mut self.0;
        let written = request.write_to(stream).await;
        if let Err(e) = match written {
            Ok(()) => stream.flush().await,
            Err(e) => Err(e),
        } {
            return Err(write_failure(&e));
        }
        let written = Instant::now();
        let mut reader = Reader::new(asked);
        let mut buf = scratch.tls_buffer();
        loop {
            let fed = match stream.read(&mut buf).await {
                Ok(0) => reader.eof().map(|()| Fed::Done),
                Ok(n) => reader.feed(&buf[..n]),
                // A server that closes without close_notify (most do after
                // `Connection: close`): the end of a body read to the close.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    reader.eof().map(|()| Fed::Done)
                }
                Err(_) => Err(reader.read_error()),
            };
            match fed {
                Ok(Fed::More) => {}
                Ok(Fed::Done) => break,
                Err(failed) => return Err(failed),
            }
        }
        Ok(Response::from_reader(reader, written))
    }

    fn unusable(&self) -> bool {
        idle_check::unusable(self.0.get_ref().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_get_their_rfc_names_and_errors_their_kind() {
        assert_eq!(
            alert_name(rustls::AlertDescription::HandshakeFailure),
            "handshake_failure"
        );
        assert_eq!(
            alert_name(rustls::AlertDescription::ProtocolVersion),
            "protocol_version"
        );
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::InternalError),
        );
        assert_eq!(
            HandshakeEnd::of(&alert),
            HandshakeEnd::Alert("internal_error".into())
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(HandshakeEnd::of(&reset), HandshakeEnd::Reset);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(HandshakeEnd::of(&eof), HandshakeEnd::Eof);
        let garbage = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert_eq!(HandshakeEnd::of(&garbage), HandshakeEnd::Other);
    }
}
