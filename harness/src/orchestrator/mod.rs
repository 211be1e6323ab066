//! Running a scenario: processes, readiness, the timeline of actions, the
//! in-process load, attribution of failures, CPU accounting.
//!
//! [`run::run_scenario`] is the entry point; [`case::run_case`] runs one
//! case. Every process is a [`os::process::ProcessGuard`] (own process
//! group, killed on every path); everything processes print flows through an
//! [`events::EventLog`]; the system under test is driven through the
//! [`sut::runner::Runner`] trait.
//!
//! The folder shows the layers: the domain at the top (the run, its cases,
//! the timeline, attribution, the ledger, the events), the system under
//! test in [`sut`], what a case measures in [`measure`], and the
//! operating-system plumbing (processes, signals, `/proc`, namespaces, the
//! watchdog) in [`os`].

pub(crate) mod attribution;
pub(crate) mod before_act;
pub(crate) mod case;
pub(crate) mod events;
pub(crate) mod generations;
pub(crate) mod ledger;
pub(crate) mod load;
pub(crate) mod measure;
pub(crate) mod os;
pub(crate) mod pki;
pub(crate) mod progress;
pub(crate) mod run;
pub(crate) mod sut;
pub(crate) mod timeline;
pub(crate) mod trials;

#[cfg(test)]
mod tests;
