//! The pid a `signal` action on an external server goes to: read from a
//! `pid_file` or printed by a `pid_command` when the action fires.
//!
//! What is found must be exactly one number, and never a process of the run
//! itself: the harness (and its threads), its ancestors, the watchdog, and
//! every process the run started (its pid log) are refused. A pid file is
//! read bounded and only when regular ([`read_pid_file_checked`]). A pid
//! command runs in the case directory in its own process group, its output
//! bounded to [`PID_TEXT_MAX`] bytes per stream and kept in the case's
//! `logs/` (`pid-command-N.stdout.log`, `.stderr.log`); when the shell has
//! exited, what is left of its group is killed (a background child cannot
//! hold the output open).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::readiness::{
    PID_TEXT_MAX, PidFileError, PidTextError, parse_pid, pid_alive, read_pid_file_checked,
};
use crate::orchestrator::os::process::PidLog;
use crate::orchestrator::os::procstat::proc_info;
use crate::scenario::{PidSource, TemplateError, Vars};

/// How long a pid command may take.
pub(crate) const PID_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the pid of a `signal` action could not be found or may not be signalled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PidError {
    /// The pid file gives no pid.
    #[error("pid file {}: {source}", path.display())]
    File {
        /// The pid file.
        path: PathBuf,
        /// Why.
        #[source]
        source: PidFileError,
    },
    /// The pid command gives no pid.
    #[error("pid command `{command}`: {why}{}; output in {}", shown(stdout, stderr), log.display())]
    Command {
        /// The command as run.
        command: String,
        /// Why.
        why: CommandFailure,
        /// The start of its stdout.
        stdout: String,
        /// The start of its stderr.
        stderr: String,
        /// Its stdout log (the stderr log is next to it).
        log: PathBuf,
    },
    /// The command's placeholders could not be filled.
    #[error(transparent)]
    Render(#[from] TemplateError),
    /// The pid names no live process.
    #[error("pid {0} is not running")]
    Gone(u32),
    /// The pid is a process of the run itself (or an ancestor of the harness).
    #[error("pid {pid} is {who}: a signal action may only go to the server under test")]
    Refused {
        /// The pid.
        pid: u32,
        /// Whose it is.
        who: &'static str,
    },
}

fn shown(stdout: &str, stderr: &str) -> String {
    let mut s = String::new();
    if !stdout.is_empty() {
        s.push_str(&format!(" (stdout {stdout:?})"));
    }
    if !stderr.is_empty() {
        s.push_str(&format!(" (stderr {stderr:?})"));
    }
    s
}

/// How a pid command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandFailure {
    /// The shell could not be started.
    #[error("cannot start /bin/sh: {0}")]
    Spawn(#[source] std::io::Error),
    /// Its output could not be read.
    #[error("cannot read its output: {0}")]
    Read(#[source] std::io::Error),
    /// It did not end (with its output closed) in time; it was killed.
    #[error("did not finish within {0:?} (killed)")]
    Timeout(Duration),
    /// It printed more than [`PID_TEXT_MAX`] bytes on a stream; it was killed.
    #[error("printed more than {PID_TEXT_MAX} bytes (killed)")]
    TooMuch,
    /// It exited unsuccessfully.
    #[error("failed ({0})")]
    Status(ExitStatus),
    /// Its stdout is not exactly one pid.
    #[error("{0}")]
    NotOnePid(#[from] PidTextError),
}

/// Finds the pid of `source` now and checks that it may be signalled.
/// A pid command's logs are `pid-command-<n>.*.log` in `log_dir`.
pub(crate) async fn find_pid(
    source: &PidSource,
    vars: &Vars,
    cwd: &Path,
    log_dir: &Path,
    n: usize,
    pids: &PidLog,
) -> Result<u32, PidError> {
    let pid = match source {
        PidSource::File(f) => read_pid_file_checked(f).map_err(|source| PidError::File {
            path: f.clone(),
            source,
        })?,
        PidSource::Command(t) => {
            let c = t.render(vars)?;
            run_pid_command(&c, cwd, log_dir, n, pids).await?
        }
    };
    check_signallable(pid, pids)?;
    Ok(pid)
}

/// Refuses pids of the run itself and of the harness's ancestors; `Gone`
/// when `pid` names no live process.
pub(crate) fn check_signallable(pid: u32, pids: &PidLog) -> Result<(), PidError> {
    let refused = |who| Err(PidError::Refused { pid, who });
    if pid <= 1 {
        return refused("init (or no process)");
    }
    let me = std::process::id();
    if pid == me || Path::new(&format!("/proc/self/task/{pid}")).exists() {
        return refused("the harness itself");
    }
    if crate::orchestrator::os::watchdog::is_watchdog(pid) {
        return refused("the run's watchdog");
    }
    if pids.pids().contains(&pid) {
        return refused("a process the run started");
    }
    let mut up = proc_info(me).map(|p| p.ppid);
    while let Some(a) = up.filter(|a| *a > 0) {
        if a == pid {
            return refused("an ancestor of the harness");
        }
        up = proc_info(a).map(|p| p.ppid);
    }
    if !pid_alive(pid) {
        return Err(PidError::Gone(pid));
    }
    Ok(())
}

/// Runs a pid command (see the module docs) and parses its stdout.
async fn run_pid_command(
    command: &str,
    cwd: &Path,
    log_dir: &Path,
    n: usize,
    pids: &PidLog,
) -> Result<u32, PidError> {
    let log = log_dir.join(format!("pid-command-{n}.stdout.log"));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let res = run_bounded(command, cwd, pids, &mut out, &mut err).await;
    let _ = std::fs::write(&log, &out);
    let _ = std::fs::write(log_dir.join(format!("pid-command-{n}.stderr.log")), &err);
    let res = res.and_then(|status| {
        if status.success() {
            Ok(parse_pid(&out)?)
        } else {
            Err(CommandFailure::Status(status))
        }
    });
    res.map_err(|why| PidError::Command {
        command: command.to_owned(),
        why,
        stdout: excerpt(&out),
        stderr: excerpt(&err),
        log,
    })
}

fn excerpt(b: &[u8]) -> String {
    let t = String::from_utf8_lossy(&b[..b.len().min(200)]);
    t.trim().to_owned()
}

async fn run_bounded(
    command: &str,
    cwd: &Path,
    pids: &PidLog,
    out: &mut Vec<u8>,
    err: &mut Vec<u8>,
) -> Result<ExitStatus, CommandFailure> {
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(CommandFailure::Spawn)?;
    let pgid = child.id().map(|p| Pid::from_raw(p as i32));
    if let Some(p) = child.id() {
        pids.record(p, "pid-command");
    }
    let (Some(so), Some(se)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(CommandFailure::Spawn(std::io::Error::other("no pipes")));
    };
    let all = async {
        let status = async {
            let st = child.wait().await.map_err(CommandFailure::Read);
            // What is left of its group (a background child) would hold the
            // output open: the command is done, so is its group.
            if let Some(g) = pgid {
                let _ = killpg(g, Signal::SIGKILL);
            }
            st
        };
        // The first failure (too much output) ends the wait at once.
        let ((), (), st) = tokio::try_join!(read_bounded(so, out), read_bounded(se, err), status)?;
        Ok(st)
    };
    let res = match tokio::time::timeout(PID_COMMAND_TIMEOUT, all).await {
        Ok(r) => r,
        Err(_) => Err(CommandFailure::Timeout(PID_COMMAND_TIMEOUT)),
    };
    if let Some(g) = pgid {
        if res.is_err() {
            let _ = killpg(g, Signal::SIGKILL);
        }
        drop(child);
        let p = g.as_raw() as u32;
        pids.retire(p);
        crate::orchestrator::os::watchdog::forget(p);
    }
    res
}

/// Reads `r` to its end into `buf`, failing once it holds more than
/// [`PID_TEXT_MAX`] bytes.
async fn read_bounded(
    mut r: impl AsyncRead + Unpin,
    buf: &mut Vec<u8>,
) -> Result<(), CommandFailure> {
    let mut chunk = [0u8; 512];
    loop {
        let k = r.read(&mut chunk).await.map_err(CommandFailure::Read)?;
        if k == 0 {
            return Ok(());
        }
        let room = (PID_TEXT_MAX + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..k.min(room)]);
        if buf.len() > PID_TEXT_MAX {
            return Err(CommandFailure::TooMuch);
        }
    }
}

#[cfg(test)]
mod tests;
