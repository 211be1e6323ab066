//! The origin connector: hyper_util's [`HttpConnector`], with every connection stamped
//! with the instant it was established.
//!
//! The stamp travels with the connection's [`Connected`] info, which hyper_util attaches
//! to a failed exchange's error. Comparing it with the instant a request started tells a
//! connection taken from the idle pool (established before the request) from one opened
//! for it: only the former can have been closed by the origin while idle, which is the
//! case [`super::retry`] retries.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

/// When an origin connection was established (an extra of its [`Connected`] info).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectedAt(pub(crate) Instant);

/// An [`HttpConnector`] whose connections carry a [`ConnectedAt`] stamp.
#[derive(Clone, Debug)]
pub(crate) struct StampingConnector {
    inner: HttpConnector,
}

impl StampingConnector {
    pub(crate) fn new(inner: HttpConnector) -> Self {
        StampingConnector { inner }
    }
}

/// The error of a failed connect (hyper_util's `ConnectError`).
type ConnectError = <HttpConnector as Service<Uri>>::Error;

type ConnectFuture = Pin<Box<dyn Future<Output = Result<Stamped, ConnectError>> + Send>>;

impl Service<Uri> for StampingConnector {
    type Response = Stamped;
    type Error = ConnectError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Stamped {
                io,
                at: Instant::now(),
            })
        })
    }
}

/// An origin connection and the instant it was established.
#[derive(Debug)]
pub(crate) struct Stamped {
    io: TokioIo<TcpStream>,
    at: Instant,
}

impl Connection for Stamped {
    fn connected(&self) -> Connected {
        self.io.connected().extra(ConnectedAt(self.at))
    }
}

impl Read for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
