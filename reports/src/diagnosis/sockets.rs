//! What the sampled listening sockets say about an action: which sockets
//! closed while the load ran and how many connections were queued on them
//! at their last sample, and when nobody listened on the address at all.
//!
//! Only the accept-queue series of the case's evidence are read, so this
//! means the same for every system under test.

use reloadbench_model::evidence::{CaseEvidence, QueueSeries};
use reloadbench_model::run::ActionReport;

/// A listening socket that closed while the load ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Closed {
    /// Index of the action whose window it closed in.
    pub(super) action: usize,
    /// Connections queued on it at its last sample.
    pub(super) queued: u32,
}

/// A time when no listening socket on the address was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gap {
    /// Index of the action whose window it started in.
    pub(super) action: usize,
    /// From the last sample that saw a listener to the first that saw one
    /// again: the gap is at most this long.
    pub(super) at_most_ns: u64,
}

/// The action whose window holds a change seen after the sample at `t_ns`:
/// the last one triggered at or before `t_ns + slack_ns`. An action's
/// trigger sample is taken just before it acts (and before its trigger time
/// is read), so a socket last seen in that sample went away in that
/// action's window, not the previous one's; `slack_ns` (the fast sampling
/// interval) covers that.
struct ActionAt<'a> {
    actions: &'a [ActionReport],
    /// Triggers never go back in time (as the timeline runs them), so the
    /// last action at or before a time is found by bisection.
    in_order: bool,
}

impl<'a> ActionAt<'a> {
    fn new(actions: &'a [ActionReport]) -> Self {
        ActionAt {
            actions,
            in_order: actions.is_sorted_by_key(|a| a.trigger_ns),
        }
    }

    fn find(&self, t_ns: u64, slack_ns: u64) -> Option<usize> {
        let t = t_ns.saturating_add(slack_ns);
        if self.in_order {
            self.actions
                .partition_point(|a| a.trigger_ns <= t)
                .checked_sub(1)
        } else {
            self.actions.iter().rposition(|a| a.trigger_ns <= t)
        }
    }
}

/// When the sampler last looked (the sockets alive at the end were seen then).
fn last_sample(ev: &CaseEvidence) -> u64 {
    ev.queues.iter().map(|q| q.last_seen_ns).max().unwrap_or(0)
}

/// Depth of `q` at its last sample.
fn depth_at_end(q: &QueueSeries) -> u32 {
    q.depth
        .iter()
        .take_while(|(t, _)| *t <= q.last_seen_ns)
        .last()
        .map_or(0, |(_, d)| *d)
}

/// Sockets that closed after an action was triggered and before sampling ended.
pub(super) fn closed(ev: &CaseEvidence, actions: &[ActionReport]) -> Vec<Closed> {
    let end = last_sample(ev);
    let action_at = ActionAt::new(actions);
    ev.queues
        .iter()
        .filter(|q| q.last_seen_ns < end)
        .filter_map(|q| {
            Some(Closed {
                action: action_at.find(q.last_seen_ns, ev.fast_interval_ns)?,
                queued: depth_at_end(q),
            })
        })
        .collect()
}

/// Times after an action when no listening socket was seen, from the union
/// of the sockets' lifetimes.
pub(super) fn gaps(ev: &CaseEvidence, actions: &[ActionReport]) -> Vec<Gap> {
    let mut spans: Vec<(u64, u64)> = ev
        .queues
        .iter()
        .map(|q| (q.first_seen_ns, q.last_seen_ns))
        .collect();
    spans.sort_unstable();
    let action_at = ActionAt::new(actions);
    let mut out = Vec::new();
    let mut covered_to: Option<u64> = None;
    for (first, last) in spans {
        if let Some(to) = covered_to
            && first > to
            && let Some(action) = action_at.find(to, ev.fast_interval_ns)
        {
            out.push(Gap {
                action,
                at_most_ns: first - to,
            });
        }
        covered_to = Some(covered_to.map_or(last, |to| to.max(last)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(first: u64, last: u64, depth: &[(u64, u32)]) -> QueueSeries {
        QueueSeries {
            first_seen_ns: first,
            last_seen_ns: last,
            depth: depth.to_vec(),
            ..Default::default()
        }
    }

    fn action(trigger_ns: u64) -> ActionReport {
        serde_json::from_value(serde_json::json!({
            "index": 0, "kind": "reload", "mode": null, "label": "reload",
            "trigger_ns": trigger_ns, "ready_ns": null, "drained_ns": null,
            "exited_ns": null, "ok": true, "error": null, "failures": [],
            "disruption_start_ns": null, "disruption_end_ns": null, "recovery_ns": null
        }))
        .expect("action")
    }

    #[test]
    fn a_socket_that_closed_with_a_queue_is_found_in_its_actions_window() {
        let ev = CaseEvidence {
            queues: vec![
                q(0, 1_050, &[(0, 0), (900, 3), (1_000, 7)]),
                q(1_010, 5_000, &[(1_010, 0)]),
                q(0, 5_000, &[(0, 0)]),
            ],
            ..Default::default()
        };
        // Last seen at 1.050 s: in the window of the action triggered at 1.020 s.
        let actions = [action(500), action(1_020), action(3_000)];
        assert_eq!(
            closed(&ev, &actions),
            vec![Closed {
                action: 1,
                queued: 7
            }]
        );
    }

    #[test]
    fn a_socket_last_seen_in_an_actions_trigger_sample_closed_in_that_action() {
        // A restart: the trigger sample (at 998) still sees the old socket,
        // the action's trigger time is read after it (1_000), then it closes.
        let ev = CaseEvidence {
            fast_interval_ns: 5,
            queues: vec![q(0, 998, &[(0, 0), (990, 4)]), q(1_030, 3_000, &[])],
            ..Default::default()
        };
        let actions = [action(1_000)];
        assert_eq!(
            closed(&ev, &actions),
            vec![Closed {
                action: 0,
                queued: 4
            }]
        );
        assert_eq!(
            gaps(&ev, &actions),
            vec![Gap {
                action: 0,
                at_most_ns: 32
            }]
        );
    }

    #[test]
    fn a_time_without_any_listener_is_a_gap_of_the_action_before_it() {
        let ev = CaseEvidence {
            queues: vec![q(0, 1_000, &[]), q(1_300, 2_000, &[]), q(1_900, 3_000, &[])],
            ..Default::default()
        };
        let actions = [action(900), action(2_500)];
        assert_eq!(
            gaps(&ev, &actions),
            vec![Gap {
                action: 0,
                at_most_ns: 300
            }]
        );
    }

    #[test]
    fn bisection_finds_the_action_a_scan_from_the_end_finds() {
        for triggers in [
            vec![],
            vec![10],
            vec![10, 20, 20, 20, 35, 50],
            // Out of order: found by the scan.
            vec![30, 10, 20, 60, 40],
        ] {
            let actions: Vec<ActionReport> = triggers.iter().map(|&t| action(t)).collect();
            let at = ActionAt::new(&actions);
            for t in 0..70 {
                for slack in [0, 3] {
                    let scan = actions.iter().rposition(|a| a.trigger_ns <= t + slack);
                    assert_eq!(at.find(t, slack), scan, "{triggers:?} at {t}+{slack}");
                }
            }
        }
    }
}
