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

/// `TLSv1.3`, as openssl and ab name versions.
fn version_name(v: Option<ProtocolVersion>) -> String {
    match v {
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    }
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
        // TCP_NODELAY always: a handshake is several small writes in a row
        // (as curl and browsers, which set it on every connection).
        let tcp = connect::connect(ctx.addr, source, ctx.timeout, true).await?;
        let tcp_done = Instant::now();
        rec.borrow_mut().connected(shared.offset_ns(tcp_done));
        let connector = TlsConnector::from(tls.config.clone());
        let handshake = connector.connect(tls.server_name.clone(), tcp);
        let stream = match tokio::time::timeout(ctx.timeout, handshake).await {
            Err(_) => Err(FailureClass::TlsHandshake),
            Ok(Err(e)) => Err(classify_handshake(&e)),
            Ok(Ok(s)) => Ok(s),
        }
        .inspect_err(|_| rec.borrow_mut().handshakes_failed += 1)?;
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
