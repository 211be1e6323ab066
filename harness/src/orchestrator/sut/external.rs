//! [`ExternalRunner`]: a server reloadbench attaches to (`kind =
//! "external"`). It is already running: the runner starts nothing, stops
//! nothing and signals nothing on its own. It waits until the target is
//! ready, and runs the timeline's `exec` actions (the user's commands) and
//! `signal` actions (to the pid a `pid_file` or `pid_command` names when the
//! action fires). After each, the target must accept connections again
//! (the action's "ready" time); what the server's processes did is observed
//! from the kernel by the case's sampler.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use nix::sys::signal::kill;
use nix::unistd::Pid;
use reloadbench_model::clock::monotonic_ns;

use crate::scenario::{ActionSpec, ExternalProxy, PidSource, Readiness, Target, Vars};

use super::readiness::{wait_http, wait_log_file, wait_port};
use super::runner::{ActOutcome, CaseEnv, Runner, RunnerError};
use crate::orchestrator::events::EventLog;
use crate::orchestrator::os::host::{Sysctls, exec_action};

/// How long the target may take to accept again after an action.
const ACCEPT_AGAIN: Duration = Duration::from_secs(10);

pub(crate) use super::pid_source::PidError;

/// Drives a server the harness did not start.
#[derive(Debug)]
pub(crate) struct ExternalRunner {
    cfg: ExternalProxy,
    env: CaseEnv,
    addr: Option<SocketAddr>,
    sysctls: Sysctls,
    /// Pid commands run so far (their logs are numbered).
    pid_commands: usize,
}

/// The addresses `target` resolves to.
pub(crate) fn resolve(target: &Target) -> std::io::Result<Vec<SocketAddr>> {
    Ok((target.host.as_str(), target.port)
        .to_socket_addrs()?
        .collect())
}

impl ExternalRunner {
    /// A runner for the server `cfg` in the case described by `env`.
    pub(crate) fn new(cfg: ExternalProxy, env: CaseEnv) -> ExternalRunner {
        ExternalRunner {
            cfg,
            env,
            addr: None,
            sysctls: Sysctls::default(),
            pid_commands: 0,
        }
    }

    fn vars(&self) -> Vars {
        let mut v = self.env.vars();
        if let Some(a) = self.addr {
            v.set("listen", a.to_string())
                .set("listen_port", a.port().to_string());
        }
        v
    }

    /// The pid a `signal` action goes to, found now (see [`super::pid_source`]).
    async fn find_pid(&mut self, source: &PidSource) -> Result<u32, PidError> {
        if matches!(source, PidSource::Command(_)) {
            self.pid_commands += 1;
        }
        super::pid_source::find_pid(
            source,
            &self.vars(),
            &self.env.dir,
            &self.env.ctx.log_dir,
            self.pid_commands,
            &self.env.ctx.pids,
        )
        .await
    }

    /// Marks the action ready once the target accepts again.
    async fn accepting_again(&self, mut out: ActOutcome) -> ActOutcome {
        if out.error.is_some() {
            return out;
        }
        let Some(addr) = self.addr else {
            return out.fail("no target address");
        };
        match wait_port(addr, ACCEPT_AGAIN).await {
            Ok(()) => {
                out.ready_mono_ns = Some(monotonic_ns());
                out
            }
            Err(e) => out.fail_by(&e),
        }
    }
}

impl Runner for ExternalRunner {
    async fn start(&mut self, _log: &mut EventLog) -> Result<SocketAddr, RunnerError> {
        // The address the run checked (loopback unless allowed), never a
        // fresh resolution: a name could resolve elsewhere by now.
        let addr = *self.cfg.target.addrs.first().ok_or(RunnerError::Missing(
            "the target's checked address (the run resolves it before any case)",
        ))?;
        self.addr = Some(addr);
        let t = self.cfg.ready.timeout;
        match &self.cfg.ready.how {
            Readiness::Http(path) => wait_http(addr, path, t).await?,
            // Anywhere in the file: the server was started before the run.
            Readiness::LogFile { path, text } => {
                wait_log_file(path, 0, text, t).await?;
            }
            _ => wait_port(addr, t).await?,
        }
        Ok(addr)
    }

    async fn act(&mut self, action: &ActionSpec, _log: &mut EventLog) -> ActOutcome {
        match action {
            ActionSpec::Exec { command, timeout } | ActionSpec::ExecReload { command, timeout } => {
                let out = exec_action(command, *timeout, &self.vars(), &self.env).await;
                self.accepting_again(out).await
            }
            ActionSpec::SignalPid { signal, pid } => {
                let out = ActOutcome::triggered_now();
                let res = match self.find_pid(pid).await {
                    Ok(p) => kill(Pid::from_raw(p as i32), *signal).map_err(|source| {
                        RunnerError::Signal {
                            signal: *signal,
                            pid: p,
                            source,
                        }
                    }),
                    Err(e) => Err(RunnerError::Pid(e)),
                };
                let out = out.check(res);
                self.accepting_again(out).await
            }
            ActionSpec::Sysctl { key, value } => self.sysctls.action(key, value),
            other => ActOutcome::triggered_now().fail(format!(
                "{} is not possible on a server reloadbench did not start",
                other.label()
            )),
        }
    }

    async fn stop(&mut self, _log: &mut EventLog) -> Result<(), RunnerError> {
        // Nothing of the server is ours to stop: only host changes are undone.
        self.sysctls.restore()?;
        Ok(())
    }

    fn exit_seen(&self, _pid: u32) -> Option<u64> {
        None
    }

    /// The server is lost when its target no longer accepts a connection
    /// once the load has ended (within [`LOST_CHECK`]).
    fn lost(&mut self) -> Option<String> {
        let addr = self.addr?;
        std::net::TcpStream::connect_timeout(&addr, LOST_CHECK)
            .err()
            .map(|e| {
                format!(
                    "the target {} ({addr}) no longer accepts connections ({e})",
                    self.cfg.target.url
                )
            })
    }
}

/// How long the end-of-load check may wait for a connection to the target.
const LOST_CHECK: Duration = Duration::from_secs(2);

/// Whether every address is on loopback (127.0.0.0/8, ::1, and
/// 127.0.0.0/8 mapped into IPv6 as ::ffff:127.x.y.z).
pub(crate) fn all_loopback(addrs: &[SocketAddr]) -> bool {
    !addrs.is_empty() && addrs.iter().all(|a| is_loopback(a.ip()))
}

fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::os::process::{PidLog, ProcessContext};

    #[tokio::test]
    async fn a_target_that_stops_accepting_is_lost_and_nothing_is_stopped() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (sink, mut log) = EventLog::create(None).unwrap();
        let env = CaseEnv {
            dir: dir.path().to_owned(),
            origin: SocketAddr::from(([127, 0, 0, 1], 0)),
            ctx: ProcessContext {
                sink,
                log_dir: dir.path().to_owned(),
                pids: PidLog::memory(),
            },
            scenario_dir: dir.path().to_owned(),
            tls: None,
            http2: false,
        };
        let mut target = crate::scenario::validate_target(&format!("http://{addr}/")).unwrap();
        target.addrs = vec![addr];
        let cfg = ExternalProxy {
            target,
            ca_file: None,
            insecure: false,
            ready: crate::scenario::ReadySpec {
                how: Readiness::Port,
                timeout: reloadbench_model::test_timing::scaled_secs(10),
            },
            version: None,
            reloads_in_place: false,
        };
        let mut r = ExternalRunner::new(cfg, env);
        assert_eq!(r.start(&mut log).await.unwrap(), addr);
        assert_eq!(r.lost(), None);
        // The harness's stop leaves the server alone: it still accepts.
        r.stop(&mut log).await.unwrap();
        assert!(std::net::TcpStream::connect(addr).is_ok());
        drop(l);
        let why = r.lost().expect("lost");
        assert!(why.contains("no longer accepts"), "{why}");
    }

    #[tokio::test]
    async fn start_uses_the_checked_address_and_resolves_nothing() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (sink, mut log) = EventLog::create(None).unwrap();
        let env = CaseEnv {
            dir: dir.path().to_owned(),
            origin: SocketAddr::from(([127, 0, 0, 1], 0)),
            ctx: ProcessContext {
                sink,
                log_dir: dir.path().to_owned(),
                pids: PidLog::memory(),
            },
            scenario_dir: dir.path().to_owned(),
            tls: None,
            http2: false,
        };
        // A name that never resolves (RFC 6761): only the stored, checked
        // address can be used.
        let mut target =
            crate::scenario::validate_target("http://reloadbench-test.invalid:1/").unwrap();
        target.addrs = vec![addr];
        let cfg = ExternalProxy {
            target,
            ca_file: None,
            insecure: false,
            ready: crate::scenario::ReadySpec {
                how: Readiness::Port,
                timeout: reloadbench_model::test_timing::scaled_secs(10),
            },
            version: None,
            reloads_in_place: false,
        };
        let mut r = ExternalRunner::new(cfg, env);
        assert_eq!(r.start(&mut log).await.unwrap(), addr);
    }

    #[test]
    fn only_loopback_addresses_are_local() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(all_loopback(&[a("127.0.0.1:80"), a("127.3.2.1:1")]));
        assert!(all_loopback(&[a("[::1]:80")]));
        assert!(!all_loopback(&[a("127.0.0.1:80"), a("10.0.0.1:80")]));
        assert!(all_loopback(&[a("[::ffff:127.0.0.1]:80")]));
        assert!(!all_loopback(&[a("[::ffff:10.0.0.1]:80")]));
        assert!(!all_loopback(&[a("0.0.0.0:80")]));
        assert!(!all_loopback(&[]));
    }
}
