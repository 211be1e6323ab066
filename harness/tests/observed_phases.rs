//! Observed reload phases and accept queues against a server that does not
//! cooperate: "holder" processes (this test binary re-executed, see
//! [`child_holder`]) that get a listening socket at spawn (fork-inherit,
//! as their stdin), accept, close their listening socket, close their
//! connections and exit on command, each time reporting when they did it.
//! The sampler must see each phase after the holder did it and before the
//! next step, and see none of what nobody did.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reloadbench_harness::{Sampler, SamplerConfig, case_evidence, observe_phases as observe};
use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::test_timing::scaled;
use socket2::{Domain, Socket, Type};

const CTL_ENV: &str = "RELOADBENCH_TEST_HOLDER_CTL";

/// Entry point of a holder process (a no-op as a test): holds the listening
/// socket it got as stdin and obeys one-byte commands on the control
/// socket, answering each with the monotonic time at which it was done:
/// `A` accept one connection, `L` close the listening socket, `C` close the
/// connections, `X` exit.
#[test]
fn child_holder() {
    let Ok(path) = std::env::var(CTL_ENV) else {
        return;
    };
    let listener = TcpListener::from(std::io::stdin().as_fd().try_clone_to_owned().unwrap());
    // Only `listener` refers to the socket from now on.
    let null = std::fs::File::open("/dev/null").unwrap();
    nix::unistd::dup2_stdin(&null).unwrap();
    let mut listener = Some(listener);
    let mut conns: Vec<TcpStream> = Vec::new();
    let mut ctl = UnixStream::connect(path).unwrap();
    ctl.write_all(&monotonic_ns().to_ne_bytes()).unwrap();
    let mut cmd = [0u8; 1];
    while ctl.read_exact(&mut cmd).is_ok() {
        match cmd[0] {
            b'A' => conns.push(listener.as_ref().unwrap().accept().unwrap().0),
            b'L' => listener = None,
            b'C' => conns.clear(),
            b'X' => {
                ctl.write_all(&monotonic_ns().to_ne_bytes()).unwrap();
                std::process::exit(0);
            }
            _ => panic!("unknown command"),
        }
        ctl.write_all(&monotonic_ns().to_ne_bytes()).unwrap();
    }
}

/// A holder process; killed and reaped on drop.
struct Holder {
    child: Child,
    ctl: UnixStream,
    /// When it reported holding its socket.
    started: u64,
}

impl Holder {
    fn spawn(ctl: &UnixListener, path: &std::path::Path, socket: &Socket) -> Holder {
        let fd: OwnedFd = socket.try_clone().unwrap().into();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_holder", "--nocapture"])
            .env(CTL_ENV, path)
            .stdin(Stdio::from(fd))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (ctl, _) = ctl.accept().unwrap();
        ctl.set_read_timeout(Some(scaled(Duration::from_secs(20))))
            .unwrap();
        let mut h = Holder {
            child,
            ctl,
            started: 0,
        };
        h.started = h.reply();
        h
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn reply(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.ctl.read_exact(&mut b).expect("holder answered");
        u64::from_ne_bytes(b)
    }

    /// Sends a command; returns when the holder did it.
    fn cmd(&mut self, c: u8) -> u64 {
        self.ctl.write_all(&[c]).unwrap();
        self.reply()
    }

    /// Tells it to exit and reaps it; returns the time it said it exited.
    fn exit(&mut self) -> u64 {
        let t = self.cmd(b'X');
        self.child.wait().unwrap();
        t
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listener(addr: SocketAddr, backlog: i32) -> Socket {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&addr.into()).unwrap();
    s.listen(backlog).unwrap();
    s
}

fn local(s: &Socket) -> SocketAddr {
    s.local_addr().unwrap().as_socket().unwrap()
}

/// The test's world: a control socket, the pids the sampler looks at.
struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    ctl: UnixListener,
    pids: Arc<Mutex<Vec<u32>>>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let ctl = UnixListener::bind(&path).unwrap();
        World {
            _dir: dir,
            path,
            ctl,
            pids: Arc::default(),
        }
    }

    fn holder(&self, socket: &Socket) -> Holder {
        let h = Holder::spawn(&self.ctl, &self.path, socket);
        self.pids.lock().unwrap().push(h.pid());
        h
    }

    fn sampler(&self, addr: SocketAddr) -> Sampler {
        let pids = self.pids.clone();
        Sampler::start(
            SamplerConfig::new(addr, Vec::new()),
            Box::new(move || pids.lock().unwrap().clone()),
        )
        .unwrap()
    }
}

/// Waits until the sampler has taken `n` more samples (each one started
/// after this call, so it shows what was done before it).
fn settle(s: &Sampler, n: u64) {
    let want = s.samples_taken() + n + 1;
    let until = Instant::now() + scaled(Duration::from_secs(20));
    while s.samples_taken() < want {
        assert!(Instant::now() < until, "the sampler stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `t` lies in `[lo, hi)`.
fn within(what: &str, t: Option<u64>, lo: u64, hi: u64) {
    let t = t.unwrap_or_else(|| panic!("{what}: not observed"));
    assert!(
        lo <= t && t < hi,
        "{what}: observed at {t}, done at {lo}, next step at {hi}"
    );
}

#[tokio::test]
async fn socket_passed_to_a_new_process_is_observed_phase_by_phase() {
    let w = World::new();
    let l = listener("127.0.0.1:0".parse().unwrap(), 64);
    let addr = local(&l);
    let mut old = w.holder(&l);
    let _c1 = TcpStream::connect(addr).unwrap();
    let _c2 = TcpStream::connect(addr).unwrap();
    old.cmd(b'A');
    old.cmd(b'A');
    let sampler = w.sampler(addr);
    settle(&sampler, 2);
    sampler.trigger().await;
    // The same socket gains an owner (fork-inherit, as a passed fd would).
    let t_pass = monotonic_ns();
    let new = w.holder(&l);
    settle(&sampler, 2);
    let t_stop = old.cmd(b'L');
    settle(&sampler, 2);
    let t_drain = old.cmd(b'C');
    settle(&sampler, 2);
    let t_exit = old.exit();
    settle(&sampler, 2);
    let t_end = monotonic_ns();
    let rec = sampler.finish();
    let p = observe(
        &rec.samples,
        &rec.exits,
        rec.triggers[0],
        rec.samples.len(),
        0,
    );
    assert_eq!(p.old_pids, vec![old.pid()]);
    assert_eq!(p.new_pids, vec![new.pid()]);
    within("new listening", p.new_listening_ns, t_pass, t_stop);
    within(
        "old stopped accepting",
        p.old_stopped_accepting_ns,
        t_stop,
        t_drain,
    );
    within("old drained", p.old_drained_ns, t_drain, t_exit);
    within("old exited", p.old_exited_ns, t_exit, t_end);
    // One socket throughout, its owners changing.
    let e = case_evidence(&rec, 0);
    assert_eq!(e.queues.len(), 1, "{:?}", e.queues);
    let owners: Vec<Vec<u32>> = e.queues[0].owners.iter().map(|(_, o)| o.clone()).collect();
    let (a, b) = (old.pid(), new.pid());
    assert_eq!(owners, vec![vec![a], vec![a.min(b), a.max(b)], vec![b]]);
    // The old process's connections while it drained: 2, then none.
    let conns = e.connections.iter().find(|c| c.pid == a).expect("counted");
    assert_eq!(
        conns.counts.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        vec![2, 0]
    );
}

#[tokio::test]
async fn closed_then_bound_again_shows_the_gap_where_nobody_listens() {
    let w = World::new();
    let l = listener("127.0.0.1:0".parse().unwrap(), 64);
    let addr = local(&l);
    let mut old = w.holder(&l);
    drop(l);
    let _c = TcpStream::connect(addr).unwrap();
    old.cmd(b'A');
    let sampler = w.sampler(addr);
    settle(&sampler, 2);
    sampler.trigger().await;
    let t_stop = old.cmd(b'L');
    settle(&sampler, 2);
    // Its connection goes with it.
    let t_exit = old.exit();
    settle(&sampler, 2);
    let t_bind = monotonic_ns();
    let l2 = listener(addr, 64);
    let new = w.holder(&l2);
    drop(l2);
    settle(&sampler, 2);
    let t_end = monotonic_ns();
    let rec = sampler.finish();
    let p = observe(
        &rec.samples,
        &rec.exits,
        rec.triggers[0],
        rec.samples.len(),
        0,
    );
    assert_eq!(p.old_pids, vec![old.pid()]);
    assert_eq!(p.new_pids, vec![new.pid()]);
    within(
        "old stopped accepting",
        p.old_stopped_accepting_ns,
        t_stop,
        t_exit,
    );
    within("old drained", p.old_drained_ns, t_exit, t_bind);
    within("old exited", p.old_exited_ns, t_exit, t_bind);
    within("new listening", p.new_listening_ns, t_bind, t_end);
    let e = case_evidence(&rec, 0);
    assert_eq!(e.queues.len(), 2, "a new socket: {:?}", e.queues);
}

#[tokio::test]
async fn a_server_that_keeps_listening_shows_no_phase() {
    let w = World::new();
    let l = listener("127.0.0.1:0".parse().unwrap(), 64);
    let addr = local(&l);
    let _old = w.holder(&l);
    let sampler = w.sampler(addr);
    settle(&sampler, 2);
    sampler.trigger().await;
    settle(&sampler, 5);
    let rec = sampler.finish();
    let p = observe(
        &rec.samples,
        &rec.exits,
        rec.triggers[0],
        rec.samples.len(),
        0,
    );
    assert!(p.old_pids.is_empty() && p.new_pids.is_empty(), "{p:?}");
    assert_eq!(
        (
            p.new_listening_ns,
            p.old_stopped_accepting_ns,
            p.old_drained_ns,
            p.old_exited_ns
        ),
        (None, None, None, None)
    );
}

/// A naive reload by hand: a second SO_REUSEPORT socket, then the old one
/// closed with connections in its accept queue. The sampler sees the queue
/// at its known depth, and the clients of those connections are reset.
#[tokio::test]
async fn queue_of_known_depth_is_seen_and_reset_when_its_socket_closes() {
    const QUEUED: usize = 7;
    let w = World::new();
    let l = listener("127.0.0.1:0".parse().unwrap(), 64);
    let addr = local(&l);
    let mut old = w.holder(&l);
    drop(l);
    let sampler = w.sampler(addr);
    settle(&sampler, 1);
    // Nobody accepts: they wait in the old socket's queue.
    let mut clients: Vec<TcpStream> = (0..QUEUED)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    settle(&sampler, 2);
    sampler.trigger().await;
    let t_new = monotonic_ns();
    let l2 = listener(addr, 32);
    let new = w.holder(&l2);
    drop(l2);
    settle(&sampler, 2);
    let t_stop = old.cmd(b'L');
    settle(&sampler, 2);
    let t_end = monotonic_ns();
    let rec = sampler.finish();
    let p = observe(
        &rec.samples,
        &rec.exits,
        rec.triggers[0],
        rec.samples.len(),
        0,
    );
    assert_eq!(p.old_pids, vec![old.pid()]);
    assert_eq!(p.new_pids, vec![new.pid()]);
    within("new listening", p.new_listening_ns, t_new, t_stop);
    within(
        "old stopped accepting",
        p.old_stopped_accepting_ns,
        t_stop,
        t_end,
    );
    // It held no connection (none was accepted): drained when it stopped.
    assert_eq!(p.old_drained_ns, p.old_stopped_accepting_ns);
    // Still running: its exit is not observed, and not borrowed.
    assert_eq!(p.old_exited_ns, None);
    let e = case_evidence(&rec, 0);
    assert_eq!(e.queues.len(), 2, "{:?}", e.queues);
    let (q_old, q_new) = (&e.queues[0], &e.queues[1]);
    let q_old = if q_old.owners[0].1 == vec![old.pid()] {
        q_old
    } else {
        q_new
    };
    assert_eq!(q_old.max_depth, QUEUED as u32);
    assert_eq!(q_old.backlog, 64);
    assert_eq!(e.max_depth(), QUEUED as u32);
    assert!(
        q_old.last_seen_ns < t_stop + 1,
        "the old socket outlived its close"
    );
    // Independent count: every queued client was reset.
    let mut reset = 0;
    for c in &mut clients {
        c.set_read_timeout(Some(scaled(Duration::from_secs(10))))
            .unwrap();
        let mut b = [0u8; 1];
        if matches!(c.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset) {
            reset += 1;
        }
    }
    assert_eq!(reset, QUEUED);
}
