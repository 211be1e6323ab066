//! Old processes of a server reloadbench knows nothing about, counted from
//! its process tree: a `[proxy] kind = "command"` server written here (this
//! test binary re-executed, see [`child_tree_server`]) that works as nginx
//! does. A master holds the listening socket and forks workers that inherit
//! it; on each reload it starts [`PER_GENERATION`] new workers, tells the
//! workers of the generation [`KEEP_OLD`] reloads back to exit, and tells
//! the current ones to close their listening socket and linger (old). So at
//! most `KEEP_OLD` old generations (`KEEP_OLD × PER_GENERATION` processes)
//! are alive at once. It writes down in a ledger when it did each step, and
//! `reloadbench run`'s `old_generations_max`, old processes and the series
//! over time must match it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::generations::GenerationSource;
use support::{reloadbench, scenario_dir};

/// The ledger file of the master (its presence makes this a master).
const SERVER_ENV: &str = "RELOADBENCH_TEST_TREE_SERVER";
/// The case directory (the FIFOs and the workers' control socket).
const DIR_ENV: &str = "RELOADBENCH_TEST_TREE_DIR";
/// The port to listen on.
const PORT_ENV: &str = "RELOADBENCH_TEST_TREE_PORT";
/// The master's control socket (its presence makes this a worker).
const WORKER_ENV: &str = "RELOADBENCH_TEST_TREE_WORKER";
/// Workers per generation.
const PER_GENERATION: usize = 2;
/// Old generations kept alive.
const KEEP_OLD: usize = 2;

/// Entry point of the server's processes (a no-op as a test).
#[test]
fn child_tree_server() {
    if let Ok(ctl) = std::env::var(WORKER_ENV) {
        worker(&ctl);
    } else if let Ok(ledger) = std::env::var(SERVER_ENV) {
        master(&ledger);
    }
}

/// A worker: serves `200 ok` on the listening socket it got as stdin until
/// told over its control connection: `L` close the listening socket, `X`
/// exit (each answered with the monotonic time it was done); exits when
/// the master is gone.
fn worker(ctl_path: &str) {
    let listener = TcpListener::from(std::io::stdin().as_fd().try_clone_to_owned().unwrap());
    let null = std::fs::File::open("/dev/null").unwrap();
    nix::unistd::dup2_stdin(&null).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut listener = Some(listener);
    let mut ctl = UnixStream::connect(ctl_path).unwrap();
    ctl.write_all(&std::process::id().to_ne_bytes()).unwrap();
    loop {
        let (ctl_ready, conn_ready) = {
            let mut fds = vec![PollFd::new(ctl.as_fd(), PollFlags::POLLIN)];
            if let Some(l) = &listener {
                fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            }
            poll(&mut fds, PollTimeout::NONE).unwrap();
            let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), fds.get(1).is_some_and(ready))
        };
        if conn_ready && let Some(l) = &listener {
            while let Ok((mut c, _)) = l.accept() {
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        }
        if ctl_ready {
            let mut cmd = [0u8; 1];
            if ctl.read_exact(&mut cmd).is_err() {
                std::process::exit(0);
            }
            match cmd[0] {
                b'L' => listener = None,
                b'X' => {
                    let _ = ctl.write_all(&monotonic_ns().to_ne_bytes());
                    std::process::exit(0);
                }
                _ => panic!("unknown command"),
            }
            ctl.write_all(&monotonic_ns().to_ne_bytes()).unwrap();
        }
    }
}

/// A worker as its master sees it.
struct Worker {
    child: Child,
    ctl: UnixStream,
    generation: usize,
}

impl Worker {
    fn cmd(&mut self, c: u8) -> u64 {
        self.ctl.write_all(&[c]).unwrap();
        let mut b = [0u8; 8];
        self.ctl.read_exact(&mut b).unwrap();
        u64::from_ne_bytes(b)
    }
}

/// The master: listens, starts generation 1, then reloads once per line
/// written to `reload.fifo` and answers on `done.fifo`. Every step goes to
/// the ledger as `<event> <pid> <generation> <mono ns>`.
fn master(ledger_path: &str) {
    let dir = std::path::PathBuf::from(std::env::var(DIR_ENV).unwrap());
    let port: u16 = std::env::var(PORT_ENV).unwrap().parse().unwrap();
    let mut ledger = std::fs::File::create(ledger_path).unwrap();
    let mut note = |event: &str, pid: u32, generation: usize, t: u64| {
        writeln!(ledger, "{event} {pid} {generation} {t}").unwrap();
    };
    let ctl_path = dir.join("workers.sock");
    let ctl = UnixListener::bind(&ctl_path).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let spawn = |generation: usize, note: &mut dyn FnMut(&str, u32, usize, u64)| {
        let fd: OwnedFd = listener.as_fd().try_clone_to_owned().unwrap();
        let t = monotonic_ns();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_tree_server", "--nocapture"])
            .env_remove(SERVER_ENV)
            .env(WORKER_ENV, &ctl_path)
            .stdin(Stdio::from(fd))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        note("spawn", child.id(), generation, t);
        let (mut c, _) = ctl.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut pid = [0u8; 4];
        c.read_exact(&mut pid).unwrap();
        assert_eq!(u32::from_ne_bytes(pid), child.id());
        Worker {
            child,
            ctl: c,
            generation,
        }
    };
    let reload_fifo = dir.join("reload.fifo");
    let done_fifo = dir.join("done.fifo");
    for f in [&reload_fifo, &done_fifo] {
        nix::unistd::mkfifo(f, nix::sys::stat::Mode::S_IRWXU).unwrap();
    }
    let mut workers: Vec<Worker> = (0..PER_GENERATION).map(|_| spawn(1, &mut note)).collect();
    // Read and write: the FIFO never reads EOF between reloads.
    let reloads = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&reload_fifo)
        .unwrap();
    let mut current = 1;
    for line in BufReader::new(reloads).lines() {
        if line.unwrap().trim() != "R" {
            continue;
        }
        current += 1;
        for _ in 0..PER_GENERATION {
            let w = spawn(current, &mut note);
            workers.push(w);
        }
        // The oldest kept generation exits before the current one turns
        // old: never more than KEEP_OLD old generations at once.
        if let Some(gone) = current.checked_sub(KEEP_OLD + 1).filter(|g| *g > 0) {
            for w in workers.iter_mut().filter(|w| w.generation == gone) {
                // Dated when it was about to exit (its pidfd turns readable
                // then), not when reaped.
                let t = w.cmd(b'X');
                w.child.wait().unwrap();
                note("exit", w.child.id(), gone, t);
            }
            workers.retain(|w| w.generation != gone);
        }
        for w in workers.iter_mut().filter(|w| w.generation == current - 1) {
            let t = w.cmd(b'L');
            note("old", w.child.id(), current - 1, t);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&done_fifo)
            .unwrap()
            .write_all(b"ok\n")
            .unwrap();
    }
}

/// The ledger's state after each step: (time, processes alive, old
/// processes, old generations), the master counted.
fn ledger_states(text: &str) -> Vec<(u64, u32, u32, u32)> {
    let mut alive: BTreeMap<u32, (usize, bool)> = BTreeMap::new();
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let (pid, generation, t): (u32, usize, u64) = (
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        match f[0] {
            "spawn" => {
                alive.insert(pid, (generation, false));
            }
            "old" => {
                alive.insert(pid, (generation, true));
            }
            "exit" => {
                alive.remove(&pid);
            }
            other => panic!("ledger event {other}"),
        }
        let old: Vec<usize> = alive
            .values()
            .filter(|(_, o)| *o)
            .map(|(g, _)| *g)
            .collect();
        let gens: std::collections::BTreeSet<usize> = old.iter().copied().collect();
        out.push((
            t,
            1 + alive.len() as u32,
            old.len() as u32,
            gens.len() as u32,
        ));
    }
    out
}

#[test]
fn heavy_old_processes_of_a_command_server_are_counted_from_its_process_tree() {
    let exe = std::env::current_exe().unwrap();
    let text = format!(
        r#"
[load]
concurrency = 2
duration = "3500ms"
keep_alive = false

[proxy]
kind = "command"
binary = "env"
start = "env {SERVER_ENV}={{dir}}/ledger.txt {DIR_ENV}={{dir}} {PORT_ENV}={{listen_port}} {exe} --exact child_tree_server --nocapture"
ready = {{ port = true, timeout = "20s" }}
stop = {{ signal = "TERM" }}
stop_timeout = "10s"

[proxy.reload]
next = {{ run = "echo R > {{dir}}/reload.fifo && read x < {{dir}}/done.fifo", timeout = "10s" }}

[[case]]
name = "forking server"
actions = [{{ every = "700ms", do = "reload", variant = "next" }}]
"#,
        exe = exe.display()
    );
    let dir = scenario_dir("tree.toml", &text);
    let run = reloadbench(&dir, &["run", "tree.toml", "-q"], Duration::from_secs(120));
    run.assert_code(0);
    run.assert_no_process_left();
    let report = run.results();
    let case = &report.cases[0];
    let reloads = case.actions.iter().filter(|a| a.ok).count();
    assert!(reloads > KEEP_OLD, "{reloads} reloads");
    let ledger = std::fs::read_to_string(run.case_dir(0).join("ledger.txt")).unwrap();
    let states = ledger_states(&ledger);
    // What the server did: at most KEEP_OLD generations old at once.
    let did_old = states.iter().map(|s| s.2).max().unwrap();
    let did_gens = states.iter().map(|s| s.3).max().unwrap();
    assert_eq!(did_gens as usize, KEEP_OLD, "{ledger}");
    assert_eq!(did_old as usize, KEEP_OLD * PER_GENERATION, "{ledger}");
    // What reloadbench counted.
    let s = case.generations.as_ref().expect("a generations series");
    assert_eq!(s.source, GenerationSource::ProcessTree);
    let shown = format!(
        "{ledger}\nseries: {s:?}\nload start {}",
        case.load.started_mono_ns
    );
    assert_eq!(
        case.old_generations_max,
        Some(u64::from(did_gens)),
        "{shown}"
    );
    assert_eq!(s.old_generations_max, u64::from(did_gens), "{shown}");
    assert_eq!(s.old_processes_max, u64::from(did_old), "{shown}");
    // Every point of the series is a state the server was in within 150 ms
    // of it (a look takes time, and on a loaded machine a process's exit or
    // its closing of a socket can come a while after the server noted it;
    // its states last 700 ms, between reloads).
    let zero = case.load.started_mono_ns;
    let tol = 150_000_000;
    for p in &s.points {
        let t = zero + p.t_ns;
        let before = states
            .iter()
            .take_while(|st| st.0 <= t.saturating_sub(tol))
            .last()
            .map_or((1 + PER_GENERATION as u32, 0, 0), |st| (st.1, st.2, st.3));
        let near = states
            .iter()
            .filter(|st| st.0 > t.saturating_sub(tol) && st.0 <= t + tol)
            .map(|st| (st.1, st.2, st.3));
        // The reload's own shell (`run`, a child of the harness) is in the
        // tree while a reload runs: one process more. A look can also come
        // short of processes (the tree is read from the kernel's children
        // lists while a generation exits and another starts: twice in fresh-
        // clone CI runs, 5 where the server had 7, its old ones counted
        // right); it never counts one the server did not have.
        let procs = p.processes.unwrap();
        assert!(
            std::iter::once(before).chain(near).any(|st| {
                (st.1, st.2) == (p.old_processes, p.old_generations) && procs <= st.0 + 1
            }),
            "point {p:?} at {t}: no such state near it in the ledger\n{ledger}\nseries: {s:?}"
        );
    }
    // The series went through each step of the pile-up.
    for old in 1..=KEEP_OLD {
        let procs = (old * PER_GENERATION) as u32;
        assert!(
            s.points.iter().any(|p| p.old_processes == procs),
            "{procs} old processes never seen: {s:?}"
        );
    }
}
