//! What the kernel knows about a server, asked without the server's help.
//!
//! - [`sockdiag`]: the TCP sockets on an address, from `NETLINK_SOCK_DIAG`
//!   (`inet_diag`): state, addresses, inode, uid, and for a listening socket
//!   its accept queue (`rqueue`) and backlog (`wqueue`).
//! - [`owners`]: which processes hold a socket (by inode, from
//!   `/proc/PID/fd`), and a process tree's pids.
//! - [`pidfd`]: whether a process has exited, without racing pid reuse.
//!
//! The crate knows nothing of scenarios or reloads; the harness builds its
//! evidence from these pieces.

pub mod owners;
pub mod pidfd;
pub mod sockdiag;
