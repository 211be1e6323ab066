//! Resets before any response byte explained by a listening socket that
//! closed with connections waiting in its accept queue: the kernel resets
//! what is queued on a listening socket that closes.
//!
//! Only failures that can have been queued are credited: on a new
//! connection (a reused keep-alive connection was accepted long before),
//! reset or closed before any response byte, in the window of an action
//! whose closing socket had a queue at its last sample, less the failures
//! of that action the origin answered (those were accepted and forwarded).

use reloadbench_model::diagnosis::FindingKind;
use reloadbench_model::evidence::CaseEvidence;
use reloadbench_model::ledger::thousands;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::CaseReport;

use super::sockets::{self, Closed};
use super::{counted, dedup, finding, of_classes, resolution_ms};
use reloadbench_model::diagnosis::Finding;

const CLASSES: [FailureClass; 2] = [FailureClass::Reset, FailureClass::Closed];

/// Times of the reset or closed failures on new connections, sorted, to
/// count those in an action's window by bisection; `None` when the failure
/// list was capped and cannot be read that finely.
fn fresh_times(case: &CaseReport) -> Option<Vec<u64>> {
    let load = &case.load;
    if load.failures_dropped > 0 {
        return None;
    }
    let mut times: Vec<u64> = load
        .failures
        .iter()
        .filter(|f| CLASSES.contains(&f.class) && !f.reused)
        .map(|f| f.t_ns)
        .collect();
    times.sort_unstable();
    Some(times)
}

/// Of `fresh` (see [`fresh_times`]), those in action `i`'s window (its
/// trigger to the next trigger).
fn fresh_in_window(case: &CaseReport, fresh: &[u64], i: usize) -> u64 {
    let from = case.actions[i].trigger_ns;
    let to = case.actions.get(i + 1).map_or(u64::MAX, |a| a.trigger_ns);
    let start = fresh.partition_point(|&t| t < from);
    let end = fresh.partition_point(|&t| t < to);
    end.saturating_sub(start) as u64
}

/// Adds the finding (if any) and credits the explained failures per action.
pub(super) fn queued_resets(
    case: &CaseReport,
    ev: &CaseEvidence,
    explained: &mut [u64],
    out: &mut Vec<Finding>,
) {
    let closed = sockets::closed(ev, &case.actions);
    let mut credited = 0u64;
    let mut not_credited = 0u64;
    let mut queued = 0u64;
    let (mut with_queue, mut empty): (Vec<&Closed>, Vec<&Closed>) =
        closed.iter().partition(|c| c.queued > 0);
    with_queue.sort_by_key(|c| c.action);
    let actions = dedup(with_queue.iter().map(|c| c.action).collect());
    empty.retain(|e| actions.binary_search(&e.action).is_err());
    // A connection reset in a queue was never accepted: when refproxy says
    // how many connections it accepted, no more than the rest are credited.
    let never = never_accepted_count(case);
    let mut cap = never.unwrap_or(u64::MAX);
    let mut in_windows = 0u64;
    let fresh_times = fresh_times(case);
    for &i in &actions {
        let a = &case.actions[i];
        let attributed = of_classes(a, &CLASSES);
        let fresh = fresh_times
            .as_deref()
            .map_or(attributed, |t| fresh_in_window(case, t, i).min(attributed));
        let n = fresh.saturating_sub(a.lost_after_forwarding.unwrap_or(0));
        in_windows += n;
        let c = n.min(cap);
        cap -= c;
        explained[i] += c;
        credited += c;
    }
    for c in &with_queue {
        queued += u64::from(c.queued);
    }
    let empty_actions = dedup(empty.iter().map(|c| c.action).collect());
    for &i in &empty_actions {
        not_credited += of_classes(&case.actions[i], &CLASSES);
    }
    let mut parts = Vec::new();
    if in_windows > credited {
        parts.push(format!(
            "{} before any response byte on new connections after {} where a \
             listening socket closed with a queue; the client opened {} connections \
             and refproxy accepted {}, so at most {} of them were connections reset \
             in a queue.",
            counted(
                in_windows,
                "request reset or closed",
                "requests reset or closed"
            ),
            counted(actions.len() as u64, "action", "actions"),
            thousands(case.load.connections),
            thousands(case.load.connections.saturating_sub(never.unwrap_or(0))),
            thousands(credited),
        ));
    }
    if credited > 0 {
        let res = resolution_ms(&case.actions, &actions)
            .map(|r| format!(", sampled every {r:.0} ms or less"))
            .unwrap_or_default();
        parts.push(format!(
            "{} before any response byte on new connections, after {} where a \
             listening socket closed with connections waiting in its accept queue \
             ({} queued at the last samples before they closed{res}; accept-queue \
             chart). The kernel resets what is queued on a listening socket that \
             closes. Passing the socket to the new process (fd passing), a master \
             that keeps it, or net.ipv4.tcp_migrate_req=1 avoid this.",
            counted(
                credited,
                "request reset or closed",
                "requests reset or closed"
            ),
            counted(actions.len() as u64, "action", "actions"),
            thousands(queued),
        ));
    }
    if not_credited > 0 {
        parts.push(format!(
            "{} before any response byte after {} where a listening socket closed \
             with an empty accept queue at its last sample: the samples do not show \
             where these connections waited.",
            counted(
                not_credited,
                "request reset or closed",
                "requests reset or closed"
            ),
            counted(empty_actions.len() as u64, "action", "actions"),
        ));
    }
    if parts.is_empty() {
        return;
    }
    if let Some(never) = never_accepted(case) {
        parts.push(never);
    }
    out.push(finding(FindingKind::QueuedReset, parts.join(" ")));
}

/// Connections the client opened that refproxy never accepted, when every
/// generation reported its counters once.
fn never_accepted_count(case: &CaseReport) -> Option<u64> {
    let proxy = case.ledger.as_ref()?.proxy.as_ref()?;
    (proxy.missing.is_empty() && proxy.reported_twice.is_empty())
        .then(|| case.load.connections.saturating_sub(proxy.total.accepted))
}

/// "The client opened N connections and refproxy accepted M", when every
/// generation reported and the difference is positive.
fn never_accepted(case: &CaseReport) -> Option<String> {
    let proxy = case.ledger.as_ref()?.proxy.as_ref()?;
    if !proxy.missing.is_empty() {
        return None;
    }
    let opened = case.load.connections;
    let accepted = proxy.total.accepted;
    (opened > accepted).then(|| {
        format!(
            "The client opened {} connections and refproxy accepted {}: {} were \
             completed by the kernel and never accepted by any process.",
            thousands(opened),
            thousands(accepted),
            thousands(opened - accepted)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Shape, run};
    use reloadbench_model::load::FailureRecord;

    #[test]
    fn failures_in_a_window_are_counted_as_a_scan_of_every_record_counts_them() {
        let mut case = run(Shape {
            cases: 2,
            buckets: 400,
            actions: 30,
            failing_every: 2,
        })
        .cases
        .remove(1);
        // Out of order, on reused connections, of other classes, on a window's edges.
        let trigger = case.actions[4].trigger_ns;
        for (t_ns, class, reused) in [
            (trigger, FailureClass::Closed, false),
            (trigger - 1, FailureClass::Reset, false),
            (trigger + 3, FailureClass::Reset, true),
            (trigger + 4, FailureClass::Timeout, false),
            (u64::MAX, FailureClass::Reset, false),
        ] {
            case.load.failures.insert(
                7,
                FailureRecord {
                    t_ns,
                    start_ns: 0,
                    class,
                    reused,
                    id: None,
                    retryable: false,
                    kind: 0,
                },
            );
        }
        let fresh = fresh_times(&case).unwrap();
        for i in 0..case.actions.len() {
            let from = case.actions[i].trigger_ns;
            let to = case.actions.get(i + 1).map_or(u64::MAX, |a| a.trigger_ns);
            let scan = case
                .load
                .failures
                .iter()
                .filter(|f| CLASSES.contains(&f.class) && !f.reused)
                .filter(|f| (from..to).contains(&f.t_ns))
                .count() as u64;
            assert_eq!(fresh_in_window(&case, &fresh, i), scan, "action {i}");
        }
        case.load.failures_dropped = 1;
        assert_eq!(fresh_times(&case), None);
    }
}
