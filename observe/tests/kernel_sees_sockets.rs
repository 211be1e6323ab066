//! The observations against sockets made in the test: a listener that never
//! accepts, clients queued on it, and a socket shared with a child process.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reloadbench_model::test_timing::scaled;
use reloadbench_observe::owners::{descendants, socket_owners};
use reloadbench_observe::pidfd::Pidfd;
use reloadbench_observe::sockdiag::{Diag, Filter, States, TcpSocket, TcpState, dump};
use socket2::{Domain, Socket, Type};

fn listener(addr: &str, backlog: i32) -> Socket {
    let addr: SocketAddr = addr.parse().expect("addr");
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    s.bind(&addr.into()).expect("bind");
    s.listen(backlog).expect("listen");
    s
}

fn local(s: &Socket) -> SocketAddr {
    s.local_addr().expect("local").as_socket().expect("inet")
}

/// Dumps until `pred` holds on the listening sockets, or fails after 10 s (times `RELOADBENCH_TEST_SLOW`).
fn wait_listeners(addr: SocketAddr, pred: impl Fn(&[TcpSocket]) -> bool) -> Vec<TcpSocket> {
    let mut diag = Diag::open().expect("netlink");
    let until = Instant::now() + scaled(Duration::from_secs(10));
    loop {
        let l = diag
            .dump(&Filter::local(addr, States::of(&[TcpState::Listen])))
            .expect("dump");
        if pred(&l) || Instant::now() > until {
            return l;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn queue_of_known_depth(bind: &str) {
    let l = listener(bind, 16);
    let addr = local(&l);
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let found = wait_listeners(addr, |l| l.first().is_some_and(|s| s.rqueue == 5));
    assert_eq!(found.len(), 1, "{found:?}");
    let s = &found[0];
    assert_eq!(s.state, TcpState::Listen);
    assert_eq!(s.local, addr);
    assert_eq!(s.rqueue, 5, "accept queue");
    assert_eq!(s.wqueue, 16, "backlog");
    assert_eq!(s.uid, nix::unistd::getuid().as_raw());
    let owners = socket_owners(&[std::process::id()], None);
    assert_eq!(
        owners
            .get(&s.inode)
            .map(|p| p.iter().copied().collect::<Vec<_>>()),
        Some(vec![std::process::id()])
    );
    // The queued connections are ESTABLISHED on the server side, held by no
    // file yet (inode 0): nobody accepted them.
    let est = dump(&Filter::local(addr, States::of(&[TcpState::Established]))).expect("dump");
    assert_eq!(est.len(), 5, "{est:?}");
    assert!(est.iter().all(|s| s.inode == 0 && s.local == addr));
    drop(clients);
}

#[test]
fn listener_that_never_accepts_shows_its_queue_and_backlog_v4() {
    queue_of_known_depth("127.0.0.1:0");
}

#[test]
fn listener_that_never_accepts_shows_its_queue_and_backlog_v6() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    queue_of_known_depth("[::1]:0");
}

#[test]
fn accepted_connections_are_owned_by_the_acceptor() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let _c1 = TcpStream::connect(addr).expect("connect");
    let _c2 = TcpStream::connect(addr).expect("connect");
    let (_a1, _) = l.accept().expect("accept");
    let (_a2, _) = l.accept().expect("accept");
    let est = dump(&Filter::local(addr, States::of(&[TcpState::Established]))).expect("dump");
    // Only the server side of each connection (local = the listening address).
    assert_eq!(est.len(), 2, "{est:?}");
    let inodes = est.iter().map(|s| s.inode).collect();
    let owners = socket_owners(&[std::process::id()], Some(&inodes));
    assert_eq!(owners.len(), 2);
}

#[test]
fn socket_passed_to_a_child_is_owned_by_both_then_by_the_child() {
    let l = listener("127.0.0.1:0", 8);
    let addr = local(&l);
    let me = std::process::id();
    // The child gets a copy of the listening socket as its stdin.
    let copy = l.try_clone().expect("dup");
    let mut child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(copy)))
        .spawn()
        .expect("spawn");
    let kid = child.id();
    let tree = descendants(&[me]);
    assert!(tree.contains(&me) && tree.contains(&kid), "{tree:?}");
    let found = wait_listeners(addr, |l| l.len() == 1);
    let inode = found[0].inode;
    let owners = socket_owners(&[me, kid], None);
    assert_eq!(
        owners
            .get(&inode)
            .map(|p| p.iter().copied().collect::<Vec<_>>()),
        Some(vec![me.min(kid), me.max(kid)])
    );
    drop(l);
    let owners = socket_owners(&[me, kid], None);
    assert_eq!(
        owners
            .get(&inode)
            .map(|p| p.iter().copied().collect::<Vec<_>>()),
        Some(vec![kid])
    );
    // Still listening: the child holds it.
    assert_eq!(wait_listeners(addr, |l| l.len() == 1).len(), 1);
    let fd = Pidfd::open(kid).expect("pidfd");
    child.kill().expect("kill");
    assert!(fd.wait(scaled(Duration::from_secs(10))));
    child.wait().expect("reap");
    // Gone with its last owner.
    assert!(wait_listeners(addr, <[TcpSocket]>::is_empty).is_empty());
}

#[test]
fn a_dual_stack_listener_on_the_ipv6_any_address_is_seen_from_its_ipv4_address() {
    // `[::]` without IPV6_V6ONLY takes IPv4 clients: servers told to listen
    // on `:PORT` do this. Its queue and its IPv4 connections (local address
    // `::ffff:127.0.0.1` in the kernel) must show on 127.0.0.1:PORT.
    let any: SocketAddr = "[::]:0".parse().expect("addr");
    let Ok(s) = Socket::new(Domain::IPV6, Type::STREAM, None) else {
        eprintln!("no IPv6 here; skipped");
        return;
    };
    s.set_only_v6(false).expect("dual stack");
    if s.bind(&any.into()).is_err() {
        eprintln!("no IPv6 here; skipped");
        return;
    }
    s.listen(16).expect("listen");
    let v4: SocketAddr = format!("127.0.0.1:{}", local(&s).port())
        .parse()
        .expect("addr");
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(v4).expect("connect"))
        .collect();
    let found = wait_listeners(v4, |l| l.first().is_some_and(|s| s.rqueue == 3));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].rqueue, found[0].wqueue), (3, 16));
    let est = dump(&Filter::local(v4, States::of(&[TcpState::Established]))).expect("dump");
    assert_eq!(est.len(), 3, "{est:?}");
    drop(clients);
}
