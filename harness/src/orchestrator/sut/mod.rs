//! The system under test as the orchestrator drives it: the [`runner::Runner`]
//! trait, its implementations for refproxy ([`reference`](mod@reference)) and for any server
//! driven by command templates ([`command`]), and the readiness checks they
//! wait on ([`readiness`]).

pub mod command;
pub mod fake;
pub mod readiness;
pub mod reference;
pub mod runner;
