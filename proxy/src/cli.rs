//! The `refproxy` command line.
//!
//! ```text
//! refproxy --config F [--events PATH|-] [--generation N]
//! refproxy --config F --upgrade-from SOCK --mode fd-pass|naive [--events PATH|-]
//! refproxy --config F --master [--events PATH|-]
//! refproxy check --config F
//! ```

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Command line of `refproxy`.
#[derive(Debug, Parser)]
#[command(
    name = "refproxy",
    version,
    about = "Reference reverse proxy: restart, naive reload, fd-passing reload, master-worker",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A subcommand (`check`); without one, refproxy serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the serving modes.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config file only: exit 0, or 2 with the error.
    Check {
        /// The TOML config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Options of the serving modes (plain, upgrade, master, worker).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to write the JSON-lines events: a file path, or `-` for stdout (the default).
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub events: String,
    /// Generation number of a plain start (reloads count up from it).
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with_all = ["upgrade_from", "master"])]
    pub generation: u64,
    /// Replace the process that owns this control socket.
    #[arg(
        long,
        value_name = "SOCK",
        requires = "mode",
        conflicts_with = "master"
    )]
    pub upgrade_from: Option<PathBuf>,
    /// How to replace it (with `--upgrade-from`).
    #[arg(long, value_enum, requires = "upgrade_from")]
    pub mode: Option<UpgradeMode>,
    /// Run as the master of a master-worker tree.
    #[arg(long)]
    pub master: bool,
    /// Run as a worker of a master (started by the master; receives the sockets on this fd).
    #[arg(long, value_name = "FD", hide = true, conflicts_with_all = ["master", "upgrade_from"])]
    pub worker: Option<i32>,
    /// Fault injection for tests: exit 1 after receiving the listening sockets, before READY.
    #[arg(long)]
    pub fail_before_ready: bool,
    /// Fault injection for tests: an upgrading process (or, with `--master`, every
    /// replacement worker) stops itself with SIGSTOP at this point of its takeover.
    #[arg(long, value_enum, value_name = "POINT", hide = true)]
    pub freeze_at: Option<FreezePoint>,
}

/// Where `--freeze-at` stops a new generation (test fault injection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FreezePoint {
    /// Set up, before sending `Commit`.
    BeforeCommit,
    /// `Commit` sent, before reading `Committed`.
    AfterCommit,
    /// `Committed` read, before accepting anything.
    AfterCommitted,
    /// Taken over (the old process released the path and had its first heartbeat
    /// answered; for a worker: the master released it): the old process drains.
    AfterTakeover,
}

impl FreezePoint {
    /// The flag's value, to pass it on to a worker.
    pub fn as_arg(self) -> &'static str {
        match self {
            FreezePoint::BeforeCommit => "before-commit",
            FreezePoint::AfterCommit => "after-commit",
            FreezePoint::AfterCommitted => "after-committed",
            FreezePoint::AfterTakeover => "after-takeover",
        }
    }

    /// Stops this process with SIGSTOP if `at` is this point (for tests).
    pub fn apply(at: Option<FreezePoint>, here: FreezePoint) {
        if at == Some(here) {
            tracing::warn!("--freeze-at {}: stopping with SIGSTOP", here.as_arg());
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
        }
    }
}

/// How `--upgrade-from` replaces the old process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpgradeMode {
    /// Take the old process's listening sockets over the control socket (`SCM_RIGHTS`).
    FdPass,
    /// Bind new `SO_REUSEPORT` sockets; the old process closes its own.
    Naive,
}

impl UpgradeMode {
    /// The model's name for this mode.
    pub fn reload_mode(self) -> reloadbench_model::event::ReloadMode {
        match self {
            UpgradeMode::FdPass => reloadbench_model::event::ReloadMode::FdPass,
            UpgradeMode::Naive => reloadbench_model::event::ReloadMode::Naive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn upgrade_requires_mode() {
        assert!(Cli::try_parse_from(["refproxy", "--config", "f", "--upgrade-from", "s"]).is_err());
        let cli = Cli::try_parse_from([
            "refproxy",
            "--config",
            "f",
            "--upgrade-from",
            "s",
            "--mode",
            "fd-pass",
        ])
        .unwrap();
        assert_eq!(cli.serve.mode, Some(UpgradeMode::FdPass));
    }

    #[test]
    fn check_is_a_subcommand() {
        let cli = Cli::try_parse_from(["refproxy", "check", "--config", "f"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check { .. })));
    }
}
