//! Parsing one expectation from its scenario form: `key = 0`, `key = 0.5`
//! or `key = "<= 5"` (operators `=`, `==`, `!=`, `<`, `<=`, `>`, `>=`).

use super::{Expectation, Metric, Op};

/// Why an expectation could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExpectParseError {
    /// The key names no metric.
    #[error("unknown metric {key:?}{hint}; known: {KNOWN_SUMMARY}")]
    UnknownMetric {
        /// The key as written.
        key: String,
        /// `" (did you mean \"x\"?)"` when a known key is close, else empty.
        hint: String,
    },
    /// The condition text is not `OP NUMBER`.
    #[error(
        "bad condition {text:?}: expected a number or \"OP NUMBER\" with OP one of = != < <= > >="
    )]
    BadCondition {
        /// The text as written.
        text: String,
    },
    /// The value is neither a number nor a string.
    #[error("expected a number or a string like \"<= 5\", found {found}")]
    BadType {
        /// The TOML type found.
        found: String,
    },
}

/// Parses `key = value` into an [`Expectation`].
pub(crate) fn parse_condition(
    key: &str,
    value: &toml::Value,
) -> Result<Expectation, ExpectParseError> {
    let metric = Metric::from_key(key).ok_or_else(|| ExpectParseError::UnknownMetric {
        key: key.to_owned(),
        hint: closest(key)
            .map(|k| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default(),
    })?;
    let (op, number, text) = match value {
        toml::Value::Integer(i) => (Op::Eq, *i as f64, i.to_string()),
        toml::Value::Float(f) => (Op::Eq, *f, f.to_string()),
        toml::Value::String(s) => {
            let (op, rest) = split_op(s.trim());
            let rest = rest.trim();
            let number = rest
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| ExpectParseError::BadCondition { text: s.clone() })?;
            (op, number, rest.to_owned())
        }
        other => {
            return Err(ExpectParseError::BadType {
                found: other.type_str().to_owned(),
            });
        }
    };
    let mut e = Expectation::new(metric, op, number);
    e.expr = format!("{key} {} {text}", op.as_str());
    Ok(e)
}

/// The metric families, for error messages.
const KNOWN_SUMMARY: &str = "failed, failed_ratio, ok, not_started, failed_on_reused, rps, ok_rps, \
a failure class (connect_refused, reset, truncated, ...), ab_connect/ab_receive/ab_length/\
ab_exceptions/ab_write_errors/ab_non_2xx, p50_ms/p90_ms/p99_ms/p999_ms/max_ms/mean_ms, \
failed_retryable, failed_not_retryable, retries, failed.<METHOD> (failed.POST, ...), \
per_reload.failed, per_reload.<class>, per_reload.failed.<METHOD>, reload_failed, reload_time_ms, p99_reload_ratio, \
lost_after_forwarding, ledger_balanced, tls_failed, tls_resumed_ratio, \
per_reload.tls_resumed_ratio, handshake_p99_ms, goaway, per_reload.goaway, goaway_refused, \
stream_reset, stream_lost, ws_cut, ws_closed, ws_failed, messages_lost, per_reload.<ws count> \
(per_reload.ws_cut, ...), reconnect_p99_ms, old_generations_max, messages_lost_per_close";

/// The known key nearest to `key` (edit distance at most 2), if any.
fn closest(key: &str) -> Option<String> {
    // `failed.post`: methods are written in upper case.
    for prefix in ["failed.", "per_reload.failed."] {
        if let Some(m) = key.strip_prefix(prefix) {
            let upper = m.to_ascii_uppercase();
            if upper != m && super::metric::is_method(&upper) {
                return Some(format!("{prefix}{upper}"));
            }
        }
    }
    Metric::all_keys()
        .into_iter()
        .map(|k| (distance(&k, key), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (also for near misses of scenario field names).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn split_op(s: &str) -> (Op, &str) {
    const OPS: [(&str, Op); 7] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("=", Op::Eq),
    ];
    OPS.iter()
        .find_map(|(p, op)| s.strip_prefix(p).map(|rest| (*op, rest)))
        .unwrap_or((Op::Eq, s))
}
