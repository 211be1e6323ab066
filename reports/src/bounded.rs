//! Limits that keep `report.md` (and the page that mirrors it) the same
//! size however many actions a case has: above [`FULL_TABLE_MAX`] actions a
//! case is summarised and only its [`WORST_SHOWN`] worst actions are listed;
//! a list of per-action items in a sentence stops at [`LIST_MAX`] items. The
//! full per-action data is in `actions.csv` (and the full action table in a
//! collapsed section of `report.html`).
//!
//! Small runs (the seed's six reloads per case) stay under every limit and
//! look exactly as they did before the limits existed.

use std::cmp::Reverse;

use reloadbench_model::ledger::thousands;
use reloadbench_model::run::{ActionReport, CaseReport};
use reloadbench_model::words::noun;

/// A case with more actions than this is summarised instead of listed in full.
pub const FULL_TABLE_MAX: usize = 10;

/// How many actions of a summarised case are listed: the worst ones.
pub const WORST_SHOWN: usize = 10;

/// How many per-action items a sentence lists before it says how many more.
pub const LIST_MAX: usize = 10;

/// `1,000 actions`: `n` with thousands separators and the noun that fits it.
pub fn counted(n: u64, singular: &str) -> String {
    format!("{} {}", thousands(n), noun(n, singular))
}

/// True when `n` rows (actions) are more than [`FULL_TABLE_MAX`].
pub fn is_long(n: usize) -> bool {
    n > FULL_TABLE_MAX
}

/// How actions rank from worst: most failures attributed first, then actions
/// that failed themselves, then the slowest from trigger to ready (an action
/// without a ready time counts as 0), then the earliest.
pub const WORST_ORDER: &str = "most failures attributed first, then actions that \
failed themselves, then the slowest from trigger to ready";

/// The sort key of [`WORST_ORDER`] (smaller is worse).
fn badness(a: &ActionReport) -> (Reverse<u64>, bool, Reverse<u64>, u32) {
    (
        Reverse(a.failed_total()),
        a.ok,
        Reverse(a.reload_time_ns().unwrap_or(0)),
        a.index,
    )
}

/// Positions in `case.actions` of its [`WORST_SHOWN`] worst actions, worst first.
pub fn worst(case: &CaseReport) -> Vec<usize> {
    let mut order: Vec<usize> = (0..case.actions.len()).collect();
    order.sort_by_key(|&i| badness(&case.actions[i]));
    order.truncate(WORST_SHOWN);
    order
}

/// `items` joined with `, `, in the order given. Above [`LIST_MAX`] items only
/// the [`LIST_MAX`] of largest weight are kept (still in the order given) and
/// `, and 12 more <plural>` is appended.
pub fn capped_list(items: Vec<(u64, String)>, plural: &str) -> String {
    if items.len() <= LIST_MAX {
        return items
            .into_iter()
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(", ");
    }
    let more = items.len() - LIST_MAX;
    let mut ranked: Vec<(usize, u64)> = items.iter().map(|(w, _)| *w).enumerate().collect();
    ranked.sort_by_key(|&(i, w)| (Reverse(w), i));
    let mut keep: Vec<usize> = ranked.iter().take(LIST_MAX).map(|&(i, _)| i).collect();
    keep.sort_unstable();
    let shown: Vec<&str> = keep.iter().map(|&i| items[i].1.as_str()).collect();
    format!(
        "{}, and {} more {plural}",
        shown.join(", "),
        thousands(more as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reloadbench_model::run::{ActionKind, ClassTotal};

    fn action(index: u32, failed: u64, ok: bool, ready_ms: Option<u64>) -> ActionReport {
        ActionReport {
            index,
            kind: ActionKind::Reload,
            mode: None,
            label: "reload".into(),
            trigger_ns: 1_000_000_000,
            ready_ns: ready_ms.map(|ms| 1_000_000_000 + ms * 1_000_000),
            drained_ns: None,
            exited_ns: None,
            ok,
            error: None,
            failures: (failed > 0)
                .then_some(ClassTotal {
                    class: reloadbench_model::outcome::FailureClass::Reset,
                    count: failed,
                })
                .into_iter()
                .collect(),
            disruption_start_ns: None,
            disruption_end_ns: None,
            recovery_ns: None,
            kernel: None,
            lost_after_forwarding: None,
            observed: None,
        }
    }

    #[test]
    fn worst_ranks_failures_then_failed_actions_then_slow_ones() {
        let mut case: CaseReport =
            serde_json::from_str(include_str!("../tests/fixtures/results.json"))
                .map(|r: reloadbench_model::run::RunReport| r.cases[1].clone())
                .expect("fixture");
        case.actions = vec![
            action(0, 0, true, Some(5)),
            action(1, 3, true, Some(1)),
            action(2, 0, false, None),
            action(3, 0, true, Some(50)),
            action(4, 3, true, Some(2)),
            action(5, 0, true, None),
        ];
        assert_eq!(worst(&case), vec![4, 1, 2, 3, 0, 5]);
        case.actions = (0..30)
            .map(|i| action(i, 0, true, Some(u64::from(i))))
            .collect();
        let w = worst(&case);
        assert_eq!(w.len(), WORST_SHOWN);
        assert_eq!(w[0], 29);
    }

    #[test]
    fn a_long_list_keeps_its_heaviest_items_in_order_and_counts_the_rest() {
        let short: Vec<(u64, String)> = (0..3).map(|i| (i, format!("#{i}"))).collect();
        assert_eq!(capped_list(short, "actions"), "#0, #1, #2");
        let long: Vec<(u64, String)> = (0..25).map(|i| (i % 7, format!("#{i}"))).collect();
        // weights 6: #6, #13, #20; 5: #5, #12, #19; 4: #4, #11, #18; then 3: #3.
        assert_eq!(
            capped_list(long, "actions"),
            "#3, #4, #5, #6, #11, #12, #13, #18, #19, #20, and 15 more actions"
        );
    }
}
