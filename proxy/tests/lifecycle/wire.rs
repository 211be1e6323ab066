//! One lifecycle test over cleartext or TLS: the config (with a `[tls]` table or not),
//! the load (loadgen over `http://` or `https://`, resuming from one session store) and
//! one checked request (a plain GET, or a [`TlsClient`] visit).

use std::net::SocketAddr;
use std::path::PathBuf;

use reloadbench_loadgen::{LoadConfig, LoadRun};

use crate::support::*;
use crate::tls_client::*;

/// An idle kept-alive connection ([`Wire::held`]), open until dropped.
pub(crate) enum Held {
    Clear(#[allow(dead_code)] std::net::TcpStream),
    Tls(#[allow(dead_code)] Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

/// Cleartext or TLS, for the whole of one test.
pub(crate) enum Wire {
    Clear,
    Tls { pki: Pki, client: TlsClient },
}

impl Wire {
    /// TLS with a certificate written to `s`, or cleartext.
    pub(crate) fn new(tls: bool, s: &Scratch) -> Wire {
        if !tls {
            return Wire::Clear;
        }
        let pki = Pki::new(s.dir.path());
        let client = TlsClient::new(&pki, Flavor::Tickets);
        Wire::Tls { pki, client }
    }

    /// Writes the config `name` with the settings of `conf` (and the `[tls]` table).
    pub(crate) fn config(&self, s: &Scratch, name: &str, conf: &Conf) -> PathBuf {
        match self {
            Wire::Clear => s.config(name, conf),
            Wire::Tls { pki, .. } => tls_config(s, name, conf, pki, ""),
        }
    }

    /// Closed-loop load on `addr` as [`crate::load::load`], over TLS when this is TLS
    /// (certificate not verified: the test's own; sessions resumed).
    pub(crate) fn load(&self, addr: SocketAddr, c: u64, keep_alive: bool) -> LoadRun {
        match self {
            Wire::Clear => crate::load::load(addr, c, keep_alive),
            Wire::Tls { .. } => {
                let mut cfg = LoadConfig::new(&format!("https://{addr}/")).unwrap();
                cfg.tls.insecure = true;
                cfg.concurrency = c;
                cfg.requests = None;
                cfg.duration = Some(scaled(90));
                cfg.keep_alive = keep_alive;
                cfg.timeout = scaled(10);
                cfg.threads = 1;
                reloadbench_loadgen::start(cfg).unwrap()
            }
        }
    }

    /// One request: its status and `X-Served-By` (a TLS visit checks the status is 200).
    pub(crate) async fn get(&self, addr: SocketAddr) -> (u16, String) {
        match self {
            Wire::Clear => get(addr).await.unwrap(),
            Wire::Tls { client, .. } => {
                let v = client.visit(addr, 1).await.unwrap();
                (200, v.served_by[0].clone())
            }
        }
    }

    /// A kept-alive connection that has had one response and stays idle: it keeps a
    /// draining process alive until it is dropped.
    pub(crate) async fn held(&self, addr: SocketAddr) -> Held {
        match self {
            Wire::Clear => Held::Clear(crate::takeover::idle_connection(addr)),
            Wire::Tls { client, .. } => Held::Tls(Box::new(client.held(addr).await.unwrap())),
        }
    }

    /// The name of the test's variant, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Wire::Clear => "cleartext",
            Wire::Tls { .. } => "TLS",
        }
    }
}

/// [`plain_with`] over `tls` or not: an origin, a refproxy in front of it, and the wire.
pub(crate) async fn plain_over(tls: bool, tweak: impl FnOnce(&mut Conf)) -> (Plain, Wire) {
    let origin = origin(100, None).await;
    let s = Scratch::new();
    let wire = Wire::new(tls, &s);
    let mut conf = Conf::new(origin.addr());
    tweak(&mut conf);
    let cfg = wire.config(&s, "p.toml", &conf);
    let (proxy, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    let plain = Plain {
        _origin: origin,
        s,
        cfg,
        proxy,
        addr,
    };
    (plain, wire)
}
