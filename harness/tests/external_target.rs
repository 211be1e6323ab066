//! `[proxy] kind = "external"` end to end: the test itself starts the
//! built-in origin and a refproxy master (reloadbench does not), and
//! `reloadbench run` attaches to it, reloads it once per case by `exec`
//! (`kill -HUP` of the pid in a file) and by `signal` + `pid_file`, and
//! must attribute what the kernel showed to those actions. Every count is
//! checked against the servers' own: the origin's ledger and refproxy's
//! per-generation counters and reload events. Afterwards the server must
//! still be running: reloadbench never stops what it did not start.
//!
//! Also: `run` refuses a target outside loopback before anything starts
//! (no load is sent anywhere), a signal action refuses the harness, its
//! watchdog and a pid file that is not one pid (the run goes on), a server
//! that is not ready fails the run with exit 1, and `init` writes scenarios
//! that validate.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reloadbench_model::event::{Event, EventKind};
use reloadbench_model::run::ActionKind;
use support::{reloadbench, scaled, scenario_dir};

/// A process the test started in its own group; killed (the whole group)
/// if the test ends without stopping it.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn spawn(program: &Path, args: &[&str]) -> Server {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the first `ready` event and returns its address.
    fn ready(&mut self) -> SocketAddr {
        let deadline = std::time::Instant::now() + scaled(Duration::from_secs(20));
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).expect("no ready event");
            self.seen.push(line.clone());
            if let Ok(Event {
                kind: EventKind::Ready { addrs, .. },
                ..
            }) = Event::parse_line(&line)
            {
                return addrs[0].parse().unwrap();
            }
        }
    }

    /// SIGTERM to the group, wait for the exit (bounded); every event line
    /// it printed.
    fn stop(mut self) -> Vec<Event> {
        let _ = killpg(Pid::from_raw(self.pid() as i32), Signal::SIGTERM);
        let deadline = std::time::Instant::now() + scaled(Duration::from_secs(20));
        // Its stdout ends when every process of the group is gone.
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("server did not stop"),
            }
        }
        let _ = self.child.wait();
        self.seen
            .iter()
            .filter_map(|l| Event::parse_line(l).ok())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = killpg(Pid::from_raw(self.pid() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn refproxy() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_reloadbench")).with_file_name("refproxy");
    assert!(
        p.exists(),
        "{} not built (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// Starts the built-in origin (its ledger in `dir/origin-ledger.json`) and
/// a refproxy master in front of it (`extra` appended to its config);
/// returns both and the master's address.
fn start_servers(dir: &Path, extra: &str) -> (Server, Server, SocketAddr) {
    let ledger = dir.join("origin-ledger.json");
    let mut origin = Server::spawn(
        Path::new(env!("CARGO_BIN_EXE_reloadbench")),
        &[
            "origin",
            "--listen",
            "127.0.0.1:0",
            "--body-bytes",
            "512",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    );
    let origin_addr = origin.ready();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:0\"]\norigins = [\"{origin_addr}\"]\n\
             control_socket = \"{}\"\n\n[drain]\ndeadline = \"10s\"\nidle_close = \"1s\"\n{extra}",
            dir.join("refproxy.sock").display()
        ),
    )
    .unwrap();
    let mut proxy = Server::spawn(
        &refproxy(),
        &["--config", config.to_str().unwrap(), "--master"],
    );
    let addr = proxy.ready();
    (origin, proxy, addr)
}

/// A CA and a certificate it signs for `localhost`, as (ca.pem, server.pem, server.key) in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&files.0, ca.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

#[test]
fn heavy_external_https_target_is_verified_against_the_users_ca() {
    let work = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(work.path());
    let tls = format!(
        "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let (origin, proxy, addr) = start_servers(work.path(), &tls);
    let scenario = format!(
        r#"
[load]
concurrency = 4
duration = "2s"
keep_alive = false
timeout = "5s"
tls = true

[proxy]
kind = "external"
target = "https://localhost:{port}/"
ca_file = "{ca}"

[[case]]
name = "signal"
actions = [{{ at = "700ms", do = "signal", signal = "HUP", pid_command = "cat {{scenario_dir}}/master.pid" }}]
expect = {{ failed = 0, tls_failed = 0 }}
"#,
        port = addr.port(),
        ca = ca.display()
    );
    let dir = scenario_dir("https.toml", &scenario);
    std::fs::write(dir.path().join("master.pid"), format!("{}\n", proxy.pid())).unwrap();
    let run = reloadbench(&dir, &["run", "https.toml", "-q"], Duration::from_secs(120));
    run.assert_code(0);
    let events = proxy.stop();
    let _ = origin.stop();
    let r = run.results();
    let c = &r.cases[0];
    let tls = c.load.tls.as_ref().expect("TLS counts");
    // Every connection a verified handshake (no keep-alive), none failed.
    assert_eq!(tls.failed, 0);
    assert!(tls.full + tls.resumed >= c.load.ok, "{tls:?}");
    assert!(c.actions[0].ok, "{:?}", c.actions[0]);
    let reloads = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ReloadDone { .. }))
        .count();
    assert_eq!(reloads, 1);
    let completed: u64 = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Counters { counters, .. } => Some(counters.completed),
            _ => None,
        })
        .sum();
    assert_eq!(completed, c.load.ok);
    run.assert_no_process_left();
}

#[test]
fn heavy_external_refproxy_reloaded_by_exec_and_by_signal_to_a_pid_file() {
    let work = tempfile::tempdir().unwrap();
    let ledger = work.path().join("origin-ledger.json");
    let (origin, proxy, addr) = start_servers(work.path(), "");
    let master = proxy.pid();

    let scenario = format!(
        r#"
name = "external"

[load]
concurrency = 4
duration = "2500ms"
keep_alive = false
timeout = "5s"

[proxy]
kind = "external"
target = "http://{addr}/"

[[case]]
name = "exec"
actions = [{{ at = "800ms", do = "exec", command = "kill -HUP $(cat {{scenario_dir}}/master.pid)" }}]
expect = {{ failed = 0, reload_failed = 0 }}

[[case]]
name = "signal"
actions = [{{ at = "800ms", do = "signal", signal = "HUP", pid_file = "master.pid" }}]
expect = {{ failed = 0, reload_failed = 0 }}
"#
    );
    let dir = scenario_dir("external.toml", &scenario);
    std::fs::write(dir.path().join("master.pid"), format!("{master}\n")).unwrap();
    let run = reloadbench(
        &dir,
        &["run", "external.toml", "-q"],
        Duration::from_secs(120),
    );
    run.assert_code(0);

    // reloadbench started nothing of the server and left it serving.
    assert!(!run.started_pids().contains(&master));
    assert!(
        std::net::TcpStream::connect(addr).is_ok(),
        "the server no longer accepts"
    );
    let events = proxy.stop();
    let _ = origin.stop();

    let r = run.results();
    assert_eq!(
        r.environment.external_targets,
        [format!("http://{addr}/ ({addr})")]
    );
    let md = std::fs::read_to_string(run.out.join("report.md")).unwrap();
    assert!(
        md.contains(&format!("| external target | http://{addr}/ ({addr}) |")),
        "{md}"
    );
    // refproxy's own account of the two reloads: the new worker of each.
    let reloads: Vec<u32> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ReloadDone { new_pid, .. } => Some(new_pid),
            _ => None,
        })
        .collect();
    assert_eq!(reloads.len(), 2, "{events:?}");
    assert_eq!(r.cases.len(), 2);
    let mut ok = 0;
    for (c, new_worker) in r.cases.iter().zip(&reloads) {
        assert_eq!(c.load.failed, 0, "{}", c.name);
        assert!(c.load.ok > 0, "{}", c.name);
        ok += c.load.ok;
        assert_eq!(c.actions.len(), 1, "{}", c.name);
        let a = &c.actions[0];
        assert!(a.ok, "{}: {a:?}", c.name);
        // The user's command and signal are what replaces this server.
        assert_eq!(a.kind, ActionKind::Reload, "{a:?}");
        assert_eq!(c.expectations.len(), 2);
        assert!(a.ready_ns.is_some_and(|t| t >= a.trigger_ns), "{a:?}");
        // The kernel's view, attributed to the action: the worker refproxy
        // says it started replaced one other worker; the master (which
        // holds the socket throughout) is neither.
        let p = a.observed.as_ref().expect("observed phases");
        assert_eq!(p.new_pids, [*new_worker], "{}: {p:?}", c.name);
        assert_eq!(p.old_pids.len(), 1, "{}: {p:?}", c.name);
        assert!(!p.old_pids.contains(&master) && !p.new_pids.contains(&master));
        let t = [
            p.new_listening_ns,
            p.old_stopped_accepting_ns,
            p.old_exited_ns,
        ];
        assert!(t.iter().all(Option::is_some), "{}: {p:?}", c.name);
        assert!(t[0] <= t[1] && t[1] <= t[2], "{}: {p:?}", c.name);
    }
    // Each old worker of a case is the new worker of the one before.
    assert_eq!(
        r.cases[1].actions[0].observed.as_ref().unwrap().old_pids,
        [reloads[0]]
    );

    // Counts: the load's ok responses are exactly what refproxy completed
    // and what the origin answered (readiness and accept checks send no
    // request).
    let completed: u64 = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Counters { counters, .. } => Some(counters.completed),
            _ => None,
        })
        .sum();
    assert_eq!(completed, ok);
    let counts = reloadbench_harness::read_origin(&ledger).unwrap();
    assert_eq!(counts.answered, ok);
    assert_eq!(counts.answered_without_id, 0);
    // Each case numbers its requests from the start and both went to this
    // one origin: the ids of the shorter case are answered twice, no others.
    let shorter = r.cases.iter().map(|c| c.load.ok).min().unwrap();
    assert_eq!(counts.duplicate_ids, shorter);
    run.assert_no_process_left();
}

#[test]
fn heavy_signals_to_the_harness_its_watchdog_or_a_proc_file_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let (origin, proxy, addr) = start_servers(work.path(), "");
    let scenario = format!(
        r#"
name = "refused"

[load]
concurrency = 2
duration = "1500ms"
keep_alive = false
timeout = "5s"

[proxy]
kind = "external"
target = "http://{addr}/"

[[case]]
name = "a"
actions = [
  {{ at = "300ms", do = "signal", signal = "TERM", pid_command = "echo $PPID" }},
  {{ at = "600ms", do = "signal", signal = "KILL", pid_command = "pgrep -f -- '__watchdog --harness '$PPID" }},
  {{ at = "900ms", do = "signal", signal = "TERM", pid_file = "/proc/self/stat" }},
]
"#
    );
    let dir = scenario_dir("refused.toml", &scenario);
    let run = reloadbench(&dir, &["run", "refused.toml"], Duration::from_secs(120));
    // The harness was neither killed nor stopped: it finished the run.
    assert!(
        matches!(run.code, Some(0 | 1)),
        "{:?}: {}",
        run.code,
        run.stderr
    );
    let r = run.results();
    let a = &r.cases[0].actions;
    assert_eq!(a.len(), 3, "{a:?}");
    for (x, want) in a
        .iter()
        .zip(["the harness itself", "the run's watchdog", "pid file"])
    {
        assert!(!x.ok, "{x:?}");
        let e = x.error.as_deref().unwrap_or_default();
        assert!(e.contains(want), "{want}: {e}");
    }
    assert!(
        std::net::TcpStream::connect(addr).is_ok(),
        "the server no longer accepts"
    );
    let _ = proxy.stop();
    let _ = origin.stop();
    // The watchdog lived to clean up after the run.
    run.assert_no_process_left();
}

#[test]
fn a_target_outside_loopback_is_refused_before_anything_starts() {
    // TEST-NET-1 (192.0.2.0/24): never routed; nothing may be sent there.
    let dir = scenario_dir(
        "remote.toml",
        r#"
[load]
concurrency = 2
requests = 10

[proxy]
kind = "external"
target = "http://192.0.2.1:8080/"

[[case]]
name = "a"
"#,
    );
    let run = reloadbench(&dir, &["run", "remote.toml"], Duration::from_secs(30));
    run.assert_code(2);
    assert!(run.stderr.contains("load test"), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-remote"), "{}", run.stderr);
    // Refused before the run directory (or any process) exists.
    assert!(!run.out.exists());
}

#[test]
fn an_external_server_that_is_not_ready_fails_the_run_not_the_harness() {
    // A loopback port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = scenario_dir(
        "down.toml",
        &format!(
            r#"
[load]
concurrency = 1
requests = 5

[proxy]
kind = "external"
target = "http://127.0.0.1:{port}/"
ready = {{ port = true, timeout = "300ms" }}

[[case]]
name = "a"
"#
        ),
    );
    let run = reloadbench(&dir, &["run", "down.toml"], Duration::from_secs(60));
    run.assert_code(1);
    assert!(
        run.stderr.contains("the external server is not ready"),
        "{}",
        run.stderr
    );
}

#[test]
fn init_writes_a_scenario_that_validates_for_every_peer() {
    for peer in ["refproxy", "haproxy", "nginx", "external"] {
        let dir = tempfile::tempdir().unwrap();
        let run = reloadbench(&dir, &["init", peer], Duration::from_secs(30));
        run.assert_code(0);
        let scenario = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("run it: reloadbench run "))
            .unwrap_or_else(|| panic!("{peer}: {}", run.stdout))
            .to_owned();
        let v = reloadbench(&dir, &["validate", &scenario], Duration::from_secs(30));
        v.assert_code(0);
        assert!(v.stdout.contains(": ok ("), "{peer}: {}", v.stdout);
        // A second init keeps the user's files.
        let again = reloadbench(&dir, &["init", peer], Duration::from_secs(30));
        again.assert_code(2);
        assert!(again.stderr.contains("--force"), "{}", again.stderr);
    }
    let dir = tempfile::tempdir().unwrap();
    let list = reloadbench(&dir, &["init", "--list"], Duration::from_secs(30));
    list.assert_code(0);
    for peer in ["refproxy", "haproxy", "nginx", "external"] {
        assert!(list.stdout.contains(peer), "{}", list.stdout);
    }
}
