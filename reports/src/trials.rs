//! The trials of repeated cases: `results.json` keeps one entry per (case,
//! trial) in the order they ran; this groups them back by case name and
//! summarizes a number across trials (median and range).

use reloadbench_model::run::CaseReport;

/// The entries of each case name, in order of first appearance; a case that
/// ran once has one entry.
pub fn by_case(cases: &[CaseReport]) -> Vec<(&str, Vec<&CaseReport>)> {
    let mut out: Vec<(&str, Vec<&CaseReport>)> = Vec::new();
    for c in cases {
        match out.iter_mut().find(|(n, _)| *n == c.name) {
            Some((_, v)) => v.push(c),
            None => out.push((c.name.as_str(), vec![c])),
        }
    }
    for (_, v) in &mut out {
        v.sort_by_key(|c| c.trial.unwrap_or(1));
    }
    out
}

/// Median and range of a number over trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (NaNs left out); `None` when none is left.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Half the range relative to the median, `(max − min) / (2 × median)`
    /// (0 when the median is 0).
    pub fn relative(&self) -> f64 {
        if self.median.abs() > f64::EPSILON {
            (self.max - self.min) / (2.0 * self.median.abs())
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of([f64::NAN]), None);
        assert!((Spread::of([90.0, 110.0]).unwrap().relative() - 0.1).abs() < 1e-12);
    }
}
