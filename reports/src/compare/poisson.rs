//! The exact conditional test of two Poisson rates: with `k_old` failures in
//! `n_old` requests and `k_new` in `n_new`, under equal rates
//! `k_new | k_old + k_new ~ Binomial(k_old + k_new, n_new / (n_old + n_new))`.
//! Tail probabilities are summed in log space, so hundreds or millions of
//! failures neither overflow nor underflow.

/// `ln(n!)`: an exact sum below 256, Stirling's series above (error < 1e-14).
fn ln_factorial(n: u64) -> f64 {
    if n < 256 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x.powi(3))
        + 1.0 / (1260.0 * x.powi(5))
}

/// `ln P(X = i)` for `X ~ Binomial(m, q)`, `0 < q < 1`.
fn ln_pmf(m: u64, q: f64, i: u64) -> f64 {
    ln_factorial(m) - ln_factorial(i) - ln_factorial(m - i)
        + i as f64 * q.ln()
        + (m - i) as f64 * (1.0 - q).ln()
}

/// `P(X >= k)` for `X ~ Binomial(m, q)`.
pub(super) fn upper_tail(m: u64, q: f64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > m || q <= 0.0 {
        return 0.0;
    }
    if q >= 1.0 {
        return 1.0;
    }
    let logs: Vec<f64> = (k..=m).map(|i| ln_pmf(m, q, i)).collect();
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logs.iter().map(|l| (l - max).exp()).sum();
    (max + sum.ln()).exp().min(1.0)
}

/// `P(X <= k)` for `X ~ Binomial(m, q)`.
pub(super) fn lower_tail(m: u64, q: f64, k: u64) -> f64 {
    // X <= k  ⇔  m − X >= m − k, and m − X ~ Binomial(m, 1 − q).
    upper_tail(m, 1.0 - q, m.saturating_sub(k))
}

/// The outcome of comparing two failure counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RateTest {
    /// `P(k_new or more | total)` under equal rates: small when NEW fails more.
    pub(super) p_more: f64,
    /// `P(k_new or fewer | total)` under equal rates: small when NEW fails less.
    pub(super) p_less: f64,
    /// The smallest `p_more` any split of the total could give (all in
    /// NEW): when it is not below the significance level, the test cannot
    /// tell a rise from chance.
    pub(super) p_floor: f64,
    /// The failures NEW would have at BASE's rate: `k_old × n_new / n_old`.
    pub(super) expected_new: f64,
}

/// Tests `k_new` of `n_new` against `k_old` of `n_old` (`None` when either
/// run made no request).
pub(super) fn rate_test(k_old: u64, n_old: u64, k_new: u64, n_new: u64) -> Option<RateTest> {
    if n_old == 0 || n_new == 0 {
        return None;
    }
    let m = k_old + k_new;
    let q = n_new as f64 / (n_old as f64 + n_new as f64);
    Some(RateTest {
        p_more: upper_tail(m, q, k_new),
        p_less: lower_tail(m, q, k_new),
        p_floor: if m == 0 { 1.0 } else { upper_tail(m, q, m) },
        expected_new: k_old as f64 * n_new as f64 / n_old as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) {
        assert!(
            (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE),
            "{a} vs {b}"
        );
    }

    /// Values computed by hand from binomial coefficients (C(10,9..10) =
    /// 10, 1; C(20,15..20) = 15504, 4845, 1140, 190, 20, 1) and, for the
    /// large ones, with python3's exact `fractions.Fraction` and
    /// `math.comb`: sum(comb(m, i) * q**i * (1-q)**(m-i) for i in k..=m).
    #[test]
    fn binomial_tails_match_independent_values() {
        close(upper_tail(3, 0.5, 3), 0.125, 1e-12);
        close(upper_tail(3, 0.5, 2), 0.5, 1e-12);
        close(upper_tail(10, 0.5, 9), 11.0 / 1024.0, 1e-12);
        close(upper_tail(20, 0.5, 15), 21700.0 / 1_048_576.0, 1e-12);
        // 1 − (0.75⁴ + 4 · 0.25 · 0.75³)
        close(upper_tail(4, 0.25, 2), 0.261_718_75, 1e-12);
        close(lower_tail(4, 0.25, 1), 1.0 - 0.261_718_75, 1e-12);
        // python3: exact sum, m = 2000, q = 1/2, k = 1000 → 0.5089195055729272
        close(upper_tail(2000, 0.5, 1000), 0.508_919_505_572_927, 1e-9);
        // python3: m = 1000, q = 0.3, k = 330 → 0.02158184429584525
        close(upper_tail(1000, 0.3, 330), 0.021_581_844_295_845, 1e-9);
        // All 400 in NEW at q = 1/2: 2^-400, far below f64's exp range of a
        // naive product of pmfs, exact in log space.
        close(upper_tail(400, 0.5, 400), 0.5f64.powi(400), 1e-9);
        assert_eq!(upper_tail(5, 0.5, 0), 1.0);
        assert_eq!(upper_tail(5, 0.5, 6), 0.0);
    }

    #[test]
    fn ln_factorial_is_continuous_across_the_switch_to_stirling() {
        // ln(256!) − ln(255!) = ln(256)
        close(ln_factorial(256) - ln_factorial(255), 256f64.ln(), 1e-12);
        close(ln_factorial(10), 3_628_800f64.ln(), 1e-14);
    }

    #[test]
    fn rate_test_sees_a_rise_a_fall_and_when_it_has_no_power() {
        // Same requests: 0 → 400 failures is certain, 0 → 3 is not (p = 1/8).
        let t = rate_test(0, 10_000, 400, 10_000).unwrap();
        assert!(t.p_more < 1e-100, "{t:?}");
        let t = rate_test(0, 10_000, 3, 10_000).unwrap();
        close(t.p_more, 0.125, 1e-12);
        close(t.p_floor, 0.125, 1e-12);
        // 100 → 104 with equal exposure: chance.
        let t = rate_test(100, 10_000, 104, 10_000).unwrap();
        assert!(t.p_more > 0.3 && t.p_less > 0.3, "{t:?}");
        // Twice the requests, twice the failures: the same rate.
        let t = rate_test(50, 10_000, 100, 20_000).unwrap();
        close(t.expected_new, 100.0, 1e-12);
        assert!(t.p_more > 0.4, "{t:?}");
        assert_eq!(rate_test(1, 0, 1, 10), None);
    }
}
