//! Deadlines computed from configured durations, saturating instead of overflowing: a
//! config may say `idle = "1000years"`, and adding that to an instant must not panic.

use std::time::{Duration, Instant};

/// Thirty years: "never" for any deadline of a running process.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `from + d`, or a far-away instant when that cannot be represented.
pub(crate) fn after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d)
        .or_else(|| from.checked_add(FAR))
        .unwrap_or(from)
}

/// `now + d` as a tokio instant, saturating like [`after`].
pub(crate) fn from_now(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(after(Instant::now(), d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(3600));
        assert!(from_now(Duration::MAX) > tokio::time::Instant::now());
    }
}
