//! Latency in reload windows compared with steady state.
//!
//! A window runs from an action's trigger to the latest of its ready,
//! drained and last attributed failure times (at least one bucket). A bucket
//! is "in a window" when its time span overlaps one; the others are steady
//! state. Each side's p99 is the mean of its buckets' p99s weighted by their
//! successful requests.

use reloadbench_model::run::CaseReport;

use super::metric::reloads;

/// p99 during restart/reload/kill windows divided by p99 outside them.
pub(super) fn p99_reload_ratio(case: &CaseReport) -> Option<f64> {
    let bucket_ns = case.load.config.bucket_ns();
    let windows: Vec<(u64, u64)> = reloads(case)
        .map(|a| {
            let end = [a.ready_ns, a.drained_ns, a.disruption_end_ns]
                .into_iter()
                .flatten()
                .fold(a.trigger_ns, u64::max);
            (a.trigger_ns, end.max(a.trigger_ns + 1))
        })
        .collect();
    if windows.is_empty() {
        return None;
    }
    let (mut in_sum, mut in_n, mut out_sum, mut out_n) = (0.0, 0u64, 0.0, 0u64);
    for b in case.load.buckets.iter().filter(|b| b.ok > 0) {
        let (start, end) = (b.start_ns, b.start_ns + bucket_ns);
        let inside = windows.iter().any(|&(ws, we)| start < we && ws < end);
        let weighted = b.latency.p99_us as f64 * b.ok as f64;
        if inside {
            in_sum += weighted;
            in_n += b.ok;
        } else {
            out_sum += weighted;
            out_n += b.ok;
        }
    }
    if in_n == 0 || out_n == 0 || out_sum == 0.0 {
        return None;
    }
    Some((in_sum / in_n as f64) / (out_sum / out_n as f64))
}
