//! HTTP/2 GOAWAYs received per restart, reload or kill.
//!
//! loadgen counts the GOAWAYs it received per time bucket. A bucket's
//! GOAWAYs belong to the last action whose attribution window (the one
//! failures are attributed by, see `orchestrator::attribution`) overlaps the
//! bucket: a GOAWAY follows the trigger that caused it, so of two windows
//! sharing a bucket the later one is the likelier cause. The resolution is
//! one bucket; GOAWAYs in a bucket no window overlaps belong to no action.

use reloadbench_model::run::{ActionKind, CaseReport};

use crate::orchestrator::attribution::windows;

/// The GOAWAYs attributed to each restart, reload and kill, in timeline
/// order; empty for an HTTP/1.1 case or one without such actions.
pub(super) fn per_reload(case: &CaseReport) -> Vec<u64> {
    if case.load.h2.is_none() {
        return Vec::new();
    }
    let width = case.load.config.bucket_ns();
    let spans = case
        .load
        .buckets
        .iter()
        .filter(|b| b.goaways > 0)
        .map(|b| (b.start_ns, b.start_ns.saturating_add(width), b.goaways));
    per_replacement(case, spans)
}

/// Counts of time spans `(start_ns, end_ns, count)` given to the last action
/// whose attribution window overlaps each span, then those of the restarts,
/// reloads and kills, in timeline order.
pub(super) fn per_replacement(
    case: &CaseReport,
    spans: impl Iterator<Item = (u64, u64, u64)>,
) -> Vec<u64> {
    let wins = windows(&case.actions);
    let mut counts = vec![0u64; case.actions.len()];
    for (start, end, n) in spans {
        if let Some(i) = wins.iter().rposition(|&(ws, we)| ws < end && start < we) {
            counts[i] += n;
        }
    }
    case.actions
        .iter()
        .zip(counts)
        .filter(|(a, _)| {
            matches!(
                a.kind,
                ActionKind::Restart | ActionKind::Reload | ActionKind::Kill
            )
        })
        .map(|(_, n)| n)
        .collect()
}
