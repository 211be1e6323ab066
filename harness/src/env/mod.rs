//! The environment a run was measured in: kernel, the sysctls that change
//! the outcome, limits, CPU count, versions and the git commit. Written to
//! `environment.json` and into the run report.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit};
use reloadbench_model::run::Environment;

use crate::orchestrator::os::host::read_sysctl;

/// The sysctls recorded with every run.
pub(crate) const SYSCTLS: [&str; 4] = [
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_migrate_req",
    "net.core.somaxconn",
    "net.ipv4.ip_local_port_range",
];

/// How long a version or git command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads everything but the versions of the system under test.
pub(crate) async fn capture() -> Environment {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let kernel = format!(
        "{} {}",
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease")
    )
    .trim()
    .to_owned();
    let sysctls: BTreeMap<String, String> = SYSCTLS
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                read_sysctl(k).unwrap_or_else(|| "unavailable".to_owned()),
            )
        })
        .collect();
    let mut versions = BTreeMap::new();
    versions.insert(
        "reloadbench".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    let git_sha = match std::env::current_exe() {
        Ok(exe) => git_sha(exe.parent().unwrap_or(Path::new("."))).await,
        Err(_) => None,
    };
    Environment {
        kernel,
        hostname: read("/proc/sys/kernel/hostname"),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
        fd_limit: getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft),
        sysctls,
        versions,
        git_sha,
        external_targets: Vec::new(),
    }
}

/// The commit of the git checkout containing `dir`, if any.
pub(crate) async fn git_sha(dir: &Path) -> Option<String> {
    let out = command_output(
        "git",
        &["-C", &dir.display().to_string(), "rev-parse", "HEAD"],
    )
    .await?;
    let sha = out.trim();
    (sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit())).then(|| sha.to_owned())
}

/// First non-empty line a version command prints (stdout, else stderr).
pub(crate) async fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let out = command_output(program, args).await?;
    out.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Runs a short command in its own process group and returns its stdout
/// (or stderr when stdout is empty); `None` if it fails or times out (it is
/// killed then).
pub(crate) async fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.iter().any(|b| !b.is_ascii_whitespace()) {
        out.stdout
    } else {
        out.stderr
    };
    Some(String::from_utf8_lossy(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_the_basics() {
        let env = capture().await;
        assert!(env.kernel.starts_with("Linux"), "{}", env.kernel);
        assert!(env.cpus >= 1);
        assert!(env.fd_limit > 0);
        assert_eq!(env.sysctls.len(), SYSCTLS.len());
        assert!(env.versions.contains_key("reloadbench"));
    }

    #[tokio::test]
    async fn version_commands_give_their_first_line() {
        assert_eq!(
            version_of("sh", &["-c", "echo; echo v1.2; echo x"])
                .await
                .as_deref(),
            Some("v1.2")
        );
        assert_eq!(
            version_of("sh", &["-c", "echo v3 >&2"]).await.as_deref(),
            Some("v3")
        );
        assert_eq!(version_of("no-such-program-reloadbench", &[]).await, None);
    }
}
