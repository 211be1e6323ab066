//! A diagnosis per case: why requests failed, or why none did, in
//! sentences written from the evidence a run recorded (attributed failures,
//! the kernel's view of the listening sockets, kernel counters, the
//! three-way ledger, the machine's load), and only when that evidence
//! supports them. What the evidence does not explain is said to be
//! unexplained, never guessed.

mod resets;
mod sockets;

use reloadbench_model::diagnosis::{Finding, FindingKind};
use reloadbench_model::kernel::CounterScope;
use reloadbench_model::ledger::thousands;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{ActionKind, ActionReport, CaseReport};

/// The findings of one case, most telling first.
pub fn diagnose(case: &CaseReport) -> Vec<Finding> {
    let mut out = Vec::new();
    // Failures each rule accounts for, per action (rules may overlap: an
    // action is never credited with more than its own failures).
    let mut explained = vec![0u64; case.actions.len()];
    if let Some(ev) = &case.evidence {
        resets::queued_resets(case, ev, &mut explained, &mut out);
        refused_without_listener(case, ev, &mut explained, &mut out);
    }
    let lost_elsewhere = lost_after_forwarding(case, &mut explained, &mut out);
    kernel(case, &mut out);
    let client = case.failed_of(FailureClass::ClientError);
    if client > 0 {
        for (i, a) in case.actions.iter().enumerate() {
            explained[i] += of_classes(a, &[FailureClass::ClientError]);
        }
        out.push(finding(
            FindingKind::ClientSide,
            format!(
                "{} on the load generator's own side (out of ephemeral ports or \
                 file descriptors): not the server's doing.",
                counted(client, "failure", "failures")
            ),
        ));
    }
    let attributed: u64 = case.actions.iter().map(ActionReport::failed_total).sum();
    let unattributed = case.load.failed.saturating_sub(attributed);
    let unattributed_client = client.saturating_sub(
        case.actions
            .iter()
            .map(|a| of_classes(a, &[FailureClass::ClientError]))
            .sum(),
    );
    let total_explained = case
        .actions
        .iter()
        .zip(&explained)
        .map(|(a, e)| (*e).min(a.failed_total()))
        .sum::<u64>()
        + (lost_elsewhere + unattributed_client).min(unattributed);
    let failed = case.load.failed;
    if failed > total_explained {
        out.push(finding(
            FindingKind::Unexplained,
            format!(
                "{} of {} not explained by the evidence recorded (see the failures \
                 table for their classes and times).",
                thousands(failed - total_explained),
                counted(failed, "failure", "failures")
            ),
        ));
    }
    if failed == 0 && !case.actions.is_empty() {
        out.push(nothing_lost(case));
    }
    if let Some(ledger) = &case.ledger
        && !ledger.balanced
    {
        let broken: Vec<String> = ledger
            .broken()
            .map(|c| {
                format!(
                    "{} ({} ≠ {})",
                    c.equality,
                    thousands(c.left),
                    thousands(c.right)
                )
            })
            .collect();
        out.push(finding(
            FindingKind::LedgerUnbalanced,
            format!(
                "The ledger does not balance: {}. Client, proxy and origin disagree \
                 about what happened; read this case's counts with care.",
                broken.join("; ")
            ),
        ));
    }
    if let Some(reason) = case.machine.as_ref().and_then(|m| m.busy.as_deref()) {
        out.push(finding(
            FindingKind::BusyMachine,
            format!(
                "The machine was busy: {reason}. Throughput and latencies are less \
                 comparable with other runs; failure counts are not affected by it."
            ),
        ));
    }
    out
}

/// `n` (with thousands separators) and the noun that fits it.
fn counted(n: u64, singular: &str, plural: &str) -> String {
    format!(
        "{} {}",
        thousands(n),
        if n == 1 { singular } else { plural }
    )
}

fn finding(kind: FindingKind, text: String) -> Finding {
    Finding { kind, text }
}

/// Failures of `classes` attributed to action `a`.
fn of_classes(a: &ActionReport, classes: &[FailureClass]) -> u64 {
    a.failures
        .iter()
        .filter(|f| classes.contains(&f.class))
        .map(|f| f.count)
        .sum()
}

/// Credits each action in `which` with its failures of `classes`; returns
/// their sum.
fn credit(
    actions: &[ActionReport],
    which: &[usize],
    classes: &[FailureClass],
    explained: &mut [u64],
) -> u64 {
    which
        .iter()
        .filter_map(|&i| Some((i, of_classes(actions.get(i)?, classes))))
        .map(|(i, n)| {
            explained[i] += n;
            n
        })
        .sum()
}

/// The widest sampling gap of the actions in `which`, in ms.
fn resolution_ms(actions: &[ActionReport], which: &[usize]) -> Option<f64> {
    which
        .iter()
        .filter_map(|&i| actions.get(i)?.observed.as_ref())
        .map(|o| o.resolution_ns as f64 / 1e6)
        .reduce(f64::max)
}

fn dedup(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Refused connects in the windows of actions after which nobody listened.
fn refused_without_listener(
    case: &CaseReport,
    ev: &reloadbench_model::evidence::CaseEvidence,
    explained: &mut [u64],
    out: &mut Vec<Finding>,
) {
    let gaps = sockets::gaps(ev, &case.actions);
    let which = dedup(gaps.iter().map(|g| g.action).collect());
    let refused = credit(
        &case.actions,
        &which,
        &[FailureClass::ConnectRefused],
        explained,
    );
    if refused == 0 {
        return;
    }
    let longest = gaps.iter().map(|g| g.at_most_ns).max().unwrap_or(0) as f64 / 1e6;
    // The kernel's own count, when it is the case's alone.
    let kernel = case
        .kernel
        .as_ref()
        .filter(|k| k.scope == CounterScope::CaseNetns)
        .and_then(|k| k.get("TcpAttemptFails"))
        .map(|n| {
            format!(
                " The kernel counted {} in the case's namespace (TcpAttemptFails) against \
                 {} refused at the client in the whole case.",
                counted(
                    n.max(0) as u64,
                    "failed connection attempt",
                    "failed connection attempts"
                ),
                thousands(case.failed_of(FailureClass::ConnectRefused)),
            )
        })
        .unwrap_or_default();
    out.push(finding(
        FindingKind::NoListener,
        format!(
            "{}: after {} nobody listened on {} ({} without a listening socket, the \
             longest at most {longest:.0} ms, seen from the kernel). A replacement \
             that keeps a listening socket open throughout (fd passing, master-worker) \
             avoids this.{kernel}",
            counted(refused, "connect refused", "connects refused"),
            counted(which.len() as u64, "action", "actions"),
            ev.address,
            counted(gaps.len() as u64, "gap", "gaps"),
        ),
    ));
}

/// Failed requests the origin answered; returns those not attributed to
/// any action.
fn lost_after_forwarding(case: &CaseReport, explained: &mut [u64], out: &mut Vec<Finding>) -> u64 {
    let Some(lost) = case.ledger.as_ref().and_then(|l| l.lost_after_forwarding) else {
        return 0;
    };
    if lost == 0 {
        return 0;
    }
    let mut in_actions = 0;
    let mut by = Vec::new();
    let mut all_stopped = true;
    for (i, a) in case.actions.iter().enumerate() {
        let n = a.lost_after_forwarding.unwrap_or(0);
        if n == 0 {
            continue;
        }
        explained[i] += n;
        in_actions += n;
        all_stopped &= matches!(a.kind, ActionKind::Kill | ActionKind::Restart);
        by.push((
            n,
            format!("{} after #{} {}", thousands(n), a.index, a.label),
        ));
    }
    let by = if by.is_empty() {
        String::new()
    } else {
        format!(" ({})", crate::bounded::capped_list(by, "actions"))
    };
    // The cause is named only where the action itself stopped the process.
    let cause = if in_actions == lost && all_stopped {
        " The action stopped the process that was relaying them."
    } else {
        ""
    };
    out.push(finding(
        FindingKind::LostAfterForwarding,
        format!(
            "{} had been answered by the origin, but the answer never reached the \
             client{by}: lost after forwarding, between the origin and the client.{cause}",
            counted(lost, "failed request", "failed requests"),
        ),
    ));
    lost.saturating_sub(in_actions)
}

/// Listen overflows and migrated connections from the kernel's counters.
fn kernel(case: &CaseReport, out: &mut Vec<Finding>) {
    let Some(k) = &case.kernel else { return };
    let scope = k.scope.as_str();
    let overflows = k.get("TcpExtListenOverflows").unwrap_or(0);
    if overflows > 0 {
        let drops = k.get("TcpExtListenDrops").unwrap_or(0);
        let whose = match k.scope {
            CounterScope::CaseNetns => "a listening socket of the case (proxy or origin)",
            CounterScope::HostWide => "a listening socket somewhere on this host",
        };
        out.push(finding(
            FindingKind::ListenOverflow,
            format!(
                "The kernel dropped connection attempts on a full accept queue of {whose} \
                 {} (TcpExtListenOverflows {overflows}, ListenDrops {drops}; counters \
                 {scope}); the clients retried or timed out.",
                counted(overflows as u64, "time", "times"),
            ),
        ));
    }
    let migrated = k.get("TcpExtTCPMigrateReqSuccess").unwrap_or(0);
    if migrated > 0 {
        let failed = k.get("TcpExtTCPMigrateReqFailure").unwrap_or(0);
        out.push(finding(
            FindingKind::Migrated,
            format!(
                "The kernel moved {} from a closing listening socket to another one \
                 (tcp_migrate_req; {failed} could not be moved; counters {scope}).",
                counted(migrated as u64, "queued connection", "queued connections"),
            ),
        ));
    }
}

/// Why nothing was lost, from the sockets seen.
fn nothing_lost(case: &CaseReport) -> Finding {
    let n = case.actions.len() as u64;
    let mut text = format!(
        "No request failed across {}.",
        counted(n, "action", "actions")
    );
    if case.load.config.keep_alive {
        text.push_str(&format!(
            " The client opened {} (keep-alive), so the reloads were crossed by \
             that many new connections.",
            counted(case.load.connections, "connection", "connections")
        ));
    }
    if let Some(ev) = &case.evidence {
        match ev.queues.len() {
            0 => {}
            1 => text.push_str(
                " One listening socket served the whole load and never closed (seen \
                 from the kernel): no connection waited on a socket that closed.",
            ),
            k => {
                let closed = sockets::closed(ev, &case.actions);
                let queued: u64 = closed.iter().map(|c| u64::from(c.queued)).sum();
                if !closed.is_empty() && queued == 0 {
                    text.push_str(&format!(
                        " {k} listening sockets came and went; their accept queues \
                         were empty at the last samples before they closed."
                    ));
                }
            }
        }
    }
    finding(FindingKind::NothingLost, text)
}
