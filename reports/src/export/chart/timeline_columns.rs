//! The timeline's buckets aggregated to the pixel columns of a panel, for
//! runs with more buckets than pixels: per column the requests/s mean with
//! its min–max envelope, the bucket with the most failures (drawn as is, so
//! the failures axis stays "per bucket" and a single bucket's failures keep
//! their height) and the highest p99 and max latency (the mean p50), so a
//! spike of one bucket is never averaged away.

use std::ops::Range;

use reloadbench_model::load::{Bucket, LoadReport};
use reloadbench_model::outcome::FailureClass;

use super::dense::{Columns, Envelope};
use super::timeline::{LatencyOf, rps_buckets};
use crate::summary::bucket_rps;

/// Picks one latency figure of an aggregated column.
pub(super) type ColumnValue = fn(&ColumnSummary) -> Option<f64>;

/// Whether a bucket has latency figures: it had successes (a recorder
/// without any has no maximum, so this is `ok > 0` for measured buckets).
pub(super) fn has_latency(b: &Bucket) -> bool {
    b.ok > 0 || b.latency.max_us > 0
}

/// One pixel column of a panel whose buckets outnumber its pixel columns.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ColumnSummary {
    /// Time span of the column, s.
    pub(super) from_s: f64,
    pub(super) to_s: f64,
    /// Buckets aggregated (indices into the load's buckets).
    pub(super) buckets: Range<usize>,
    /// Ok requests/s: mean and min–max over the column's buckets (all but
    /// a last bucket the end of the load cut short, see [`rps_buckets`]).
    pub(super) rps: Option<Envelope>,
    /// Each failure class that occurs in the column with its largest count
    /// in one of the column's buckets, in class order (stacked when drawn).
    pub(super) classes: Vec<(FailureClass, u64)>,
    /// The sum of [`Self::classes`]: the stack's height.
    pub(super) failed: u64,
    /// Latency ms of the buckets with latency: mean of p50, max of p99, max
    /// of max (`None` when no bucket of the column has any).
    pub(super) p50_ms: Option<f64>,
    pub(super) p99_ms: Option<f64>,
    pub(super) max_ms: Option<f64>,
}

/// The buckets of `load` aggregated to the pixel `columns` of a panel.
pub(super) fn aggregate(load: &LoadReport, columns: Columns) -> Vec<ColumnSummary> {
    let bucket_s = load.config.bucket_ns() as f64 / 1e9;
    let rps_n = rps_buckets(load);
    let ms = |us: u64| us as f64 / 1000.0;
    columns
        .group(
            load.buckets
                .iter()
                .map(|b| b.start_ns as f64 / 1e9 + bucket_s / 2.0),
        )
        .into_iter()
        .map(|(c, range)| {
            let (from_s, to_s) = columns.span(c);
            let members = &load.buckets[range.clone()];
            let mut classes: Vec<(FailureClass, u64)> = Vec::new();
            for f in members.iter().flat_map(|b| &b.failed) {
                match classes.iter_mut().find(|(c, _)| *c == f.class) {
                    Some((_, n)) => *n = (*n).max(f.count),
                    None => classes.push((f.class, f.count)),
                }
            }
            classes.retain(|&(_, n)| n > 0);
            classes.sort_by_key(|&(c, _)| c.index());
            let timed = || {
                members
                    .iter()
                    .filter(|b| has_latency(b))
                    .map(|b| &b.latency)
            };
            let max_of = |f: LatencyOf| timed().map(|l| ms(f(l))).reduce(f64::max);
            ColumnSummary {
                from_s,
                to_s,
                rps: Envelope::of(
                    range
                        .clone()
                        .filter(|&i| i < rps_n)
                        .map(|i| bucket_rps(load, i)),
                ),
                failed: classes.iter().map(|&(_, n)| n).sum(),
                classes,
                p50_ms: Envelope::of(timed().map(|l| ms(l.p50_us))).map(|e| e.mean),
                p99_ms: max_of(|l| l.p99_us),
                max_ms: max_of(|l| l.max_us),
                buckets: range,
            }
        })
        .collect()
}

/// Runs of consecutive columns where `value` has a figure, as line points
/// at the columns' middles.
pub(super) fn column_runs(
    cols: &[ColumnSummary],
    value: impl Fn(&ColumnSummary) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    super::dense::runs(
        cols.iter()
            .map(|c| value(c).map(|v| ((c.from_s + c.to_s) / 2.0, v))),
    )
}

/// The outline of the requests/s min–max envelope: along the maxima, back
/// along the minima.
pub(super) fn envelope_outline(cols: &[ColumnSummary]) -> Vec<(f64, f64)> {
    let mid = |c: &ColumnSummary| (c.from_s + c.to_s) / 2.0;
    let with: Vec<(f64, Envelope)> = cols
        .iter()
        .filter_map(|c| c.rps.map(|e| (mid(c), e)))
        .collect();
    with.iter()
        .map(|&(x, e)| (x, e.max))
        .chain(with.iter().rev().map(|&(x, e)| (x, e.min)))
        .collect()
}
