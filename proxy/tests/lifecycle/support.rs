//! Test support: a refproxy process in its own process group (killed with it on drop),
//! its events, its logs, configs in a temp dir, an in-process origin, one-shot requests.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use reloadbench_model::event::{Event, EventKind};
use reloadbench_origin::{Origin, OriginConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The refproxy binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_refproxy");

/// Seconds scaled by the slow-machine multiplier (`RELOADBENCH_TEST_SLOW`).
pub(crate) use reloadbench_model::test_timing::scaled_secs as scaled;

/// A temp dir holding configs, control sockets and logs of one test.
pub(crate) struct Scratch {
    pub(crate) dir: tempfile::TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn control(&self) -> PathBuf {
        self.path("ctl.sock")
    }

    /// Writes a config file and returns its path.
    pub(crate) fn config(&self, name: &str, c: &Conf) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, c.toml(&self.control())).expect("write config");
        p
    }
}

/// The settings tests vary.
#[derive(Debug, Clone)]
pub(crate) struct Conf {
    pub(crate) listen: SocketAddr,
    pub(crate) origin: SocketAddr,
    pub(crate) drain_deadline: Duration,
    pub(crate) idle_close: Duration,
    pub(crate) ready_timeout: Duration,
    pub(crate) takeover_timeout: Duration,
    pub(crate) max_old: u32,
    /// `drain.tunnels`, when set.
    pub(crate) tunnels: Option<&'static str>,
}

impl Conf {
    pub(crate) fn new(origin: SocketAddr) -> Conf {
        Conf {
            listen: "127.0.0.1:0".parse().expect("addr"),
            origin,
            // The limits that must not run out in a test are scaled for slow machines;
            // idle_close is what ends a drain, so it stays short.
            drain_deadline: scaled(10),
            idle_close: Duration::from_secs(2),
            ready_timeout: scaled(10),
            takeover_timeout: scaled(1),
            max_old: 8,
            tunnels: None,
        }
    }

    pub(crate) fn toml(&self, control: &Path) -> String {
        format!(
            "listen = [\"{}\"]\norigins = [\"{}\"]\ncontrol_socket = \"{}\"\ngeneration_header = true\n\
             [drain]\ndeadline = \"{}ms\"\nidle_close = \"{}ms\"\n{}\
             [reload]\nready_timeout = \"{}ms\"\ntakeover_timeout = \"{}ms\"\nmax_old_generations = {}\n",
            self.listen,
            self.origin,
            control.display(),
            self.drain_deadline.as_millis(),
            self.idle_close.as_millis(),
            self.tunnels
                .map(|t| format!("tunnels = \"{t}\"\n"))
                .unwrap_or_default(),
            self.ready_timeout.as_millis(),
            self.takeover_timeout.as_millis(),
            self.max_old
        )
    }
}

/// An in-process origin on port 0 with a small body.
pub(crate) async fn origin(body: usize, delay: Option<Duration>) -> Origin {
    Origin::bind(OriginConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        body_bytes: body,
        delay,
        ..OriginConfig::default()
    })
    .await
    .expect("origin")
}

/// A refproxy process (own process group), its events and its stderr log.
pub(crate) struct Proxy {
    child: tokio::process::Child,
    pub(crate) pid: u32,
    pgid: Pid,
    events: mpsc::UnboundedReceiver<Event>,
    pub(crate) seen: Arc<Mutex<Vec<Event>>>,
    /// The task reading stdout; it ends at EOF.
    reader: Option<tokio::task::JoinHandle<()>>,
    stderr: PathBuf,
    /// Lines of stderr as they come, when asked for at spawn.
    log_lines: Option<mpsc::UnboundedReceiver<String>>,
}

/// How to spawn a refproxy, beyond its arguments.
#[derive(Default)]
pub(crate) struct Spawn<'a> {
    /// `NOTIFY_SOCKET` for the child (removed when `None`).
    pub(crate) notify: Option<&'a Path>,
    /// More environment variables.
    pub(crate) env: &'a [(&'a str, &'a str)],
    /// Run in the child between fork and exec (e.g. a smaller fd limit): only plain
    /// system calls are safe there.
    pub(crate) pre_exec: Option<fn() -> std::io::Result<()>>,
    /// Stderr is also readable line by line, as it comes ([`Proxy::log_lines`]).
    pub(crate) stderr_lines: bool,
}

/// Copies the lines of `r` to `log` (each with its newline) and to the returned channel.
fn tee_lines<R>(r: R, log: std::fs::File) -> mpsc::UnboundedReceiver<String>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut log = tokio::fs::File::from_std(log);
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = log.write_all(format!("{l}\n").as_bytes()).await;
            let _ = log.flush().await;
            let _ = tx.send(l);
        }
    });
    rx
}

impl Proxy {
    /// Spawns `refproxy ARGS` with stdout (events) read by a task and stderr in `log`.
    pub(crate) fn spawn<I, S>(args: I, log: PathBuf) -> Result<Proxy>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Proxy::spawn_env(args, log, None)
    }

    /// Like [`Proxy::spawn`], with `NOTIFY_SOCKET` set to `notify` if given.
    pub(crate) fn spawn_env<I, S>(args: I, log: PathBuf, notify: Option<&Path>) -> Result<Proxy>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Proxy::spawn_with(
            args,
            log,
            Spawn {
                notify,
                ..Spawn::default()
            },
        )
    }

    /// Like [`Proxy::spawn`], as `how` says.
    pub(crate) fn spawn_with<I, S>(args: I, log: PathBuf, how: Spawn<'_>) -> Result<Proxy>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = tokio::process::Command::new(BIN);
        match how.notify {
            Some(p) => cmd.env("NOTIFY_SOCKET", p),
            None => cmd.env_remove("NOTIFY_SOCKET"),
        };
        cmd.envs(how.env.iter().copied());
        if let Some(hook) = how.pre_exec {
            #[allow(unsafe_code)]
            // SAFETY: the hooks tests pass make plain system calls (setrlimit), which are
            // safe between fork and exec.
            unsafe {
                cmd.pre_exec(hook);
            }
        }
        let stderr = if how.stderr_lines {
            Stdio::piped()
        } else {
            Stdio::from(std::fs::File::create(&log)?)
        };
        let mut child = cmd
            .args(args)
            .env("REFPROXY_LOG", "info")
            .process_group(0)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("spawn refproxy")?;
        let pid = child.id().context("exited at spawn")?;
        let out = child.stdout.take().context("stdout")?;
        let log_lines = match child.stderr.take() {
            Some(err) => Some(tee_lines(err, std::fs::File::create(&log)?)),
            None => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match Event::parse_line(&line) {
                    Ok(e) => {
                        seen2.lock().expect("lock").push(e.clone());
                        let _ = tx.send(e);
                    }
                    Err(err) => eprintln!("bad event line {line:?}: {err}"),
                }
            }
        });
        Ok(Proxy {
            child,
            pid,
            pgid: Pid::from_raw(pid as i32),
            events: rx,
            seen,
            reader: Some(reader),
            stderr: log,
            log_lines,
        })
    }

    /// The lines of stderr as they come (spawned with [`Spawn::stderr_lines`]); they are
    /// in the log file too.
    pub(crate) fn log_lines(&mut self) -> &mut mpsc::UnboundedReceiver<String> {
        self.log_lines
            .as_mut()
            .expect("spawned without Spawn::stderr_lines")
    }

    /// Waits for the first event (from now on) matching `pred`.
    pub(crate) async fn wait_event(
        &mut self,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<Event> {
        let within = scaled(20);
        let found = tokio::time::timeout(within, async {
            while let Some(e) = self.events.recv().await {
                if pred(&e) {
                    return Some(e);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(e)) => Ok(e),
            Ok(None) => bail!("stdout closed before {what}\n{}", self.logs()),
            Err(_) => bail!(
                "no {what} within {within:?}\n{}{}",
                self.recent(),
                self.logs()
            ),
        }
    }

    /// Waits for `ready` and returns its generation and first address.
    pub(crate) async fn ready(&mut self) -> Result<(u64, SocketAddr)> {
        let e = self
            .wait_event("ready", |e| matches!(e.kind, EventKind::Ready { .. }))
            .await?;
        match e.kind {
            EventKind::Ready { generation, addrs } => {
                let a = addrs.first().context("no address")?.parse()?;
                Ok((generation, a))
            }
            _ => unreachable!(),
        }
    }

    pub(crate) fn signal(&self, sig: Signal) -> Result<()> {
        kill(self.pgid, sig)?;
        Ok(())
    }

    /// Waits for the process to exit (with a timeout).
    pub(crate) async fn wait_exit(&mut self, within: Duration) -> Result<ExitStatus> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(s) => Ok(s?),
            Err(_) => bail!(
                "pid {} did not exit within {within:?}\n{}",
                self.pid,
                self.logs()
            ),
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub(crate) async fn stop(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        self.wait_exit(scaled(20)).await
    }

    pub(crate) fn logs(&self) -> String {
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!(
            "--- stderr of pid {} ({}):\n{stderr}",
            self.pid,
            self.stderr.display()
        )
    }

    fn recent(&self) -> String {
        let seen = self.events_seen();
        let from = seen.len().saturating_sub(12);
        seen[from..].iter().map(|e| e.to_line()).collect()
    }

    /// Every event the process wrote, once its stdout is closed (call after it exited).
    pub(crate) async fn all_events(&mut self) -> Vec<Event> {
        if let Some(reader) = self.reader.take() {
            tokio::time::timeout(scaled(10), reader)
                .await
                .expect("stdout not closed after the exit")
                .expect("event reader");
        }
        self.events_seen()
    }

    /// The events read so far.
    pub(crate) fn events_seen(&self) -> Vec<Event> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

/// One `GET /` with `Connection: close`; returns the status and the `X-Served-By` header.
pub(crate) async fn get(addr: SocketAddr) -> Result<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf);
        let status = text
            .split_whitespace()
            .nth(1)
            .context("no status")?
            .parse()?;
        let served_by = text
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-served-by")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default();
        anyhow::Ok((status, served_by))
    };
    tokio::time::timeout(scaled(10), fut)
        .await
        .context("GET timed out")?
}

/// Whether a process with this pid still exists (zombies count as gone).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits (bounded) until `pid` is gone.
pub(crate) async fn wait_gone(pid: u32, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while alive(pid) {
        if tokio::time::Instant::now() > deadline {
            bail!("pid {pid} still alive after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Starts a plain proxy from `config` and waits for its ready event.
pub(crate) async fn start_plain(
    s: &Scratch,
    config: &Path,
    log: &str,
) -> Result<(Proxy, SocketAddr)> {
    let mut p = Proxy::spawn([OsStr::new("--config"), config.as_os_str()], s.path(log))?;
    let (generation, addr) = p.ready().await?;
    assert_eq!(generation, 1);
    Ok((p, addr))
}

/// An origin, a scratch directory with a config, and a plain refproxy started from it.
pub(crate) struct Plain {
    /// Kept so that the origin serves as long as the test holds this.
    pub(crate) _origin: Origin,
    pub(crate) s: Scratch,
    pub(crate) cfg: PathBuf,
    pub(crate) proxy: Proxy,
    pub(crate) addr: SocketAddr,
}

/// Starts an origin (100-byte body) and a plain refproxy in front of it, with the config
/// settings `tweak` changes.
pub(crate) async fn plain_with(tweak: impl FnOnce(&mut Conf)) -> Plain {
    let origin = origin(100, None).await;
    let s = Scratch::new();
    let mut conf = Conf::new(origin.addr());
    tweak(&mut conf);
    let cfg = s.config("p.toml", &conf);
    let (proxy, addr) = start_plain(&s, &cfg, "gen1.log").await.unwrap();
    Plain {
        _origin: origin,
        s,
        cfg,
        proxy,
        addr,
    }
}

/// Spawns `refproxy --upgrade-from CTL --mode MODE` (plus extra args).
pub(crate) fn spawn_upgrade(
    s: &Scratch,
    config: &Path,
    mode: &str,
    extra: &[&str],
    log: &str,
) -> Result<Proxy> {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--upgrade-from"),
    ];
    let ctl = s.control();
    args.push(ctl.as_os_str());
    args.push(OsStr::new("--mode"));
    args.push(OsStr::new(mode));
    args.extend(extra.iter().map(OsStr::new));
    Proxy::spawn(args, s.path(log))
}

/// One fd-pass reload of `current`: starts generation `generation`, checks that it
/// reports ready on `addr`, waits for the old one's `reload_done` and its clean
/// exit, and leaves the new one in `current`.
pub(crate) async fn fd_pass_reload(
    s: &Scratch,
    config: &Path,
    current: &mut Proxy,
    generation: u64,
    addr: SocketAddr,
) {
    let mut new =
        spawn_upgrade(s, config, "fd-pass", &[], &format!("gen{generation}.log")).unwrap();
    assert_eq!(new.ready().await.unwrap(), (generation, addr));
    current
        .wait_event("reload_done", is_reload_done)
        .await
        .unwrap();
    let st = current.wait_exit(scaled(20)).await.unwrap();
    assert!(st.success(), "{}", current.logs());
    *current = new;
}

pub(crate) fn is_reload_done(e: &Event) -> bool {
    matches!(e.kind, EventKind::ReloadDone { .. })
}

pub(crate) fn is_reload_failed(e: &Event) -> bool {
    matches!(e.kind, EventKind::ReloadFailed { .. })
}

pub(crate) fn is_exited(e: &Event) -> bool {
    matches!(e.kind, EventKind::Exited { .. })
}

/// How many of `pid`'s fds are listening TCP sockets (IPv4 or IPv6): a handed-over socket
/// that leaked would be counted here.
pub(crate) fn listening_fds(pid: u32) -> usize {
    let mut listening = std::collections::HashSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                listening.insert(format!("socket:[{inode}]"));
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|target| listening.contains(&*target.to_string_lossy()))
                .count()
        })
        .unwrap_or(0)
}

/// Serving threads of a proxy started by these tests: `REFPROXY_THREADS` when set to a
/// positive integer (the proxies inherit the environment), else the available cores.
pub(crate) fn serving_threads() -> usize {
    std::env::var("REFPROXY_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(256)
}

/// Waits (bounded) until process `pid` is stopped by a signal (state `T` in
/// `/proc/PID/stat`), as `--freeze-at` leaves it.
pub(crate) async fn wait_stopped(pid: u32, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if state == Some("T") {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("pid {pid} did not stop within {within:?} (stat: {stat})");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `line` without ANSI colour sequences.
pub(crate) fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut escape = false;
    for c in line.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (false, c) => out.push(c),
            (true, 'm') => escape = false,
            (true, _) => {}
        }
    }
    out
}

/// The number after `suppressed=` in a log line.
pub(crate) fn suppressed(line: &str) -> Option<u64> {
    let line = plain(line);
    let rest = line.split("suppressed=").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
