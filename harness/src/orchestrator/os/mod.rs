//! The operating-system plumbing under the orchestrator: child processes in
//! their own process groups ([`process`]), the run's pid list ([`pids`]),
//! `/proc/<pid>/stat` ([`procstat`]), Ctrl-C and SIGTERM ([`cancel`]), the
//! programs the run starts ([`binaries`]), actions on the host ([`host`]), a
//! network namespace per case ([`netns`]) and the watchdog that kills every
//! process of the run when the harness dies ([`watchdog`]).

pub(crate) mod binaries;
pub(crate) mod cancel;
pub(crate) mod host;
pub(crate) mod netns;
pub(crate) mod pids;
pub(crate) mod process;
pub(crate) mod procstat;
pub(crate) mod watchdog;
