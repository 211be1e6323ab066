//! Real-process tests of refproxy's lifecycle: fd-passing, naive and master-worker reloads,
//! restarts, rollbacks, draining and process cleanup. Heavy tests (`heavy_*`) drive load and
//! run one at a time under nextest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod cli;
mod control_socket;
mod fd_pass;
mod fds;
mod h2;
mod h2_loadgen;
mod load;
mod master;
mod naive;
mod rollback;
mod systemd;
mod takeover;
mod tls;
mod tls_client;
mod tunnels;
mod tunnels_heavy;
mod wire;
mod ws;
mod ws_h2;
