//! reloadbench: run reload scenarios against proxies under load, and gate
//! CI on the result.
//!
//! The binary `reloadbench` is a thin shell over this library:
//! [`Cli`] parses the command line and [`main`] runs each
//! subcommand. A scenario file (`scenario`) is validated before anything
//! starts; the `orchestrator` runs its cases (origin, system under test,
//! in-process load, timeline of actions), the run directory is written as
//! each case ends (`rundir`), with the environment it ran in (`env`), and
//! the expectations (`expect`) give the exit code. Those modules are the
//! crate's own (`pub(crate)`); the few items the integration tests drive
//! directly are re-exported at the root.

pub(crate) mod cause;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod env;
pub(crate) mod expect;
pub(crate) mod init;
pub(crate) mod orchestrator;
pub(crate) mod rundir;
pub(crate) mod scenario;

// The binary's entry points.
pub use cli::Cli;
pub use commands::main;

// What the integration tests in `harness/tests/` drive directly (an
// expectation's metric, the three-way ledger, the evidence sampler against
// real processes); everything else is the crate's own.
pub use expect::{Metric, WsMetric};
pub use orchestrator::ledger::{OriginUnavailable, Sides, read_origin, reconcile};
pub use orchestrator::measure::evidence::phases::observe as observe_phases;
pub use orchestrator::measure::evidence::sampler::{Sampler, SamplerConfig};
pub use orchestrator::measure::evidence::series::case_evidence;
