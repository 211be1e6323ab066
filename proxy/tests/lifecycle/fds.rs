//! Running out of file descriptors: accept fails (EMFILE) for as long as connections wait
//! in the backlog; refproxy logs that at most once a second, with a count of the rest.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reloadbench_model::event::{Event, EventKind};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::support::{BIN, Scratch, origin, scaled};

/// Kills the process group of a spawned refproxy when dropped.
struct Group(Pid);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

/// Lines of a child's output, as they come.
fn lines<R>(r: R) -> mpsc::UnboundedReceiver<String>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// `line` without ANSI colour sequences.
fn plain(line: &str) -> String {
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
fn suppressed(line: &str) -> Option<u64> {
    let line = plain(line);
    let rest = line.split("suppressed=").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn accept_errors_out_of_fds_are_logged_once_a_second_with_a_count() {
    let s = Scratch::new();
    let origin = origin(10, None).await;
    let cfg = s.path("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:0\"]\norigins = [\"{}\"]\n",
            origin.addr()
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--config")
        .arg(&cfg)
        .env("REFPROXY_THREADS", "1")
        .env("REFPROXY_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .process_group(0)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A small fd limit for the child only.
    #[allow(unsafe_code)]
    // SAFETY: setrlimit is a plain system call, safe between fork and exec.
    unsafe {
        cmd.pre_exec(|| setrlimit(Resource::RLIMIT_NOFILE, 64, 64).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().unwrap();
    let _group = Group(Pid::from_raw(child.id().unwrap() as i32));
    let mut out = lines(child.stdout.take().unwrap());
    let mut err = lines(child.stderr.take().unwrap());
    let addr: std::net::SocketAddr = tokio::time::timeout(scaled(20), async {
        while let Some(l) = out.recv().await {
            if let Ok(Event {
                kind: EventKind::Ready { addrs, .. },
                ..
            }) = Event::parse_line(&l)
            {
                return addrs[0].parse().unwrap();
            }
        }
        panic!("stdout closed before ready");
    })
    .await
    .expect("ready in time");

    // More idle connections than the child has fds: the rest wait in the backlog.
    let mut clients = Vec::new();
    for _ in 0..120 {
        clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let first = tokio::time::timeout(scaled(20), async {
        while let Some(l) = err.recv().await {
            if l.contains("accept failed") {
                return l;
            }
        }
        panic!("stderr closed before an accept error");
    })
    .await
    .expect("an accept error logged");
    assert!(first.contains("WARN"), "{first}");

    // Three seconds of continuous EMFILE: at most one line per second.
    let window = Duration::from_secs(3);
    let until = Instant::now() + window;
    let mut logged = Vec::new();
    while let Ok(Some(l)) =
        tokio::time::timeout(until.saturating_duration_since(Instant::now()), err.recv()).await
    {
        if l.contains("accept failed") {
            logged.push(l);
        }
    }
    assert!(
        logged.len() <= 3,
        "{} accept error lines within {window:?}:\n{}",
        logged.len(),
        logged.join("\n")
    );
    assert!(
        logged.iter().any(|l| suppressed(l).is_some_and(|n| n > 0)),
        "no count of the errors not logged:\n{}",
        logged.join("\n")
    );

    // fds free again: accepting resumes, and the count still unreported is logged by
    // the first accept once a line is due again (new clients keep coming meanwhile).
    drop(clients);
    let resumed = tokio::time::timeout(scaled(20), async {
        let mut next_client = tokio::time::interval(Duration::from_millis(100));
        let mut later = Vec::new();
        loop {
            tokio::select! {
                l = err.recv() => match l {
                    Some(l) if l.contains("accepting again") => return l,
                    Some(_) => {}
                    None => panic!("stderr closed before accepting resumed"),
                },
                _ = next_client.tick() => {
                    later.push(tokio::net::TcpStream::connect(addr).await.unwrap());
                }
            }
        }
    })
    .await
    .expect("accepting again logged");
    assert!(suppressed(&resumed).is_some(), "{resumed}");
    let _ = child.start_kill();
    let _ = child.wait().await;
}
