//! The system under test as the orchestrator drives it: the [`runner::Runner`]
//! trait, its implementations for refproxy ([`reference`](mod@reference)) and for any server
//! driven by command templates ([`command`]), for a server it attaches to
//! ([`external`]), and the readiness checks they
//! wait on ([`readiness`]). `fake` is a scripted runner, built only for tests.

pub(crate) mod command;
pub(crate) mod external;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod pid_source;
pub(crate) mod readiness;
pub(crate) mod reference;
pub(crate) mod runner;
