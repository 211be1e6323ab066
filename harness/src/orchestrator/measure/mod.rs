//! What a case measures besides the load's own report: CPU time of the
//! participants ([`cpu`]), the machine's other CPU use ([`noise`]), the
//! kernel's TCP counters ([`nstat`], read at the points [`casewatch`] names)
//! and the kernel's evidence about the system under test's sockets
//! ([`evidence`]).

pub(crate) mod casewatch;
pub(crate) mod cpu;
pub(crate) mod evidence;
pub(crate) mod noise;
pub(crate) mod nstat;
