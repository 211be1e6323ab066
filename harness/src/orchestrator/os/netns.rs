//! A network namespace per case (as root): no other traffic touches the
//! case's ports, and the kernel's TCP counters are exactly the case's own.
//!
//! Linux semantics this relies on: `unshare(CLONE_NEWNET)` moves only the
//! calling *thread*; threads it creates later and processes it (or they)
//! fork inherit its namespace. [`run_case`] therefore runs the whole case on
//! a dedicated thread that enters a fresh namespace, brings `lo` up
//! (netlink `RTM_NEWLINK`, no `ip` binary), copies the host's per-namespace
//! sysctls ([`NETNS_SYSCTLS`]; a fresh namespace starts from kernel
//! defaults) and runs the case on a tokio runtime built on that thread: its
//! workers and blocking threads, the load generator's threads, and every
//! process of the case (origin, system under test, reloads, `exec`
//! actions) are inside. The watchdog and the run's main thread stay
//! outside; pids are global, so the watchdog still reaches every process.
//! A `sysctl` action runs on the case's runtime, so it sets the
//! namespace's value of a per-namespace key.
//!
//! Without root (or with `--no-netns`) the case runs in the host's
//! namespace, as before, and its counters are host-wide.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use super::host::{read_sysctl, sysctl_path};
use crate::orchestrator::case::{CaseError, CaseInput, CaseOutput, StartError};

/// Per-namespace sysctls copied from the host into each case's namespace
/// (the ones the run records in its environment, and their neighbours
/// that change how loopback TCP behaves under load).
pub(crate) const NETNS_SYSCTLS: [&str; 8] = [
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_migrate_req",
    "net.core.somaxconn",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_timestamps",
];

/// Why a namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetnsError {
    /// `unshare(CLONE_NEWNET)` failed (no CAP_SYS_ADMIN, seccomp, ...).
    #[error("cannot create a network namespace: {0}")]
    Unshare(nix::Error),
    /// Loopback could not be brought up.
    #[error("cannot bring lo up in the case's namespace: {0}")]
    Loopback(#[source] LoopbackError),
    /// Loopback could not be brought up, and the thread could not go back
    /// to the namespace it was in.
    #[error(
        "cannot bring lo up in the case's namespace: {source}; \
         and returning to the host's namespace failed: {back}"
    )]
    Stuck {
        /// Why loopback is down.
        #[source]
        source: LoopbackError,
        /// Why `setns` back failed.
        back: nix::Error,
    },
}

/// Why `lo` could not be brought up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoopbackError {
    /// The thread's namespace (to go back to) could not be opened.
    #[error("cannot open this thread's namespace: {0}")]
    OpenNs(#[source] std::io::Error),
    /// A step of the netlink exchange failed (`no lo`, `netlink socket`, ...).
    #[error("{step}: {source}")]
    Netlink {
        /// Which step.
        step: &'static str,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// The kernel answered something other than an acknowledgement.
    #[error("unexpected netlink reply ({0} bytes)")]
    Reply(usize),
    /// The kernel refused the request.
    #[error(transparent)]
    Refused(nix::Error),
}

/// Whether cases get their own namespace: asked for and running as root.
pub(crate) fn wanted(enabled: bool) -> bool {
    enabled && nix::unistd::geteuid().is_root()
}

/// Moves the calling thread into a fresh network namespace with `lo` up.
/// When `lo` cannot be brought up the thread goes back to the namespace it
/// was in (a case never runs without loopback while the report says it ran
/// in the host's namespace); if even that fails, the error says so.
pub(crate) fn enter_fresh() -> Result<(), NetnsError> {
    let before = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| NetnsError::Loopback(LoopbackError::OpenNs(e)))?;
    unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
    loopback_up().map_err(|e| match setns(&before, CloneFlags::CLONE_NEWNET) {
        Ok(()) => NetnsError::Loopback(e),
        Err(back) => NetnsError::Stuck { source: e, back },
    })
}

/// Inode of the calling thread's network namespace.
pub(crate) fn thread_netns() -> Option<u64> {
    netns_inode("/proc/thread-self/ns/net")
}

/// Inode of the network namespace of `/proc/<who>/ns/net` (`self` is the
/// thread-group leader, i.e. the harness's main thread).
pub(crate) fn netns_inode(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Whether the calling thread is in another namespace than the main thread.
pub(crate) fn in_own_netns() -> bool {
    match (thread_netns(), netns_inode("/proc/self/ns/net")) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Sets `lo` up with one `RTM_NEWLINK` request and waits for the ack.
fn loopback_up() -> Result<(), LoopbackError> {
    let at = |step: &'static str| move |source| LoopbackError::Netlink { step, source };
    let index = nix::net::if_::if_nametoindex("lo").map_err(at("no lo"))?;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(at("netlink socket"))?;
    // The acknowledgement is waited for at most a second.
    nix::sys::socket::setsockopt(
        &fd,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(1, 0),
    )
    .map_err(at("netlink timeout"))?;
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLMSG_ERROR: u16 = 2;
    const IFF_UP: u32 = 1;
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
    msg.extend_from_slice(&[0, 0]); // ifi_family AF_UNSPEC, pad
    msg.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    msg.extend_from_slice(&(index as i32).to_ne_bytes());
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
    sendto(
        fd.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(at("netlink send"))?;
    let mut buf = [0u8; 256];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(at("netlink recv"))?;
    let u16_at = |i: usize| u16::from_ne_bytes([buf[i], buf[i + 1]]);
    if n < 20 || u16_at(4) != NLMSG_ERROR {
        return Err(LoopbackError::Reply(n));
    }
    let errno = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if errno != 0 {
        return Err(LoopbackError::Refused(nix::errno::Errno::from_raw(-errno)));
    }
    Ok(())
}

/// The host's values of [`NETNS_SYSCTLS`] (read before entering a namespace).
pub(crate) fn host_sysctls() -> BTreeMap<String, String> {
    NETNS_SYSCTLS
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), read_sysctl(k)?)))
        .collect()
}

/// Writes `values` into the calling thread's namespace where they differ
/// from what it has; returns the keys that now hold the given values
/// (written or already equal). A key that cannot be set is reported on
/// stderr and left out (the case runs on with the namespace's default).
pub(crate) fn apply_sysctls(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut set = BTreeMap::new();
    for (k, v) in values {
        if read_sysctl(k).as_deref() == Some(v.as_str()) {
            set.insert(k.clone(), v.clone());
            continue;
        }
        match std::fs::write(sysctl_path(k), v) {
            Ok(()) => {
                set.insert(k.clone(), v.clone());
            }
            Err(e) => eprintln!(
                "warning: cannot set {k}={v} in the case's network namespace: {}",
                crate::cause::chain(&e)
            ),
        }
    }
    set
}

/// Runs a case on a dedicated thread in a fresh network namespace (see the
/// module doc); the case's `kernel.netns_sysctls` records the sysctls set
/// there. When the namespace cannot be created the case runs in the host's
/// namespace (with a warning) and its counters say `host-wide`.
pub(crate) async fn run_case(input: CaseInput<'_>) -> Result<CaseOutput, CaseError> {
    let scenario = input.scenario.clone();
    let case = input.case.clone();
    let programs = input.programs.clone();
    let cancel = input.cancel.clone();
    let (label, dir, pids, progress) = (input.label, input.dir, input.pids, input.progress);
    let name = case.name.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("case-netns".into())
        .spawn(move || {
            let host = host_sysctls();
            let set = match enter_fresh() {
                Ok(()) => apply_sysctls(&host),
                Err(e) if !in_own_netns() => {
                    eprintln!(
                        "warning: case {}: {}; running in the host's namespace",
                        case.name,
                        crate::cause::chain(&e)
                    );
                    BTreeMap::new()
                }
                Err(e) => {
                    // Stuck in a namespace without loopback: nothing could connect.
                    let _ = tx.send(Err(CaseError::Start {
                        case: case.name.clone(),
                        what: "network namespace",
                        source: Box::new(StartError::Netns(e)),
                    }));
                    return;
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("case")
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(CaseError::Start {
                        case: case.name.clone(),
                        what: "runtime",
                        source: Box::new(StartError::Io(e)),
                    }));
                    return;
                }
            };
            let input = CaseInput {
                scenario: &scenario,
                case: &case,
                label,
                dir,
                pids,
                programs: &programs,
                progress,
                cancel: &cancel,
            };
            let mut res = rt.block_on(crate::orchestrator::case::run_case(input));
            if let Ok(out) = &mut res
                && let Some(k) = &mut out.report.kernel
            {
                k.netns_sysctls = set;
            }
            rt.shutdown_timeout(Duration::from_secs(1));
            let _ = tx.send(res);
        });
    if let Err(e) = spawned {
        return Err(CaseError::Start {
            case: name,
            what: "case thread",
            source: Box::new(StartError::Io(e)),
        });
    }
    rx.await.unwrap_or(Err(CaseError::Start {
        case: name,
        what: "case thread",
        source: Box::new(StartError::Panicked),
    }))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::path::Path;

    use super::*;
    use crate::orchestrator::measure::nstat;

    fn root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        eprintln!("skipped: needs root to create a network namespace");
        false
    }

    /// A loopback port nothing listens on (bound, then closed).
    fn closed_port() -> SocketAddr {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
    }

    fn refused_connects(addr: SocketAddr, n: usize) {
        for _ in 0..n {
            let e = TcpStream::connect(addr).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        }
    }

    #[test]
    fn a_fresh_namespace_has_lo_up_and_its_threads_and_children_are_inside() {
        if !root() {
            return;
        }
        let host = netns_inode("/proc/self/ns/net").unwrap();
        let (inside, worker, child) = std::thread::spawn(|| {
            enter_fresh().unwrap();
            assert!(in_own_netns());
            // Loopback works: a listener and a connection to it.
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (worker, child) = rt.block_on(async {
                tokio::spawn(async {
                    let worker = thread_netns().unwrap();
                    let mut c = tokio::process::Command::new("sleep")
                        .arg("30")
                        .kill_on_drop(true)
                        .spawn()
                        .unwrap();
                    let pid = c.id().unwrap();
                    let child = netns_inode(&format!("/proc/{pid}/ns/net")).unwrap();
                    c.kill().await.unwrap();
                    (worker, child)
                })
                .await
                .unwrap()
            });
            (thread_netns().unwrap(), worker, child)
        })
        .join()
        .unwrap();
        assert_ne!(inside, host);
        assert_eq!(worker, inside);
        assert_eq!(child, inside);
        // The main thread never moved.
        assert_eq!(thread_netns(), Some(host));
    }

    #[test]
    fn counters_in_a_fresh_namespace_are_exactly_its_own_traffic() {
        if !root() {
            return;
        }
        const N: usize = 9;
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        // The host's namespace sees refused connects of its own while the
        // namespace's counters are being compared (spawned from the main
        // thread, so outside).
        let host = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            refused_connects(closed_port(), 25);
            done_tx.send(()).unwrap();
        });
        let (before, after) = std::thread::spawn(move || {
            enter_fresh().unwrap();
            let target = closed_port();
            let read = || nstat::read(Path::new(nstat::THREAD_NET)).unwrap();
            let before = read();
            go_tx.send(()).unwrap();
            // A thread spawned here is inside: its connects count.
            std::thread::spawn(move || refused_connects(target, N))
                .join()
                .unwrap();
            done_rx.recv().unwrap();
            (before, read())
        })
        .join()
        .unwrap();
        host.join().unwrap();
        let d = nstat::delta(&before, &after);
        assert_eq!(d.get("TcpActiveOpens"), Some(&(N as i64)), "{d:?}");
        assert_eq!(d.get("TcpAttemptFails"), Some(&(N as i64)), "{d:?}");
        // The kernel answers each SYN to a closed port with a reset.
        assert_eq!(d.get("TcpOutRsts"), Some(&(N as i64)), "{d:?}");
        assert_eq!(d.get("TcpEstabResets"), Some(&0), "{d:?}");
    }

    #[test]
    fn host_sysctls_are_copied_into_the_namespace() {
        if !root() {
            return;
        }
        let host = host_sysctls();
        assert!(host.contains_key("net.ipv4.tcp_tw_reuse"), "{host:?}");
        let (set, inside) = std::thread::spawn(move || {
            enter_fresh().unwrap();
            // Pretend the host had non-default values.
            let mut want = host.clone();
            want.insert("net.ipv4.ip_local_port_range".into(), "20000 20999".into());
            want.insert("net.ipv4.tcp_fin_timeout".into(), "17".into());
            let set = apply_sysctls(&want);
            (set, host_sysctls())
        })
        .join()
        .unwrap();
        assert_eq!(
            set.get("net.ipv4.tcp_fin_timeout").map(String::as_str),
            Some("17")
        );
        assert_eq!(
            inside
                .get("net.ipv4.ip_local_port_range")
                .map(String::as_str),
            Some("20000 20999")
        );
        // The host's own value did not change.
        assert_ne!(
            read_sysctl("net.ipv4.tcp_fin_timeout").as_deref(),
            Some("17")
        );
    }
}
