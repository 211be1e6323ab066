//! Starting command servers: port reservation, spawning a template,
//! waiting for a readiness condition, command origins.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use reloadbench_model::clock::monotonic_ns;

use crate::scenario::{CommandOrigin, Readiness, ReadySpec, Scenario, Template, Vars};

use super::super::readiness::{
    POLL, file_len, wait_http, wait_log_file, wait_log_line, wait_pid_file, wait_port,
    wait_ready_event,
};
use super::super::runner::RunnerError;
use crate::orchestrator::events::EventLog;
use crate::orchestrator::os::process::{ProcessContext, ProcessGuard, ProcessSpec};
use crate::orchestrator::os::procstat::with_stat;

/// Reserves a free loopback port: bind `127.0.0.1:0`, read the port, close.
pub(crate) fn reserve_port() -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

/// Spawns `template` (rendered, split into words) as process `name`.
pub(super) fn spawn_template(
    name: &str,
    template: &Template,
    vars: &Vars,
    dir: &Path,
    ctx: &ProcessContext,
) -> Result<ProcessGuard, RunnerError> {
    let argv = template
        .render_argv(vars)
        .map_err(|source| RunnerError::Template {
            what: format!("{name} command `{template}`"),
            source,
        })?;
    let mut words = argv.into_iter();
    let program = words.next().unwrap_or_default();
    let mut spec = ProcessSpec::new(name, program);
    spec.args = words.map(Into::into).collect();
    spec.cwd = Some(dir.to_owned());
    Ok(ProcessGuard::spawn(&spec, ctx)?)
}

/// Waits for a readiness condition. `spawned` is the process whose output
/// counts for event/log readiness; `previous` the pid a pid file must change
/// from. Returns the monotonic time it was seen.
///
/// The wait ends early when `spawned` exits with a non-zero status (a
/// rejected configuration, a bad flag): that server will never be ready. An
/// exit with status 0 is a daemonizing parent and the wait goes on.
pub(super) async fn wait_ready(
    spec: &ReadySpec,
    vars: &Vars,
    addr: SocketAddr,
    spawned: Option<u32>,
    from: usize,
    previous: Option<u32>,
    log: &mut EventLog,
) -> Result<u64, RunnerError> {
    let wait = wait_condition(spec, vars, addr, spawned, from, previous, log);
    match spawned {
        Some(pid) => tokio::select! {
            r = wait => r,
            code = failed_exit(pid) => Err(RunnerError::ExitedEarly { pid, code }),
        },
        None => wait.await,
    }
}

/// Resolves with the exit code once `pid` (a child of the harness, not yet
/// reaped) is a zombie with a non-zero exit code; never otherwise. Polls
/// `/proc/<pid>/stat` every [`POLL`].
async fn failed_exit(pid: u32) -> i32 {
    loop {
        match zombie_exit_code(pid) {
            Some(code) if code != 0 => return code,
            Some(_) => std::future::pending::<()>().await,
            None => tokio::time::sleep(POLL).await,
        }
    }
}

/// The exit code of `pid` if it is a zombie (`/proc/<pid>/stat` field 52,
/// a wait status), `None` while it runs or once it is gone.
fn zombie_exit_code(pid: u32) -> Option<i32> {
    with_stat(pid, |fields| {
        if fields.first() != Some(&"Z") {
            return None;
        }
        // exit_code is field 52.
        let status: i32 = fields.get(52 - 3)?.parse().ok()?;
        Some(if status & 0x7f == 0 {
            (status >> 8) & 0xff
        } else {
            128 + (status & 0x7f)
        })
    })
}

async fn wait_condition(
    spec: &ReadySpec,
    vars: &Vars,
    addr: SocketAddr,
    spawned: Option<u32>,
    from: usize,
    previous: Option<u32>,
    log: &mut EventLog,
) -> Result<u64, RunnerError> {
    let t = spec.timeout;
    match &spec.how {
        Readiness::Event => {
            let pid = spawned.ok_or(RunnerError::Missing(
                "event readiness needs a spawned process",
            ))?;
            Ok(wait_ready_event(log, from, "server", pid, t).await?.mono_ns)
        }
        Readiness::Log(text) => Ok(wait_log_line(log, from, text, t).await?),
        Readiness::LogFile { path, text } => {
            Ok(wait_log_file(path, file_len(path), text, t).await?)
        }
        Readiness::Port => {
            wait_port(addr, t).await?;
            Ok(monotonic_ns())
        }
        Readiness::Http(path) => {
            wait_http(addr, path, t).await?;
            Ok(monotonic_ns())
        }
        Readiness::PidFile(tpl) => {
            let path = tpl.render(vars).map_err(|source| RunnerError::Template {
                what: "pid file".into(),
                source,
            })?;
            wait_pid_file(Path::new(&path), previous, t).await?;
            Ok(monotonic_ns())
        }
    }
}

/// Starts a command origin on a reserved port and waits until it is ready.
pub(crate) async fn start_command_origin(
    o: &CommandOrigin,
    scenario: &Scenario,
    dir: &Path,
    ctx: &ProcessContext,
    log: &mut EventLog,
) -> Result<(ProcessGuard, SocketAddr), RunnerError> {
    let addr = reserve_port().map_err(RunnerError::Port)?;
    let mut vars = Vars::new();
    vars.set("origin", addr.to_string())
        .set("origin_port", addr.port().to_string())
        .set("dir", dir.display().to_string())
        .set("scenario_dir", scenario.dir.display().to_string());
    let from = log.cursor();
    let mut p = spawn_template("origin", &o.command, &vars, dir, ctx)?;
    match wait_ready(&o.ready, &vars, addr, Some(p.pid()), from, None, log).await {
        Ok(_) => Ok((p, addr)),
        Err(e) => {
            let _ = p.stop(Signal::SIGKILL, Duration::from_secs(5)).await;
            Err(RunnerError::NotReady {
                source: Box::new(e),
                note: format!("; stderr in {}", p.stderr_path().display()),
            })
        }
    }
}
