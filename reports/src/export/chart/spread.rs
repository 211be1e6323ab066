//! Summaries of many values for a chart whose size must not grow with them:
//! nearest-rank percentiles ([`Spread`]) and pixel bins ([`bin_runs`]), so a
//! strip of ten thousand dots is drawn as at most one shape per bin.

/// p50, p90, p99 and maximum of a set of values (nearest rank: the smallest
/// value with at least p % of the values at or below it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Spread {
    /// How many values.
    pub(super) count: usize,
    /// Median.
    pub(super) p50: f64,
    /// 90th percentile.
    pub(super) p90: f64,
    /// 99th percentile.
    pub(super) p99: f64,
    /// Largest value.
    pub(super) max: f64,
}

impl Spread {
    /// The spread of `values` (in any order), `None` when there are none.
    pub(super) fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let max = *sorted.last()?;
        Some(Spread {
            count: sorted.len(),
            p50: nearest_rank(&sorted, 50.0),
            p90: nearest_rank(&sorted, 90.0),
            p99: nearest_rank(&sorted, 99.0),
            max,
        })
    }
}

/// The nearest-rank `p`-th percentile of `sorted` (ascending, not empty).
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// A run of neighbouring bins drawn as one shape: pixels `from..to` (bin
/// edges) whose bins all have the same shade `level` (1 to `levels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BinRun {
    /// First pixel of the run.
    pub(super) from: i32,
    /// Pixel after the run.
    pub(super) to: i32,
    /// Shade: 1 for the sparsest bins up to `levels` for the fullest.
    pub(super) level: u32,
}

/// Puts pixel positions `xs` into bins `width` pixels wide, shades each bin
/// by its count relative to the fullest one in `levels` steps, and merges
/// neighbouring bins of the same shade: at most one run per occupied bin,
/// whatever the number of positions.
pub(super) fn bin_runs(xs: impl IntoIterator<Item = i32>, width: i32, levels: u32) -> Vec<BinRun> {
    let width = width.max(1);
    let levels = levels.max(1);
    let mut counts = std::collections::BTreeMap::<i32, u64>::new();
    for x in xs {
        *counts.entry(x.div_euclid(width)).or_default() += 1;
    }
    let fullest = counts.values().copied().max().unwrap_or(1);
    let mut runs: Vec<BinRun> = Vec::new();
    for (bin, count) in counts {
        let level = (count * u64::from(levels)).div_ceil(fullest) as u32;
        let from = bin * width;
        match runs.last_mut() {
            Some(last) if last.to == from && last.level == level => last.to = from + width,
            _ => runs.push(BinRun {
                from,
                to: from + width,
                level,
            }),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = Spread::of(&values).unwrap();
        assert_eq!(
            (s.count, s.p50, s.p90, s.p99, s.max),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        // Ten values: p99 is the largest, p50 the fifth.
        let s = Spread::of(&[5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 10.0, 6.0]).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (5.0, 9.0, 10.0, 10.0));
        let s = Spread::of(&[42.0]).unwrap();
        assert_eq!((s.count, s.p50, s.p99, s.max), (1, 42.0, 42.0, 42.0));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
    }

    #[test]
    fn bins_merge_neighbours_of_the_same_shade_and_stay_bounded() {
        // Two positions in bin 0, one in bin 1, one in bin 2, one far away.
        let runs = bin_runs([0, 1, 2, 5, 40], 2, 2);
        assert_eq!(
            runs,
            vec![
                BinRun {
                    from: 0,
                    to: 2,
                    level: 2
                },
                BinRun {
                    from: 2,
                    to: 6,
                    level: 1
                },
                BinRun {
                    from: 40,
                    to: 42,
                    level: 1
                },
            ]
        );
        // A million positions over 600 pixels: at most 300 runs of 2 pixels.
        let runs = bin_runs((0..1_000_000i64).map(|i| ((i * 7919) % 600) as i32), 2, 4);
        assert!(runs.len() <= 300, "{} runs", runs.len());
        assert!(runs.iter().all(|r| (1..=4).contains(&r.level)));
        assert!(bin_runs(std::iter::empty(), 2, 4).is_empty());
    }
}
