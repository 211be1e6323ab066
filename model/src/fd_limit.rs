//! The open-file limit of the calling process: every program of the workspace
//! that holds many connections (loadgen, the origin, refproxy) raises its soft
//! `RLIMIT_NOFILE` to the hard limit at start, as HAProxy does, so that the
//! limit a shell leaves (often 1,024) is not what a benchmark measures.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The open-file limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the most the soft limit can be raised to).
    pub hard: u64,
}

impl FdLimit {
    /// Whether [`raise`] changed the soft limit.
    pub fn raised(&self) -> bool {
        self.soft > self.before
    }
}

/// Raises the soft open-file limit to the hard limit (nothing changes when
/// they are equal). The limits are read back, so what it returns is what holds.
pub fn raise() -> nix::Result<FdLimit> {
    let (before, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if before < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(FdLimit { before, soft, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_the_soft_limit_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let low = hard.min(256);
        setrlimit(Resource::RLIMIT_NOFILE, low, hard).unwrap();
        let limit = raise().unwrap();
        assert_eq!((limit.before, limit.soft, limit.hard), (low, hard, hard));
        assert_eq!(limit.raised(), low < hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (hard, hard));
        // Again: nothing left to raise.
        assert!(!raise().unwrap().raised());
    }
}
