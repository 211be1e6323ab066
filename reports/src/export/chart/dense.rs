//! Pieces shared by the charts that must stay readable and bounded however
//! many buckets, actions and sockets a run has.
//!
//! - [`Columns`] maps a time axis onto the plot's pixel columns, so series
//!   with more points than pixels are aggregated to one value (or a min–max
//!   [`Envelope`]) per column, and a step function to its maximum per column
//!   ([`step_max`]).
//! - [`too_dense`] says when action markers stop being readable as lines;
//!   then they are drawn as a [`rug`] (runs of marked pixel columns) with a
//!   count per equal time bin ([`bin_counts`]), and [`pick_labels`] chooses
//!   the few actions worth a label: the worst first, none overprinting.
//!
//! Everything here works in plain numbers (seconds and pixels); the drawing
//! stays with the charts.

use std::ops::Range;

/// Actions are drawn as lines (and labelled) only while no 100 pixels of
/// plot width hold more than this many triggers; above it, as a rug. Three
/// lines and their labels per 100 px is about the most that can be told
/// apart (a label like `reload (naive)` is 90 px wide).
pub(super) const MAX_ACTIONS_PER_100PX: usize = 3;
/// Most actions labelled in a panel of dense actions.
pub(super) const MAX_LABELS: usize = 8;
/// Target width of a bin of the dense actions' count band, px.
pub(super) const BIN_PX: u32 = 120;

/// A time axis `0..x_max` mapped onto `width` pixel columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Columns {
    x_max: f64,
    width: u32,
}

impl Columns {
    pub(super) fn new(x_max: f64, width: u32) -> Columns {
        Columns {
            x_max: if x_max > 0.0 { x_max } else { 1.0 },
            width: width.max(1),
        }
    }

    /// Number of columns.
    pub(super) fn width(self) -> u32 {
        self.width
    }

    /// The column of `x` (clamped to the axis).
    pub(super) fn of(self, x: f64) -> u32 {
        let c = (x / self.x_max * f64::from(self.width)).floor();
        if c.is_nan() || c < 0.0 {
            0
        } else {
            (c as u32).min(self.width - 1)
        }
    }

    /// The time span `[from, to)` of column `c`.
    pub(super) fn span(self, c: u32) -> (f64, f64) {
        let w = f64::from(self.width);
        (
            f64::from(c) * self.x_max / w,
            f64::from(c + 1) * self.x_max / w,
        )
    }

    /// Middle of column `c` on the time axis.
    pub(super) fn mid(self, c: u32) -> f64 {
        let (a, b) = self.span(c);
        (a + b) / 2.0
    }

    /// Runs of consecutive `xs` (ascending) that fall into the same column,
    /// as (column, index range).
    pub(super) fn group(self, xs: impl IntoIterator<Item = f64>) -> Vec<(u32, Range<usize>)> {
        let mut out: Vec<(u32, Range<usize>)> = Vec::new();
        for (i, x) in xs.into_iter().enumerate() {
            let c = self.of(x);
            match out.last_mut() {
                Some((last, r)) if *last == c => r.end = i + 1,
                _ => out.push((c, i..i + 1)),
            }
        }
        out
    }
}

/// Mean, minimum and maximum of the values that fall into one column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Envelope {
    pub(super) mean: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Envelope {
    /// The envelope of `values`, `None` when there are none.
    pub(super) fn of(values: impl IntoIterator<Item = f64>) -> Option<Envelope> {
        let mut n = 0u64;
        let mut sum = 0.0;
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        for v in values {
            n += 1;
            sum += v;
            min = min.min(v);
            max = max.max(v);
        }
        (n > 0).then(|| Envelope {
            mean: sum / n as f64,
            min,
            max,
        })
    }
}

/// Whether markers at pixel positions `px` (ascending) are denser than
/// [`MAX_ACTIONS_PER_100PX`] in any 100 px.
pub(super) fn too_dense(px: &[i32]) -> bool {
    let mut j = 0;
    for (i, &x) in px.iter().enumerate() {
        j = j.max(i);
        while j < px.len() && px[j] < x + 100 {
            j += 1;
        }
        if j - i > MAX_ACTIONS_PER_100PX {
            return true;
        }
    }
    false
}

/// Marks of a rug closer than this many pixel columns are joined into one
/// run: ticks that close already read as a solid strip, and joining them
/// bounds a rug to one run per `RUG_JOIN_PX + 1` columns.
pub(super) const RUG_JOIN_PX: u32 = 3;

/// A rug of `xs`: the runs of columns holding at least one of them (gaps
/// of fewer than [`RUG_JOIN_PX`] columns joined), as inclusive (first,
/// last) columns; at most one run per `RUG_JOIN_PX + 1` columns, however
/// many `xs`.
pub(super) fn rug(columns: Columns, xs: impl IntoIterator<Item = f64>) -> Vec<(u32, u32)> {
    let mut marked = vec![false; columns.width() as usize];
    for x in xs {
        marked[columns.of(x) as usize] = true;
    }
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for (c, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
        let c = c as u32;
        match runs.last_mut() {
            Some((_, last)) if c <= *last + RUG_JOIN_PX => *last = c,
            _ => runs.push((c, c)),
        }
    }
    runs
}

/// How many of `xs` fall into each of `bins` equal bins of `0..x_max`.
pub(super) fn bin_counts(x_max: f64, bins: usize, xs: impl IntoIterator<Item = f64>) -> Vec<u64> {
    let bins = bins.max(1);
    let axis = Columns::new(x_max, bins as u32);
    let mut counts = vec![0u64; bins];
    for x in xs {
        counts[axis.of(x) as usize] += 1;
    }
    counts
}

/// Something that may be labelled: its label's left edge and width in
/// pixels and how bad it was (failures caused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    pub(super) x: i32,
    pub(super) width: i32,
    pub(super) weight: u64,
}

/// Indices of the candidates to label: the heaviest first (then the
/// earliest), skipping any whose label would come within `gap` px of one
/// already chosen, at most `max`; returned in order of `x`.
pub(super) fn pick_labels(candidates: &[Candidate], max: usize, gap: i32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(candidates[i].weight), candidates[i].x));
    let mut chosen: Vec<usize> = Vec::new();
    for i in order {
        if chosen.len() >= max {
            break;
        }
        let c = candidates[i];
        let clear = chosen.iter().all(|&k| {
            let o = candidates[k];
            c.x + c.width + gap <= o.x || o.x + o.width + gap <= c.x
        });
        if clear {
            chosen.push(i);
        }
    }
    chosen.sort_by_key(|&i| candidates[i].x);
    chosen
}

/// Raises `out[c]` to the largest value a step function takes in column
/// `c`: `samples` (ascending times) each hold their value until the next
/// sample, the last one until `end`.
pub(super) fn step_max(
    columns: Columns,
    samples: impl IntoIterator<Item = (f64, f64)>,
    end: f64,
    out: &mut [Option<f64>],
) {
    let mut prev: Option<(f64, f64)> = None;
    let mut raise = |from: f64, to: f64, v: f64| {
        let (a, b) = (columns.of(from), columns.of(to.max(from)));
        for slot in &mut out[a as usize..=b as usize] {
            *slot = Some(slot.map_or(v, |o: f64| o.max(v)));
        }
    };
    for (t, v) in samples {
        if let Some((pt, pv)) = prev {
            raise(pt, t, pv);
        }
        prev = Some((t, v));
    }
    if let Some((pt, pv)) = prev {
        raise(pt, end, pv);
    }
}

/// Runs of consecutive points that exist, as polylines: a `None` breaks
/// the line (a column without a value is a gap, not a zero).
pub(super) fn runs(points: impl IntoIterator<Item = Option<(f64, f64)>>) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for p in points {
        match p {
            Some(p) => {
                match runs.last_mut() {
                    Some(run) if open => run.push(p),
                    _ => runs.push(vec![p]),
                }
                open = true;
            }
            None => open = false,
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_map_the_axis_onto_pixels_and_group_runs() {
        let c = Columns::new(10.0, 100);
        assert_eq!(c.of(0.0), 0);
        assert_eq!(c.of(0.099), 0);
        assert_eq!(c.of(0.1), 1);
        assert_eq!(c.of(10.0), 99, "the end of the axis is the last column");
        assert_eq!(c.of(-1.0), 0);
        assert_eq!(c.span(3), (0.3, 0.4));
        let groups = c.group([0.01, 0.05, 0.15, 0.16, 0.17, 5.0]);
        assert_eq!(groups, vec![(0, 0..2), (1, 2..5), (50, 5..6)]);
    }

    #[test]
    fn an_envelope_keeps_the_extremes_the_mean_hides() {
        let e = Envelope::of([10.0, 10.0, 10.0, 1000.0]).unwrap();
        assert_eq!(e.min, 10.0);
        assert_eq!(e.max, 1000.0);
        assert_eq!(e.mean, 257.5);
        assert_eq!(Envelope::of(std::iter::empty()), None);
    }

    #[test]
    fn density_switches_above_three_per_100_px() {
        assert!(!too_dense(&[]));
        assert!(!too_dense(&[0, 10, 20]));
        assert!(too_dense(&[0, 10, 20, 99]));
        assert!(!too_dense(&[0, 10, 20, 100, 110, 120, 200]));
        // Spread evenly, 3 per 100 px is fine, 4 is not.
        let every = |step: i32| (0..40).map(|i| i * step).collect::<Vec<_>>();
        assert!(!too_dense(&every(34)));
        assert!(too_dense(&every(25)));
    }

    #[test]
    fn a_rug_merges_neighbouring_columns_and_stays_bounded() {
        let c = Columns::new(1.0, 10);
        assert_eq!(rug(c, [0.05, 0.15, 0.16, 0.55]), vec![(0, 1), (5, 5)]);
        // Gaps of 1 or 2 columns are joined, of 3 are not.
        let c100 = Columns::new(100.0, 100);
        assert_eq!(rug(c100, [0.5, 2.5, 5.5, 9.5]), vec![(0, 5), (9, 9)]);
        // Marks 2 px apart over 100 px: one run; 4 px apart: at most 25.
        assert_eq!(
            rug(c100, (0..50).map(|i| f64::from(i) * 2.0 + 0.5)),
            vec![(0, 98)]
        );
        assert_eq!(
            rug(c100, (0..25).map(|i| f64::from(i) * 4.0 + 0.5)).len(),
            25
        );
        // 10,000 marks on 10 columns: one run.
        let many = (0..10_000).map(|i| f64::from(i) / 10_000.0);
        assert_eq!(rug(c, many), vec![(0, 9)]);
    }

    #[test]
    fn bins_count_every_mark_once() {
        let counts = bin_counts(10.0, 4, (0..100).map(|i| f64::from(i) / 10.0));
        assert_eq!(counts, vec![25, 25, 25, 25]);
        assert_eq!(counts.iter().sum::<u64>(), 100);
        assert_eq!(bin_counts(10.0, 3, [10.0, 0.0]), vec![1, 0, 1]);
    }

    #[test]
    fn labels_go_to_the_worst_first_and_never_overlap() {
        let cand = |x, weight| Candidate {
            x,
            width: 50,
            weight,
        };
        let cands = [
            cand(0, 5),
            cand(30, 40), // worst: wins over its neighbours at 0 and 60
            cand(60, 7),
            cand(200, 1),
            cand(300, 0),
        ];
        assert_eq!(pick_labels(&cands, 10, 8), vec![1, 3, 4]);
        // Bounded: the two worst that fit.
        assert_eq!(pick_labels(&cands, 2, 8), vec![1, 3]);
        assert_eq!(pick_labels(&[], 3, 8), Vec::<usize>::new());
    }

    #[test]
    fn step_max_keeps_a_one_sample_peak_in_its_column() {
        let c = Columns::new(10.0, 10);
        let mut out = vec![None; 10];
        // 0 until 2.5 s, 9 for 10 ms, then 1 until 6 s.
        step_max(c, [(0.0, 0.0), (2.5, 9.0), (2.51, 1.0)], 6.0, &mut out);
        assert_eq!(
            out,
            vec![
                Some(0.0),
                Some(0.0),
                Some(9.0),
                Some(1.0),
                Some(1.0),
                Some(1.0),
                Some(1.0),
                None,
                None,
                None
            ]
        );
        // A second series only raises.
        step_max(c, [(0.0, 3.0)], 1.0, &mut out);
        assert_eq!(out[0], Some(3.0));
        assert_eq!(out[2], Some(9.0));
    }

    #[test]
    fn the_captions_state_the_thresholds_in_force() {
        use super::super::Chart;
        let per_100px = format!("denser than {MAX_ACTIONS_PER_100PX} per 100 px");
        for chart in [Chart::Timeline, Chart::AcceptQueue] {
            assert!(chart.how_to_read().contains(&per_100px), "{chart:?}");
        }
        let sockets = format!(
            "more than {} sockets",
            super::super::accept_queue::MAX_SOCKET_LINES
        );
        assert!(Chart::AcceptQueue.how_to_read().contains(&sockets));
    }

    #[test]
    fn runs_break_at_missing_points() {
        let r = runs([
            Some((0.0, 1.0)),
            Some((1.0, 2.0)),
            None,
            Some((3.0, 4.0)),
            None,
        ]);
        assert_eq!(r, vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(3.0, 4.0)]]);
        assert!(runs([None, None]).is_empty());
    }
}
