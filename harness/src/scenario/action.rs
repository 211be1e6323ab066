//! Timeline actions of a case: when ([`Trigger`]) and what ([`ActionSpec`]).
//!
//! Times are measured from the start of the case's load.

use std::time::Duration;

use nix::sys::signal::Signal;
use reloadbench_model::event::ReloadMode;
use reloadbench_model::run::ActionKind;

use super::spec::PidTarget;
use super::template::Template;

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Action {
    /// When it fires.
    pub trigger: Trigger,
    /// What it does.
    pub what: ActionSpec,
}

#[cfg(test)]
impl Action {
    /// Human description for test assertions, e.g. `reload (fd-pass)`.
    pub(crate) fn label(&self) -> String {
        self.what.label()
    }
}

/// When an action fires, relative to the load's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Once, at this time.
    At(Duration),
    /// Repeatedly: first at `start`, then every `interval`, `count` times or
    /// until the load ends.
    Every {
        /// First firing (defaults to `interval`).
        start: Duration,
        /// Time between firings.
        interval: Duration,
        /// How many times at most; `None` means until the load ends.
        count: Option<u32>,
    },
    /// Once, when this many requests have completed.
    AfterRequests(u64),
}

impl Trigger {
    /// Time of the `n`-th firing (from 0) of a time-based trigger; `None` for
    /// [`Trigger::AfterRequests`] and past the last firing.
    pub(crate) fn nth(&self, n: u32) -> Option<Duration> {
        match *self {
            Trigger::At(t) => (n == 0).then_some(t),
            Trigger::Every {
                start,
                interval,
                count,
            } => {
                if count.is_some_and(|c| n >= c) {
                    return None;
                }
                interval.checked_mul(n).and_then(|d| start.checked_add(d))
            }
            Trigger::AfterRequests(_) => None,
        }
    }
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActionSpec {
    /// Stop the system under test (SIGTERM / its stop step), wait for the exit, start it again
    /// on the same address.
    Restart,
    /// Replace the system under test while it serves.
    Reload(ReloadSpec),
    /// Send a signal to the system under test.
    Signal {
        /// Which signal.
        signal: Signal,
        /// To which process (the master/main pid by default).
        target: PidTarget,
    },
    /// Send a signal to a process found when the action fires
    /// (`pid_file` or `pid_command`): a server the harness did not start.
    SignalPid {
        /// Which signal.
        signal: Signal,
        /// Where the pid comes from.
        pid: PidSource,
    },
    /// Run a command (`/bin/sh -c`) to completion.
    Exec {
        /// The command, with placeholders.
        command: Template,
        /// Its deadline.
        timeout: Duration,
    },
    /// An external server's reload by the user's command (`do = "exec"` on
    /// `kind = "external"`): run like [`ActionSpec::Exec`], reported as a
    /// reload (the only way such a server is replaced).
    ExecReload {
        /// The command, with placeholders.
        command: Template,
        /// Its deadline.
        timeout: Duration,
    },
    /// SIGKILL the system under test's whole process group: a control that must lose requests.
    Kill {
        /// Start it again afterwards (as after a restart), so the rest of the load is served.
        restart: bool,
    },
    /// Set a sysctl for the rest of the case; the old value is restored when the case ends.
    Sysctl {
        /// e.g. `net.ipv4.tcp_migrate_req`.
        key: String,
        /// The value to write.
        value: String,
    },
}

/// Where the pid of a `signal` action with `pid_file` / `pid_command` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PidSource {
    /// The pid in this file (absolute path): exactly one number.
    File(std::path::PathBuf),
    /// The pid this command (`/bin/sh -c` in the case directory,
    /// placeholders allowed) prints: exactly one number.
    Command(Template),
}

/// How a reload is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadSpec {
    /// The reference proxy, in this mode (never [`ReloadMode::Restart`]: that is
    /// [`ActionSpec::Restart`]).
    Reference(ReloadMode),
    /// A command proxy, with this named variant of `[proxy.reload]`.
    Variant(String),
}

impl ActionSpec {
    /// The kind recorded in the run report.
    pub(crate) fn kind(&self) -> ActionKind {
        match self {
            ActionSpec::Restart => ActionKind::Restart,
            ActionSpec::Reload(_) => ActionKind::Reload,
            ActionSpec::Signal { .. } => ActionKind::Signal,
            // What replaces an external server: reloads for the metrics and the report.
            ActionSpec::SignalPid { .. } | ActionSpec::ExecReload { .. } => ActionKind::Reload,
            ActionSpec::Exec { .. } => ActionKind::Exec,
            ActionSpec::Kill { .. } => ActionKind::Kill,
            ActionSpec::Sysctl { .. } => ActionKind::Sysctl,
        }
    }

    /// The reload mode recorded in the run report: the reference proxy's mode,
    /// or [`ReloadMode::Restart`] for a restart.
    pub(crate) fn mode(&self) -> Option<ReloadMode> {
        match self {
            ActionSpec::Reload(ReloadSpec::Reference(m)) => Some(*m),
            ActionSpec::Restart => Some(ReloadMode::Restart),
            _ => None,
        }
    }

    /// Human description, e.g. `reload (fd-pass)`, `reload sf`, `signal USR2`.
    pub(crate) fn label(&self) -> String {
        match self {
            ActionSpec::Restart => "restart".to_owned(),
            ActionSpec::Reload(ReloadSpec::Reference(m)) => format!("reload ({m})"),
            ActionSpec::Reload(ReloadSpec::Variant(v)) => format!("reload {v}"),
            ActionSpec::Signal { signal, target } => {
                let name = signal.as_str().trim_start_matches("SIG");
                match target {
                    PidTarget::Main => format!("signal {name}"),
                    PidTarget::Previous => format!("signal {name} (previous)"),
                    PidTarget::Group => format!("signal {name} (group)"),
                }
            }
            ActionSpec::SignalPid { signal, pid } => {
                let name = signal.as_str().trim_start_matches("SIG");
                match pid {
                    PidSource::File(f) => format!("signal {name} (pid in {})", f.display()),
                    PidSource::Command(c) => format!("signal {name} (pid of `{c}`)"),
                }
            }
            ActionSpec::Exec { command, .. } | ActionSpec::ExecReload { command, .. } => {
                format!("exec {command}")
            }
            ActionSpec::Kill { restart: false } => "kill -9".to_owned(),
            ActionSpec::Kill { restart: true } => "kill -9, start".to_owned(),
            ActionSpec::Sysctl { key, value } => format!("sysctl {key}={value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trigger_fires_count_times_from_start() {
        let t = Trigger::Every {
            start: Duration::from_millis(500),
            interval: Duration::from_secs(1),
            count: Some(2),
        };
        assert_eq!(t.nth(0), Some(Duration::from_millis(500)));
        assert_eq!(t.nth(1), Some(Duration::from_millis(1500)));
        assert_eq!(t.nth(2), None);
        assert_eq!(Trigger::At(Duration::ZERO).nth(1), None);
        assert_eq!(Trigger::AfterRequests(5).nth(0), None);
    }

    #[test]
    fn labels_are_readable() {
        let a = ActionSpec::Reload(ReloadSpec::Reference(ReloadMode::FdPass));
        assert_eq!(a.label(), "reload (fd-pass)");
        let s = ActionSpec::Signal {
            signal: Signal::SIGUSR2,
            target: PidTarget::Main,
        };
        assert_eq!(s.label(), "signal USR2");
    }
}
