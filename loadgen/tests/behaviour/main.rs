//! Behaviour of the load generator against real sockets on loopback: servers
//! that misbehave in one specific way each, a port that goes away and comes
//! back, TLS servers that count their handshakes, and the `loadgen`
//! binary's command line.

#![allow(clippy::unwrap_used)]

mod cli;
mod connect_to;
mod h2;
mod h2_support;
mod idle;
mod many;
mod mix;
mod port_gap;
mod servers;
mod support;
mod tls;
mod tls_support;
mod ws;
mod ws_stall;
