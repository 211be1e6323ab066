//! The per-action table of one case: when, what, how long, what it broke.

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{ActionReport, CaseReport};

use crate::export::table::{Align, Table};
use crate::summary::{fmt_opt_ns_ms, fmt_s};

/// One row per action of `case`; `None` when the case has no actions.
pub fn actions(case: &CaseReport) -> Option<Table> {
    if case.actions.is_empty() {
        return None;
    }
    let classes: Vec<FailureClass> = FailureClass::ALL
        .into_iter()
        .filter(|&c| case.actions.iter().any(|a| count_of(a, c) > 0))
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
    t.push_column("disruption window", Align::Left);
    t.push_column("recovery ms", Align::Right);
    for a in &case.actions {
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
        row.push(window(a));
        row.push(fmt_opt_ns_ms(a.recovery_ns));
        t.push(row);
    }
    Some(t)
}

fn count_of(a: &ActionReport, class: FailureClass) -> u64 {
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

/// `1.001–1.175 s (174 ms)`, or `–` when no failure was attributed.
fn window(a: &ActionReport) -> String {
    match (a.disruption_start_ns, a.disruption_end_ns) {
        (Some(s), Some(e)) => format!(
            "{}–{} s ({:.0} ms)",
            fmt_s(s),
            fmt_s(e),
            e.saturating_sub(s) as f64 / 1e6
        ),
        _ => "–".to_string(),
    }
}
