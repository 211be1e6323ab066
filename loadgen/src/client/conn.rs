//! What a client does with a connection, for each kind of connection:
//! [`Conn`] is implemented by a cleartext [`TcpStream`] and by a
//! [`TlsConn`](super::tls::TlsConn), and a client's loop is generic over it,
//! so each kind gets its own compiled loop and the cleartext one is the same
//! code as before TLS existed (no dispatch per read).

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::time::Instant;

use reloadbench_model::outcome::FailureClass;
use tokio::net::TcpStream;

use super::Wire;
use super::reader::{Asked, Failed};
use super::response::{self, Response, Scratch};
use super::{ClientCtx, connect, idle_check};
use crate::record::Recorder;
use crate::run::Shared;

/// A new connection, ready for requests.
pub(crate) struct Opened<C> {
    /// The connection.
    pub(crate) conn: C,
    /// When it became ready (TCP connected, or TLS handshake done).
    pub(crate) at: Instant,
}

/// One kind of connection.
pub(crate) trait Conn: Sized {
    /// Opens a connection to the run's target from `source`, recording it
    /// (and its TLS handshake) in `rec`. A failure is the request's class.
    async fn open(
        ctx: &ClientCtx,
        source: Option<Ipv4Addr>,
        shared: &Shared,
        rec: &RefCell<Recorder>,
    ) -> Result<Opened<Self>, FailureClass>;

    /// Writes `request` and reads one complete response.
    async fn exchange(
        &mut self,
        request: Wire<'_>,
        scratch: &Scratch,
        asked: Asked,
    ) -> Result<Response, Failed>;

    /// Whether an idle connection can no longer carry a request (see [`idle_check`]).
    fn unusable(&self) -> bool;
}

impl Conn for TcpStream {
    async fn open(
        ctx: &ClientCtx,
        source: Option<Ipv4Addr>,
        shared: &Shared,
        rec: &RefCell<Recorder>,
    ) -> Result<Opened<TcpStream>, FailureClass> {
        let conn = connect::connect(ctx.addr, source, ctx.timeout, ctx.keep_alive).await?;
        let at = Instant::now();
        rec.borrow_mut().connected(shared.offset_ns(at));
        Ok(Opened { conn, at })
    }

    async fn exchange(
        &mut self,
        request: Wire<'_>,
        scratch: &Scratch,
        asked: Asked,
    ) -> Result<Response, Failed> {
        response::exchange(self, request, scratch, asked).await
    }

    fn unusable(&self) -> bool {
        idle_check::unusable(self)
    }
}
