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
    factor_of(
        std::env::var(VAR)
            .ok()
            .or_else(|| std::env::var(OLD_VAR).ok()),
    )
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

/// `text` (a scenario or config file) with every `timeout = "<n>s"` or `"<n>ms"` (a load's
/// request timeout, a `stop_timeout`, a readiness `timeout`) times the multiplier: limits the
/// tests rely on not to run out. Unchanged when the multiplier is 1.
pub fn scaled_timeouts(text: &str) -> String {
    timeouts_times(text, factor())
}

fn timeouts_times(text: &str, k: u32) -> String {
    const KEY: &str = "timeout = \"";
    if k == 1 {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let unit = ["ms\"", "s\""]
            .into_iter()
            .find(|u| tail[digits..].starts_with(u));
        match (tail[..digits].parse::<u64>(), unit) {
            (Ok(n), Some(unit)) if digits > 0 => {
                out.push_str(&format!("{}{unit}", n.saturating_mul(u64::from(k))));
                rest = &tail[digits + unit.len()..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    out
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

    #[test]
    fn timeouts_in_a_scenario_are_multiplied_and_nothing_else() {
        let text = "[load]\nduration = \"2s\"\ntimeout = \"5s\"\nready = { port = true, timeout = \"60s\" }\n\
                    stop_timeout = \"500ms\"\nx_timeout = \"1m\"\ny = { timeout = \"\" }\n";
        assert_eq!(timeouts_times(text, 1), text);
        assert_eq!(
            timeouts_times(text, 3),
            "[load]\nduration = \"2s\"\ntimeout = \"15s\"\nready = { port = true, timeout = \"180s\" }\n\
             stop_timeout = \"1500ms\"\nx_timeout = \"1m\"\ny = { timeout = \"\" }\n"
        );
    }
}
