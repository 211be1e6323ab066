//! reloadbench: run reload scenarios against proxies under load, and gate
//! CI on the result.
//!
//! The binary `reloadbench` is a thin shell over this library:
//! [`cli::Cli`] parses the command line and [`commands`] runs each
//! subcommand. A scenario file ([`scenario`]) is validated before anything
//! starts; the [`orchestrator`] runs its cases (origin, system under test,
//! in-process load, timeline of actions), the run directory is written as
//! each case ends ([`rundir`]), with the environment it ran in ([`mod@env`]),
//! and the expectations ([`expect`]) give the exit code.

pub mod cli;
pub mod commands;
pub mod env;
pub mod expect;
pub mod orchestrator;
pub mod rundir;
pub mod scenario;
