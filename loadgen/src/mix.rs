//! A weighted mix of request kinds ([`RequestKind`]) and the deterministic
//! schedule that gives each request its kind from its index in the run.
//!
//! The schedule is a smooth weighted round-robin (nginx's upstream
//! balancing): with weights 4 and 1 the kinds go `0 0 1 0 0 | 0 0 1 0 0 ...`
//! rather than `0 0 0 0 1`, so every window of the run has the configured
//! proportions, not just the whole of it. The cycle is computed once (its
//! length is the sum of the weights divided by their greatest common
//! divisor); request `i` gets `cycle[i % len]`, so the same configuration
//! sends the same kinds in the same order on every run, whatever the
//! number of clients or threads.

use reloadbench_model::load::RequestKindSummary;

/// The most kinds a mix may have.
pub const MAX_MIX_KINDS: usize = 256;
/// The largest sum of weights, once divided by their greatest common divisor
/// (the length of the schedule's cycle).
pub const MAX_MIX_CYCLE: u64 = 100_000;

/// One kind of request of a mix ([`crate::LoadConfig::mix`]).
///
/// Each kind's request bytes are built once, when the run starts; the run's
/// [`crate::LoadConfig::headers`] are sent with every kind (a kind's own
/// header of the same name replaces one of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKind {
    /// Relative weight (at least 1): the kind's share of the requests is
    /// `weight / sum of weights`.
    pub weight: u32,
    /// Method, e.g. `GET` or `POST`.
    pub method: String,
    /// Path and query, starting with `/`; `None`: the URL's.
    pub path: Option<String>,
    /// Headers of this kind.
    pub headers: Vec<(String, String)>,
    /// Request body, sent with `Content-Length` (and
    /// [`RequestKind::content_type`]).
    pub body: Option<Vec<u8>>,
    /// Content type of the body (default `text/plain` when a body is set).
    pub content_type: Option<String>,
}

impl RequestKind {
    /// A kind of weight 1: `method` on the URL's path, no headers, no body.
    pub fn new(method: &str) -> RequestKind {
        RequestKind {
            weight: 1,
            method: method.to_owned(),
            path: None,
            headers: Vec::new(),
            body: None,
            content_type: None,
        }
    }

    /// The kind as reported, with `url_path` for a kind without a path.
    pub(crate) fn summary(&self, url_path: &str) -> RequestKindSummary {
        RequestKindSummary {
            weight: self.weight,
            method: self.method.clone(),
            path: self.path.clone().unwrap_or_else(|| url_path.to_owned()),
            body_bytes: self.body.as_ref().map_or(0, |b| b.len() as u64),
        }
    }
}

/// One kind, ready to send: what a client needs per request.
#[derive(Debug, Clone)]
pub(crate) struct PreparedKind {
    /// Request bytes (head and body), built once.
    pub(crate) request: Vec<u8>,
    /// With request ids: where the id header goes in `request`.
    pub(crate) id_at: Option<usize>,
    /// The method is HEAD (responses have no body).
    pub(crate) head_request: bool,
    /// The request carries an `Upgrade` header (a 101 answers it).
    pub(crate) asks_upgrade: bool,
    /// The method is idempotent (RFC 9110 §9.2.2): its failures before any
    /// response byte on a reused connection are retryable.
    pub(crate) idempotent: bool,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The sum of `weights` divided by their greatest common divisor: the
/// length of the schedule's cycle.
pub(crate) fn cycle_len(weights: &[u32]) -> u64 {
    let g = weights.iter().fold(0, |g, w| gcd(g, u64::from(*w))).max(1);
    weights.iter().map(|w| u64::from(*w) / g).sum()
}

/// Which kind each request gets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schedule {
    /// One kind index per position in the cycle; empty: always kind 0.
    cycle: Vec<u16>,
}

impl Schedule {
    /// The smooth weighted round-robin cycle of `weights` (at most
    /// [`MAX_MIX_KINDS`] weights, each at least 1, [`cycle_len`] at most
    /// [`MAX_MIX_CYCLE`]: [`crate::LoadConfig::check`] enforces it).
    pub(crate) fn new(weights: &[u32]) -> Schedule {
        if weights.len() < 2 {
            return Schedule::default();
        }
        let g = weights.iter().fold(0, |g, w| gcd(g, u64::from(*w))).max(1);
        let w: Vec<i64> = weights.iter().map(|x| (u64::from(*x) / g) as i64).collect();
        let total: i64 = w.iter().sum();
        let mut current = vec![0i64; w.len()];
        let mut cycle = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for k in 0..w.len() {
                current[k] += w[k];
                if current[k] > current[best] {
                    best = k;
                }
            }
            current[best] -= total;
            cycle.push(best as u16);
        }
        Schedule { cycle }
    }

    /// The kind of request `index`.
    pub(crate) fn kind_of(&self, index: u64) -> usize {
        if self.cycle.is_empty() {
            return 0;
        }
        usize::from(self.cycle[(index % self.cycle.len() as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(weights: &[u32], n: u64) -> Vec<u64> {
        let s = Schedule::new(weights);
        let mut c = vec![0u64; weights.len()];
        for i in 0..n {
            c[s.kind_of(i)] += 1;
        }
        c
    }

    #[test]
    fn proportions_over_10k_requests_are_within_1_percent() {
        for weights in [
            &[80, 20][..],
            &[1, 1],
            &[7, 3, 1],
            &[99, 1],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            &[333, 667],
            &[50_000, 49_999],
        ] {
            let n = 10_000;
            let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
            for (k, got) in counts(weights, n).into_iter().enumerate() {
                let want = n as f64 * f64::from(weights[k]) / total as f64;
                assert!(
                    (got as f64 - want).abs() <= n as f64 / 100.0,
                    "{weights:?} kind {k}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn every_full_cycle_is_exact_and_smooth() {
        assert_eq!(cycle_len(&[80, 20]), 5);
        assert_eq!(counts(&[80, 20], 5), vec![4, 1]);
        assert_eq!(counts(&[80, 20], 10_000), vec![8_000, 2_000]);
        let s = Schedule::new(&[4, 1]);
        let seq: Vec<usize> = (0..5).map(|i| s.kind_of(i)).collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 0], "spread, not batched");
        // 1:1 alternates.
        let s = Schedule::new(&[1, 1]);
        assert_eq!(
            (0..4).map(|i| s.kind_of(i)).collect::<Vec<_>>(),
            [0, 1, 0, 1]
        );
    }

    #[test]
    fn one_kind_or_none_is_always_kind_0() {
        for weights in [&[][..], &[5]] {
            let s = Schedule::new(weights);
            assert!((0..100).all(|i| s.kind_of(i) == 0));
        }
    }
}
