//! Waiting until a process is ready: each check waits on something the
//! process does (an event line, a pid file, an accepting port, an HTTP
//! answer, a log line), always with a deadline.
//!
//! Event and log readiness are pure waits on the process's output stream.
//! External servers that signal nothing else (pid file, port, HTTP) are
//! polled at a short interval ([`POLL`]) until the deadline; there is never a
//! fixed sleep standing in for readiness.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reloadbench_model::event::{Event, EventKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::orchestrator::events::{EventLog, Payload};
use crate::orchestrator::os::procstat::proc_info;

/// Interval between two polls of a port, pid file or HTTP check.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// Why a process was not found ready.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadinessError {
    /// The process closed its output (it exited) before it was ready.
    #[error("{name} (pid {pid}) exited before it was ready")]
    Exited {
        /// Process name.
        name: String,
        /// Its pid.
        pid: u32,
    },
    /// The deadline passed.
    #[error("{what} not seen within {timeout:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        timeout: Duration,
    },
    /// A ready event carried an address that does not parse.
    #[error("ready event of pid {pid} has no usable address ({addrs:?})")]
    BadAddress {
        /// The pid of the event.
        pid: u32,
        /// What it said.
        addrs: Vec<String>,
    },
}

/// A `ready` event: who, where, when.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ready {
    /// Pid in the event (a worker's pid when a master relays it).
    pub pid: u32,
    /// Generation in the event.
    pub generation: u64,
    /// First listening address.
    pub addr: SocketAddr,
    /// The event's own timestamp.
    pub mono_ns: u64,
}

/// Waits for the first `ready` event on the stdout of the process spawned as
/// `source_pid`, from position `from` of the log. Fails early when that
/// stdout ends first.
pub(crate) async fn wait_ready_event(
    log: &mut EventLog,
    from: usize,
    name: &str,
    source_pid: u32,
    timeout: Duration,
) -> Result<Ready, ReadinessError> {
    let idx = log
        .wait_for(from, timeout, |s| {
            s.stdout_end_or(source_pid, |k| matches!(k, EventKind::Ready { .. }))
        })
        .await
        .ok_or_else(|| ReadinessError::Timeout {
            what: format!("ready event of {name} (pid {source_pid})"),
            timeout,
        })?;
    match log.seen()[idx].event() {
        Some(Event {
            pid,
            mono_ns,
            kind: EventKind::Ready { generation, addrs },
        }) => {
            let addr = addrs.first().and_then(|a| a.parse().ok()).ok_or_else(|| {
                ReadinessError::BadAddress {
                    pid: *pid,
                    addrs: addrs.clone(),
                }
            })?;
            Ok(Ready {
                pid: *pid,
                generation: *generation,
                addr,
                mono_ns: *mono_ns,
            })
        }
        _ => Err(ReadinessError::Exited {
            name: name.to_owned(),
            pid: source_pid,
        }),
    }
}

/// Waits for a line containing `text` on stdout or stderr of any process
/// of the case (a reload's line may come from the old process or a master).
/// Returns the monotonic time the line was read.
pub(crate) async fn wait_log_line(
    log: &mut EventLog,
    from: usize,
    text: &str,
    timeout: Duration,
) -> Result<u64, ReadinessError> {
    let idx = log
        .wait_for(
            from,
            timeout,
            |s| matches!(&s.payload, Payload::Line(l) if l.contains(text)),
        )
        .await
        .ok_or_else(|| ReadinessError::Timeout {
            what: format!("a log line containing {text:?}"),
            timeout,
        })?;
    Ok(log.seen()[idx].recv_mono_ns)
}

/// The length of `path` now (0 when it does not exist yet): where a wait
/// for lines written from now on starts.
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Polls until a line of `path` past byte `from` contains `text` (a server
/// the harness did not start writes its log there). Each poll reads only
/// the bytes written since the last one ([`LogTail`]); a file that shrank
/// (rotated, truncated) is read from its start. Returns the monotonic time
/// the line was seen.
pub(crate) async fn wait_log_file(
    path: &Path,
    from: u64,
    text: &str,
    timeout: Duration,
) -> Result<u64, ReadinessError> {
    let mut tail = LogTail::new(path, from);
    poll_until(
        timeout,
        format!("a line containing {text:?} in {}", path.display()),
        || {
            let hit = tail.find(text).then(reloadbench_model::clock::monotonic_ns);
            async move { hit }
        },
    )
    .await
}

/// The end of a log file being followed: where the last read stopped, and
/// the last bytes before it (a match may span two reads). Memory stays
/// bounded by the text sought, whatever the file's size.
#[derive(Debug)]
pub(crate) struct LogTail {
    path: PathBuf,
    offset: u64,
    carry: Vec<u8>,
}

/// Bytes read from a log file at a time.
const LOG_CHUNK: usize = 64 * 1024;

impl LogTail {
    /// Follows `path` from byte `from`.
    pub(crate) fn new(path: &Path, from: u64) -> LogTail {
        LogTail {
            path: path.to_owned(),
            offset: from,
            carry: Vec::new(),
        }
    }

    /// Reads what was written since the last call; true when it holds a
    /// line containing `text` (which holds no newline).
    pub(crate) fn find(&mut self, text: &str) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        use std::os::unix::fs::OpenOptionsExt;
        let needle = text.as_bytes();
        let Ok(mut f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&self.path)
        else {
            return false;
        };
        let Ok(meta) = f.metadata() else {
            return false;
        };
        if !meta.is_file() {
            return false;
        }
        if meta.len() < self.offset {
            // Rotated or truncated: the new file from its start.
            self.offset = 0;
            self.carry.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return false;
        }
        let mut chunk = vec![0u8; LOG_CHUNK];
        loop {
            let n = match f.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            self.offset += n as u64;
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(&chunk[..n]);
            if needle.is_empty() || buf.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
            let keep = needle.len().saturating_sub(1).min(buf.len());
            self.carry = buf.split_off(buf.len() - keep);
        }
    }
}

/// Polls until `addr` accepts a TCP connection.
pub(crate) async fn wait_port(addr: SocketAddr, timeout: Duration) -> Result<(), ReadinessError> {
    poll_until(timeout, format!("a listener on {addr}"), || async move {
        TcpStream::connect(addr).await.is_ok().then_some(())
    })
    .await
}

/// Polls until `GET path` on `addr` answers with a 2xx status.
pub(crate) async fn wait_http(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(), ReadinessError> {
    poll_until(
        timeout,
        format!("a 2xx answer to GET {path} on {addr}"),
        || async move { http_ok(addr, path).await.then_some(()) },
    )
    .await
}

/// Polls until `path` holds the pid of a live process other than `previous`.
pub(crate) async fn wait_pid_file(
    path: &Path,
    previous: Option<u32>,
    timeout: Duration,
) -> Result<u32, ReadinessError> {
    let p: PathBuf = path.to_owned();
    poll_until(
        timeout,
        format!("a new live pid in {}", path.display()),
        || {
            let p = p.clone();
            async move {
                let pid = read_pid_file(&p)?;
                (Some(pid) != previous && pid_alive(pid)).then_some(pid)
            }
        },
    )
    .await
}

/// Reads a pid file: exactly one number (surrounding whitespace allowed).
pub(crate) fn read_pid_file(path: &Path) -> Option<u32> {
    read_pid_file_checked(path).ok()
}

/// At most this many bytes of a pid file (or a pid command's output) are
/// read: a pid is a short line.
pub(crate) const PID_TEXT_MAX: usize = 64;

/// Why a pid file gives no pid.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PidFileError {
    /// It could not be opened.
    #[error("cannot open it: {0}")]
    Open(#[source] std::io::Error),
    /// It is not a regular file (a FIFO, a device, a directory...).
    #[error("it is not a regular file")]
    NotRegular,
    /// It could not be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// What it holds is not one pid.
    #[error(transparent)]
    Text(#[from] PidTextError),
}

/// Why a text is not exactly one pid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PidTextError {
    /// Nothing (or only whitespace).
    #[error("it is empty")]
    Empty,
    /// More than [`PID_TEXT_MAX`] bytes.
    #[error("it is longer than {PID_TEXT_MAX} bytes")]
    TooLong,
    /// Not exactly one number.
    #[error("{0:?} is not exactly one pid")]
    NotOnePid(String),
}

/// Reads a pid file without ever blocking: opened non-blocking (a FIFO
/// neither waits for a writer nor is read), only a regular file is read,
/// and at most [`PID_TEXT_MAX`] + 1 bytes of it.
pub(crate) fn read_pid_file_checked(path: &Path) -> Result<u32, PidFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(PidFileError::Open)?;
    if !f.metadata().map_err(PidFileError::Read)?.is_file() {
        return Err(PidFileError::NotRegular);
    }
    let mut bytes = Vec::new();
    f.take(PID_TEXT_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(PidFileError::Read)?;
    Ok(parse_pid(&bytes)?)
}

/// The pid in `bytes`: exactly one decimal number, surrounding whitespace
/// allowed, at most [`PID_TEXT_MAX`] bytes.
pub(crate) fn parse_pid(bytes: &[u8]) -> Result<u32, PidTextError> {
    if bytes.len() > PID_TEXT_MAX {
        return Err(PidTextError::TooLong);
    }
    let text = String::from_utf8_lossy(bytes);
    let t = text.trim();
    if t.is_empty() {
        return Err(PidTextError::Empty);
    }
    t.parse()
        .ok()
        .filter(|_| t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| PidTextError::NotOnePid(t.to_owned()))
}

/// Whether `pid` names a live (not zombie) process.
pub(crate) fn pid_alive(pid: u32) -> bool {
    proc_info(pid).is_some_and(|p| p.alive())
}

async fn poll_until<T, F, Fut>(
    timeout: Duration,
    what: String,
    mut check: F,
) -> Result<T, ReadinessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout_at(deadline, check()).await;
        match attempt {
            Ok(Some(v)) => return Ok(v),
            Ok(None) if tokio::time::Instant::now() + POLL < deadline => {
                tokio::time::sleep(POLL).await;
            }
            _ => return Err(ReadinessError::Timeout { what, timeout }),
        }
    }
}

async fn http_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match s.read(&mut head[n..]).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    // "HTTP/1.x 2"
    n >= 10 && head.starts_with(b"HTTP/1.") && head[9] == b'2'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::events::{EventLog, Stream};

    #[tokio::test(start_paused = true)]
    async fn ready_event_is_found_and_eof_fails_fast() {
        let (sink, mut log) = EventLog::create(None).unwrap();
        sink.line("p", 5, Stream::Stdout, "starting");
        sink.line(
            "p",
            5,
            Stream::Stdout,
            r#"{"mono_ns":10,"pid":6,"event":"ready","generation":2,"addrs":["127.0.0.1:80"]}"#,
        );
        let r = wait_ready_event(&mut log, 0, "p", 5, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!((r.pid, r.generation, r.mono_ns), (6, 2, 10));
        assert_eq!(r.addr.port(), 80);

        sink.eof("q", 7, Stream::Stdout);
        let e = wait_ready_event(&mut log, 0, "q", 7, Duration::from_secs(5)).await;
        assert!(
            matches!(e, Err(ReadinessError::Exited { pid: 7, .. })),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn port_and_http_checks_see_a_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            }
        });
        // Real time (a real socket): limits scaled for slow machines.
        let limit = reloadbench_model::test_timing::scaled(Duration::from_secs(5));
        wait_port(addr, limit).await.unwrap();
        wait_http(addr, "/", limit).await.unwrap();
        server.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn log_file_check_wants_a_new_line_with_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("server.log");
        std::fs::write(&f, "reloaded\n").unwrap();
        let from = file_len(&f);
        let e = wait_log_file(&f, from, "reloaded", Duration::from_millis(100)).await;
        assert!(matches!(e, Err(ReadinessError::Timeout { .. })), "{e:?}");
        std::fs::write(&f, "reloaded\nstarting\nreloaded again\n").unwrap();
        wait_log_file(&f, from, "again", Duration::from_secs(1))
            .await
            .unwrap();
        // Rotated: shorter than where the wait began, read from the start.
        std::fs::write(&f, "again\n").unwrap();
        wait_log_file(&f, 1000, "again", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(file_len(&dir.path().join("none")), 0);
    }

    #[test]
    fn a_pid_is_exactly_one_number() {
        assert_eq!(parse_pid(b" 123\n"), Ok(123));
        assert_eq!(parse_pid(b"\n"), Err(PidTextError::Empty));
        for bad in [
            &b"nginx: [warn] 12345 worker_connections"[..],
            b"12 13\n",
            b"+12",
            b"12x",
            b"99999999999",
        ] {
            assert!(
                matches!(parse_pid(bad), Err(PidTextError::NotOnePid(_))),
                "{bad:?}"
            );
        }
        assert_eq!(parse_pid(&[b'1'; 65]), Err(PidTextError::TooLong));
    }

    #[test]
    fn pid_files_are_read_bounded_and_only_when_regular() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO nobody writes to: neither opening nor reading may wait.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_pid_file_checked(&fifo),
            Err(PidFileError::NotRegular)
        ));
        // An endless device: refused, not read until memory runs out.
        assert!(matches!(
            read_pid_file_checked(Path::new("/dev/zero")),
            Err(PidFileError::NotRegular)
        ));
        // A proc file is "regular" but not one pid (its first word is one).
        assert!(matches!(
            read_pid_file_checked(Path::new("/proc/self/stat")),
            Err(PidFileError::Text(_))
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'1'; 1 << 20]).unwrap();
        assert!(matches!(
            read_pid_file_checked(&big),
            Err(PidFileError::Text(PidTextError::TooLong))
        ));
        let ok = dir.path().join("ok.pid");
        std::fs::write(&ok, "42\n").unwrap();
        assert_eq!(read_pid_file_checked(&ok).unwrap(), 42);
    }

    #[test]
    fn a_log_tail_reads_each_byte_once_and_restarts_when_rotated() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("server.log");
        std::fs::write(&f, "starting\n").unwrap();
        let mut tail = LogTail::new(&f, 0);
        assert!(!tail.find("reloaded"));
        // Bytes already read are not read again: text put there in place
        // (same length) is not seen, only what is appended.
        let mut w = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        w.seek(SeekFrom::Start(0)).unwrap();
        w.write_all(b"reloaded").unwrap();
        assert!(!tail.find("reloaded"));
        // A match split across two reads is found.
        let mut a = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        a.write_all(b"relo").unwrap();
        assert!(!tail.find("reloaded"));
        a.write_all(b"aded\n").unwrap();
        assert!(tail.find("reloaded"));
        // A large log: read in chunks, memory bounded by the text sought.
        let big = dir.path().join("big.log");
        let mut body = "x".repeat(3 * LOG_CHUNK + 17);
        body.push_str("\nready now\n");
        std::fs::write(&big, &body).unwrap();
        let mut tail = LogTail::new(&big, 0);
        assert!(tail.find("ready now"));
        let mut tail = LogTail::new(&big, 0);
        assert!(!tail.find("never"));
        assert!(tail.carry.len() < "never".len());
        assert_eq!(tail.offset, body.len() as u64);
        // Rotated (shorter than the offset): read from its start.
        std::fs::write(&big, "never\n").unwrap();
        assert!(tail.find("never"));
    }

    // The paused clock: the file is polled in-process, and the 100 ms wait that runs out
    // takes no real time.
    #[tokio::test(start_paused = true)]
    async fn pid_file_check_wants_a_new_live_pid() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.pid");
        let me = std::process::id();
        std::fs::write(&f, format!("{me}\n")).unwrap();
        assert_eq!(
            wait_pid_file(&f, None, Duration::from_secs(1))
                .await
                .unwrap(),
            me
        );
        let e = wait_pid_file(&f, Some(me), Duration::from_millis(100)).await;
        assert!(matches!(e, Err(ReadinessError::Timeout { .. })));
    }
}
