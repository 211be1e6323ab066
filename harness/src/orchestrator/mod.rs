//! Running a scenario: processes, readiness, the timeline of actions, the
//! in-process load, attribution of failures, CPU accounting.
//!
//! [`run::run_scenario`] is the entry point; [`case::run_case`] runs one
//! case. Every process is a [`process::ProcessGuard`] (own process group,
//! killed on every path); everything processes print flows through an
//! [`events::EventLog`]; the system under test is driven through the
//! [`runner::Runner`] trait.

pub mod attribution;
pub mod before_act;
pub mod binaries;
pub mod cancel;
pub mod case;
pub mod casewatch;
pub mod command;
pub mod cpu;
pub mod events;
pub mod evidence;
pub mod fake;
pub mod host;
pub mod ledger;
pub mod load;
pub mod netns;
pub mod noise;
pub mod nstat;
pub mod pids;
pub mod process;
pub mod procstat;
pub mod progress;
pub mod readiness;
pub mod reference;
pub mod run;
pub mod runner;
pub mod timeline;
pub mod trials;
pub mod watchdog;

#[cfg(test)]
mod tests;
