//! Actions on the host rather than on the proxy: running a command
//! (`exec`) and setting a sysctl for the rest of a case.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::scenario::{Template, Vars};

use super::process::{ProcessContext, ProcessGuard, ProcessSpec};
use super::runner::{ActOutcome, CaseEnv};

/// The `exec` action: renders `command` and runs it with [`run_shell`] in
/// the case directory.
pub async fn exec_action(
    command: &Template,
    timeout: Duration,
    vars: &Vars,
    env: &CaseEnv,
) -> ActOutcome {
    let out = ActOutcome::triggered_now();
    let cmd = match command.render(vars) {
        Ok(c) => c,
        Err(e) => return out.fail(e),
    };
    out.check(run_shell("exec", &cmd, &env.dir, timeout, &env.ctx).await)
}

/// Runs `sh -c command` in its own process group with `cwd` as working
/// directory; Ok when it exits 0 within `timeout` (it is killed otherwise).
pub async fn run_shell(
    name: &str,
    command: &str,
    cwd: &Path,
    timeout: Duration,
    ctx: &ProcessContext,
) -> Result<(), String> {
    let mut spec = ProcessSpec::new(name, "/bin/sh").arg("-c").arg(command);
    spec.cwd = Some(cwd.to_owned());
    let mut p = ProcessGuard::spawn(&spec, ctx).map_err(|e| e.to_string())?;
    let res = p.wait_exit(timeout).await;
    p.join_readers(Duration::from_secs(1)).await;
    match res {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => Err(format!(
            "`{command}` failed ({st}); output in {}",
            p.stderr_path().display()
        )),
        Err(e) => {
            let _ = p.stop(Signal::SIGKILL, Duration::from_secs(5)).await;
            Err(e.to_string())
        }
    }
}

/// Sysctls changed during a case, restored when the case ends.
#[derive(Debug, Default)]
pub struct Sysctls {
    saved: Vec<(PathBuf, String)>,
}

/// `/proc/sys` path of a dotted sysctl key.
pub fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Reads a sysctl, trimmed.
pub fn read_sysctl(key: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(key))
        .ok()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

impl Sysctls {
    /// The `sysctl` action.
    pub fn action(&mut self, key: &str, value: &str) -> ActOutcome {
        ActOutcome::triggered_now().check(self.set(key, value))
    }

    /// Sets `key` to `value`, remembering the first old value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let path = sysctl_path(key);
        let old =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read sysctl {key}: {e}"))?;
        std::fs::write(&path, value)
            .map_err(|e| format!("cannot set sysctl {key}={value}: {e}"))?;
        if !self.saved.iter().any(|(p, _)| *p == path) {
            self.saved.push((path, old));
        }
        Ok(())
    }

    /// Restores every changed sysctl (last changed first).
    pub fn restore(&mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        while let Some((path, old)) = self.saved.pop() {
            if let Err(e) = std::fs::write(&path, old.trim()) {
                errors.push(format!("cannot restore {}: {e}", path.display()));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
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
    use crate::orchestrator::process::PidLog;

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
        assert!(e.contains("did not exit"), "{e}");
        assert_eq!(ctx.pids.pids().len(), 3);
    }
}
