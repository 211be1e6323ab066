//! The per-action table of one case: when, what, how long, what it broke.

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{ActionReport, CaseReport};

use crate::export::grid::{Align, Table};
use crate::summary::{fmt_opt_ns_ms, fmt_s};

/// One row per action of `case`; `None` when the case has no actions.
pub fn actions(case: &CaseReport) -> Option<Table> {
    if case.actions.is_empty() {
        return None;
    }
    let all: Vec<usize> = (0..case.actions.len()).collect();
    Some(actions_rows(case, &all))
}

/// The rows of the actions at positions `rows` of `case.actions`, in that
/// order, with a column for each failure class that occurs in them.
pub fn actions_rows(case: &CaseReport, rows: &[usize]) -> Table {
    let shown: Vec<&ActionReport> = rows.iter().filter_map(|&i| case.actions.get(i)).collect();
    let classes: Vec<FailureClass> = FailureClass::ALL
        .into_iter()
        .filter(|&c| shown.iter().any(|a| count_of(a, c) > 0))
        .collect();
    let mut t = Table::new(&[
        ("#", Align::Right),
        ("at s", Align::Right),
        ("action", Align::Left),
        ("outcome", Align::Left),
        ("reload ms", Align::Right),
        ("drained ms", Align::Right),
        ("exited ms", Align::Right),
        ("failed", Align::Right),
    ]);
    for class in &classes {
        t.push_column(class.label(), Align::Right);
    }
    let posts = super::methods::sends_post(&case.load);
    if posts {
        t.push_column("POST lost", Align::Right);
    }
    t.push_column("disruption window", Align::Left);
    let bucket_ns = case.load.config.bucket_ns();
    t.push_column(
        &format!("recovery ms ({} ms buckets)", bucket_ns / 1_000_000),
        Align::Right,
    );
    for a in shown {
        let since = |ns: Option<u64>| ns.map(|n| n.saturating_sub(a.trigger_ns));
        let mut row = vec![
            a.index.to_string(),
            fmt_s(a.trigger_ns),
            a.label.clone(),
            outcome(a),
            fmt_opt_ns_ms(a.reload_time_ns()),
            fmt_opt_ns_ms(since(a.drained_ns)),
            fmt_opt_ns_ms(since(a.exited_ns)),
            a.failed_total().to_string(),
        ];
        row.extend(classes.iter().map(|&c| count_of(a, c).to_string()));
        if posts {
            row.push(super::methods::post_lost(a, &case.load));
        }
        row.push(window(a));
        row.push(recovery(a.recovery_ns, bucket_ns));
        t.push(row);
    }
    t
}

pub(crate) fn count_of(a: &ActionReport, class: FailureClass) -> u64 {
    a.failures
        .iter()
        .filter(|f| f.class == class)
        .map(|f| f.count)
        .sum()
}

fn outcome(a: &ActionReport) -> String {
    match (&a.error, a.ok) {
        (Some(e), _) => format!("failed: {e}"),
        (None, true) => "ok".to_string(),
        (None, false) => "failed".to_string(),
    }
}

/// Recovery at the resolution it was measured with: whole time buckets.
/// `recovery_ns` runs from the trigger to the start of the first bucket that
/// was back at the steady level, so throughput was back within the bucket
/// count rounded up: `≤ 100` (ms) for the first bucket after the trigger.
fn recovery(recovery_ns: Option<u64>, bucket_ns: u64) -> String {
    match recovery_ns {
        None => "–".to_string(),
        Some(ns) => {
            let buckets = ns.div_ceil(bucket_ns.max(1)).max(1);
            format!("≤ {}", buckets * bucket_ns / 1_000_000)
        }
    }
}

/// When the attributed failures were seen: `1.001–1.175 s (174 ms)`; all in
/// one instant as `at 2.011 s (all within 0.35 ms)`, or `at 2.011 s` for a
/// single one; `–` when no failure was attributed. The span keeps the digits
/// that are real (failure times are in ns): a burst of resets from one closed
/// listen queue lasts well under a millisecond.
fn window(a: &ActionReport) -> String {
    match (a.disruption_start_ns, a.disruption_end_ns) {
        (Some(s), Some(e)) if e == s => format!("at {} s", fmt_s(s)),
        (Some(s), Some(e)) if e.saturating_sub(s) < 1_000_000 => format!(
            "at {} s (all within {})",
            fmt_s(s),
            span_ms(e.saturating_sub(s))
        ),
        (Some(s), Some(e)) => format!(
            "{}–{} s ({})",
            fmt_s(s),
            fmt_s(e),
            span_ms(e.saturating_sub(s))
        ),
        _ => "–".to_string(),
    }
}

/// A span in ms with the digits that matter: `0.35 ms`, `5.2 ms`, `174 ms`.
fn span_ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start_ns: u64, end_ns: u64) -> String {
        window(&ActionReport {
            index: 0,
            kind: reloadbench_model::run::ActionKind::Reload,
            mode: None,
            label: "reload".into(),
            trigger_ns: 2_000_000_000,
            ready_ns: None,
            drained_ns: None,
            exited_ns: None,
            ok: true,
            error: None,
            failures: Vec::new(),
            disruption_start_ns: Some(start_ns),
            disruption_end_ns: Some(end_ns),
            recovery_ns: None,
            kernel: None,
            lost_after_forwarding: None,
            observed: None,
        })
    }

    #[test]
    fn a_burst_in_one_millisecond_says_so_instead_of_a_zero_window() {
        // 33 resets of one closed listen queue, seen within 350 µs.
        assert_eq!(
            at(2_011_100_000, 2_011_450_000),
            "at 2.011 s (all within 0.35 ms)"
        );
        assert_eq!(at(2_011_100_000, 2_011_100_000), "at 2.011 s");
        assert_eq!(at(1_003_000_000, 1_008_200_000), "1.003–1.008 s (5.2 ms)");
        assert_eq!(at(1_001_000_000, 1_175_000_000), "1.001–1.175 s (174 ms)");
    }

    #[test]
    fn recovery_is_shown_at_bucket_resolution() {
        let b = 100_000_000;
        assert_eq!(recovery(Some(98_460_000), b), "≤ 100");
        assert_eq!(recovery(Some(100_000_000), b), "≤ 100");
        assert_eq!(recovery(Some(198_000_000), b), "≤ 200");
        assert_eq!(recovery(Some(0), b), "≤ 100");
        assert_eq!(recovery(None, b), "–");
    }
}
