//! The slow-machine multiplier for the workspace's tests (feature `test-timing`, enabled
//! only from the crates' `[dev-dependencies]`, so it never reaches a release binary).
//!
//! `RELOADBENCH_TEST_SLOW=<k>` (a positive integer, default 1) multiplies every limit a test
//! relies on: its own waits on events and processes, and the timeouts and deadlines it
//! hands to the code under test that must not fire before the test's event. A limit a test
//! expects to fire is left as it is; the upper bound the test checks it against is scaled.
//! `REFPROXY_TEST_SLOW`, the proxy tests' old name, is still read when the new one is unset.

use std::time::Duration;

/// The variable that holds the multiplier.
pub const VAR: &str = "RELOADBENCH_TEST_SLOW";

/// The proxy tests' old name for [`VAR`], read when [`VAR`] is unset.
pub const OLD_VAR: &str = "REFPROXY_TEST_SLOW";

/// The multiplier: [`VAR`] (or [`OLD_VAR`]) as a positive integer, else 1.
pub fn factor() -> u32 {
    factor_of(std::env::var(VAR).ok().or_else(|| std::env::var(OLD_VAR).ok()))
}

fn factor_of(value: Option<String>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}

/// `d` times the multiplier.
pub fn scaled(d: Duration) -> Duration {
    d.saturating_mul(factor())
}

/// `secs` seconds times the multiplier.
pub fn scaled_secs(secs: u64) -> Duration {
    scaled(Duration::from_secs(secs))
}

/// `ms` milliseconds times the multiplier.
pub fn scaled_ms(ms: u64) -> Duration {
    scaled(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_positive_integer_multiplies_anything_else_is_one() {
        assert_eq!(factor_of(None), 1);
        assert_eq!(factor_of(Some("3".into())), 3);
        assert_eq!(factor_of(Some(" 4 ".into())), 4);
        assert_eq!(factor_of(Some("0".into())), 1);
        assert_eq!(factor_of(Some("x".into())), 1);
        assert_eq!(factor_of(Some("-2".into())), 1);
    }
}
