//! Scenario files: TOML in (`raw`), validated (`validate`) into a typed
//! [`Scenario`] before anything starts.
//!
//! A scenario describes one experiment: an origin, a load, a system under
//! test and a list of cases, each with a timeline of actions (restart,
//! reload, signal, ...) and expectations (the CI gate). Every problem is
//! reported with `file:line:col: field: message`, all at once where the file
//! parsed.

mod action;
mod error;
mod loadgen;
mod peer;
mod raw;
mod shape;
mod spec;
mod template;
mod validate;

use std::path::{Path, PathBuf};

pub(crate) use action::{Action, ActionSpec, PidSource, ReloadSpec, Trigger};
pub(crate) use error::ScenarioErrors;
pub(crate) use spec::{
    CommandOrigin, CommandProxy, DrainTunnels, ExternalProxy, LoadH2, LoadKind, LoadSpec, LoadTls,
    LoadWs, MainPid, OriginSpec, PidTarget, ProxySpec, Readiness, ReadySpec, ReferenceProxy,
    ReloadVariant, Step, StepAction, Target, TicketKeysFile,
};
pub(crate) use template::{Template, TemplateError, Vars};

use crate::expect::Expectation;

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scenario {
    /// The file stem, e.g. `seed` for `scenarios/seed.toml`.
    pub id: String,
    /// `name` from the file (the id when absent).
    pub name: String,
    /// `description` from the file (may be empty).
    pub description: String,
    /// The file as given.
    pub path: PathBuf,
    /// The directory holding the file (config templates are relative to it).
    pub dir: PathBuf,
    /// The file's text, as read (copied into the run directory).
    pub source: String,
    /// The origin server.
    pub origin: OriginSpec,
    /// The scenario-wide `[load]` (each case has its merged copy; this one may have
    /// neither `requests` nor `duration` when every case sets its own).
    pub load: LoadSpec,
    /// The scenario-wide system under test (each case has its merged copy, which
    /// is the one to run).
    pub proxy: ProxySpec,
    /// The cases, in file order (at least one).
    pub cases: Vec<Case>,
}

/// One case: a load run with a timeline and expectations.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    /// Name, unique in the scenario.
    pub name: String,
    /// Optional description.
    pub description: String,
    /// The load: the scenario's `[load]` with the case's `[case.load]` over it.
    pub load: LoadSpec,
    /// The system under test: the scenario's `[proxy]` with the case's
    /// `[case.proxy]` over it (e.g. another `start` command for master-worker).
    pub proxy: ProxySpec,
    /// The timeline, in file order.
    pub actions: Vec<Action>,
    /// The gate.
    pub expect: Vec<Expectation>,
    /// Start the reference proxy as a master (`--master`): set when the case
    /// reloads in `master-worker` mode.
    pub master: bool,
    /// How many trials of the case to run (`repeat`, at least 1): the
    /// case's own, else the scenario's, else 1.
    pub repeat: u32,
}

impl Case {
    /// The name made file-system friendly: lowercase ASCII letters, digits and `-`.
    pub(crate) fn slug(&self) -> String {
        let mut s = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                s.push(c.to_ascii_lowercase());
            } else if !s.ends_with('-') {
                s.push('-');
            }
        }
        let s = s.trim_matches('-');
        if s.is_empty() {
            "case".to_owned()
        } else {
            s.to_owned()
        }
    }
}

/// Splits an external server's `target` URL (see `kind = "external"`).
#[cfg(test)]
pub(crate) fn validate_target(url: &str) -> Result<Target, String> {
    validate::parse_target(url)
}

/// Reads and validates a scenario file.
pub(crate) fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| ScenarioErrors::whole_file(path, format!("cannot read: {e}")))?;
    parse_str(path, &source)
}

/// Validates scenario text as if read from `path` (used for errors, the id
/// and to resolve config templates).
pub(crate) fn parse_str(path: &Path, source: &str) -> Result<Scenario, ScenarioErrors> {
    validate::validate(path, source)
}

#[cfg(test)]
mod tests;
