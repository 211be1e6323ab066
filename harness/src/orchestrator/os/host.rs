//! Actions on the host rather than on the proxy: running a command
//! (`exec`) and setting a sysctl for the rest of a case.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::scenario::{Template, Vars};

use super::process::{ProcessContext, ProcessError, ProcessGuard, ProcessSpec};
use crate::orchestrator::sut::runner::{ActOutcome, CaseEnv};

/// The `exec` action: renders `command` and runs it with [`run_shell`] in
/// the case directory.
pub(crate) async fn exec_action(
    command: &Template,
    timeout: Duration,
    vars: &Vars,
    env: &CaseEnv,
) -> ActOutcome {
    let out = ActOutcome::triggered_now();
    let cmd = match command.render(vars) {
        Ok(c) => c,
        Err(e) => return out.fail_by(&e),
    };
    // Its stdout is no event: copied to `exec-<pid>.stdout.log` as it comes.
    let mut spec = shell_spec("exec", &cmd, &env.dir);
    spec.stdout_log = true;
    out.check(run_spec(spec, &cmd, timeout, &env.ctx).await)
}

/// Why a host action (a shell command, a sysctl) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostError {
    /// The shell could not be started, or did not exit in time.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The command exited unsuccessfully.
    #[error("`{command}` failed ({status}); output in {}", output.display())]
    Failed {
        /// The command.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Its stderr log.
        output: PathBuf,
    },
    /// The sysctl could not be read (before it is set).
    #[error("cannot read sysctl {key}: {source}")]
    ReadSysctl {
        /// The dotted key.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The sysctl could not be written.
    #[error("cannot set sysctl {key}={value}: {source}")]
    SetSysctl {
        /// The dotted key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Changed sysctls could not be restored (each with its cause).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Restore(Vec<RestoreError>),
}

/// A sysctl that could not be restored.
#[derive(Debug, thiserror::Error)]
#[error("cannot restore {}: {source}", path.display())]
pub(crate) struct RestoreError {
    /// Its `/proc/sys` path.
    path: PathBuf,
    /// Why.
    #[source]
    source: std::io::Error,
}

/// Runs `sh -c command` in its own process group with `cwd` as working
/// directory; Ok when it exits 0 within `timeout` (it is killed otherwise).
pub(crate) async fn run_shell(
    name: &str,
    command: &str,
    cwd: &Path,
    timeout: Duration,
    ctx: &ProcessContext,
) -> Result<(), HostError> {
    run_spec(shell_spec(name, command, cwd), command, timeout, ctx).await
}

/// `/bin/sh -c command` in `cwd`.
fn shell_spec(name: &str, command: &str, cwd: &Path) -> ProcessSpec {
    let mut spec = ProcessSpec::new(name, "/bin/sh").arg("-c").arg(command);
    spec.cwd = Some(cwd.to_owned());
    spec
}

/// Runs the shell of `spec` (running `command`) to its exit within `timeout`.
async fn run_spec(
    spec: ProcessSpec,
    command: &str,
    timeout: Duration,
    ctx: &ProcessContext,
) -> Result<(), HostError> {
    let mut p = ProcessGuard::spawn(&spec, ctx)?;
    let res = p.wait_exit(timeout).await;
    p.join_readers(Duration::from_secs(1)).await;
    match res {
        Ok(st) if st.success() => Ok(()),
        Ok(status) => Err(HostError::Failed {
            command: command.to_owned(),
            status,
            output: p.stderr_path().to_owned(),
        }),
        Err(e) => {
            let _ = p.stop(Signal::SIGKILL, Duration::from_secs(5)).await;
            Err(e.into())
        }
    }
}

/// Sysctls changed during a case, restored when the case ends.
#[derive(Debug, Default)]
pub(crate) struct Sysctls {
    saved: Vec<(PathBuf, String)>,
}

/// `/proc/sys` path of a dotted sysctl key.
pub(crate) fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Reads a sysctl, trimmed.
pub(crate) fn read_sysctl(key: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(key))
        .ok()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

impl Sysctls {
    /// The `sysctl` action.
    pub(crate) fn action(&mut self, key: &str, value: &str) -> ActOutcome {
        ActOutcome::triggered_now().check(self.set(key, value))
    }

    /// Sets `key` to `value`, remembering the first old value.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<(), HostError> {
        let path = sysctl_path(key);
        let old = std::fs::read_to_string(&path).map_err(|source| HostError::ReadSysctl {
            key: key.to_owned(),
            source,
        })?;
        std::fs::write(&path, value).map_err(|source| HostError::SetSysctl {
            key: key.to_owned(),
            value: value.to_owned(),
            source,
        })?;
        if !self.saved.iter().any(|(p, _)| *p == path) {
            self.saved.push((path, old));
        }
        Ok(())
    }

    /// Restores every changed sysctl (last changed first).
    pub(crate) fn restore(&mut self) -> Result<(), HostError> {
        let mut errors = Vec::new();
        while let Some((path, old)) = self.saved.pop() {
            if let Err(source) = std::fs::write(&path, old.trim()) {
                errors.push(RestoreError { path, source });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(HostError::Restore(errors))
        }
    }
}

impl Drop for Sysctls {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::events::EventLog;
    use crate::orchestrator::os::process::PidLog;

    #[test]
    fn sysctl_keys_map_to_proc_sys() {
        assert_eq!(
            sysctl_path("net.ipv4.tcp_tw_reuse"),
            PathBuf::from("/proc/sys/net/ipv4/tcp_tw_reuse")
        );
    }

    #[tokio::test]
    async fn shell_commands_report_their_exit() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, _log) = EventLog::create(None).unwrap();
        let ctx = ProcessContext {
            sink,
            log_dir: dir.path().to_owned(),
            pids: PidLog::memory(),
        };
        let t = reloadbench_model::test_timing::scaled_secs(10);
        run_shell("exec", "true", dir.path(), t, &ctx)
            .await
            .unwrap();
        let e = run_shell("exec", "exit 3", dir.path(), t, &ctx)
            .await
            .unwrap_err();
        assert!(matches!(e, HostError::Failed { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("exit status: 3"), "{e}");
        let e = run_shell(
            "exec",
            "sleep 30",
            dir.path(),
            Duration::from_millis(200),
            &ctx,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, HostError::Process(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("did not exit"), "{e}");
        assert_eq!(ctx.pids.pids().len(), 3);
    }

    #[tokio::test]
    async fn an_exec_keeps_its_stdout_in_a_log_file_not_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, mut log) = EventLog::create(None).unwrap();
        let ctx = ProcessContext {
            sink,
            log_dir: dir.path().to_owned(),
            pids: PidLog::memory(),
        };
        let t = reloadbench_model::test_timing::scaled_secs(30);
        let cmd = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo err >&2";
        let mut spec = shell_spec("exec", cmd, dir.path());
        spec.stdout_log = true;
        run_spec(spec, cmd, t, &ctx).await.unwrap();
        let pid = ctx.pids.pids()[0];
        let out = std::fs::read(dir.path().join(format!("exec-{pid}.stdout.log"))).unwrap();
        assert_eq!(out.len(), 3_000_001);
        let err = std::fs::read_to_string(dir.path().join(format!("exec-{pid}.stderr.log")));
        assert_eq!(err.unwrap(), "err\n");
        // Only stderr's line went through the event log.
        log.pump();
        let lines = log
            .seen()
            .iter()
            .filter(|s| matches!(&s.payload, crate::orchestrator::events::Payload::Line(_)))
            .count();
        assert_eq!(lines, 1);
    }
}
