//! The timeline of a case: fires its actions at their times (or request
//! counts) while the load runs, one at a time, and turns what happened into
//! [`ActionReport`]s.
//!
//! Actions are executed in sequence: one that is due while another is still
//! running fires as soon as that one returns (its trigger time is when it
//! actually fired). Nothing fires after the load has ended. A cancellation
//! interrupts a running action (it is reported as failed, "interrupted").

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::event::EventKind;
use reloadbench_model::run::ActionReport;

use crate::scenario::{Action, ActionSpec, Trigger};

use super::events::EventLog;
use super::os::cancel::Cancel;
use super::sut::runner::{ActOutcome, Runner};

/// The running load as the timeline sees it.
#[allow(async_fn_in_trait)]
pub(crate) trait LoadClock {
    /// Monotonic clock reading of the load's start.
    fn started_mono_ns(&self) -> u64;
    /// Requests completed so far.
    fn completed(&self) -> u64;
    /// Resolves once `n` requests have completed, or the load has ended.
    async fn wait_completed(&self, n: u64);
    /// The clock [`LoadClock::started_mono_ns`] is read on, now: `CLOCK_MONOTONIC`. Trigger
    /// times are stamped with it. (A simulated load in the tests runs on tokio's clock.)
    fn now_mono_ns(&self) -> u64 {
        monotonic_ns()
    }
}

/// One firing of an action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fired {
    /// Index of the action in the case's list.
    pub action: usize,
    /// What it was.
    pub spec: ActionSpec,
    /// What it did.
    pub outcome: ActOutcome,
}

/// How the timeline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The load finished.
    LoadDone,
    /// Cancelled (SIGINT / SIGTERM to the harness).
    Cancelled,
}

#[derive(Debug)]
struct Slot {
    next: u32,
    done: bool,
}

/// Runs the timeline until the load ends or the run is cancelled.
/// `fired_count` is bumped after each action (for progress display).
pub(crate) async fn drive<R: Runner, L: LoadClock>(
    actions: &[Action],
    load: &L,
    runner: &mut R,
    log: &mut EventLog,
    cancel: &Cancel,
    fired_count: &AtomicU32,
) -> (Vec<Fired>, Ended) {
    let mut slots: Vec<Slot> = actions
        .iter()
        .map(|_| Slot {
            next: 0,
            done: false,
        })
        .collect();
    let mut fired = Vec::new();
    // The load's start on tokio's clock.
    let start = tokio::time::Instant::now()
        - Duration::from_nanos(load.now_mono_ns().saturating_sub(load.started_mono_ns()));
    loop {
        // The earliest time-based firing, ties to the first action.
        let mut due: Option<(Duration, usize)> = None;
        let mut by_count: Option<(u64, usize)> = None;
        for (i, (a, s)) in actions.iter().zip(&mut slots).enumerate() {
            if s.done {
                continue;
            }
            match a.trigger {
                Trigger::AfterRequests(n) => {
                    if by_count.is_none_or(|(m, _)| n < m) {
                        by_count = Some((n, i));
                    }
                }
                t => match t.nth(s.next) {
                    Some(at) => {
                        if due.is_none_or(|(d, _)| at < d) {
                            due = Some((at, i));
                        }
                    }
                    None => s.done = true,
                },
            }
        }
        let sleep_to = due.map(|(d, _)| start + d);
        let which = tokio::select! {
            biased;
            _ = cancel.cancelled() => return (fired, Ended::Cancelled),
            _ = sleep_until_opt(sleep_to) => due.map(|(_, i)| i),
            _ = wait_opt(load, by_count.map(|(n, _)| n)) => {
                match by_count {
                    Some((n, i)) if load.completed() >= n => Some(i),
                    _ => None,
                }
            }
            _ = load.wait_completed(u64::MAX) => None,
        };
        let Some(i) = which else {
            return (fired, Ended::LoadDone);
        };
        // A load that ended while we slept fires nothing more.
        if load_over(load).await {
            return (fired, Ended::LoadDone);
        }
        let spec = actions[i].what.clone();
        let trigger_mono_ns = load.now_mono_ns();
        // An action that hangs (an `exec` with a long deadline, a slow
        // start) must not hold up a cancellation: it is dropped, and with it
        // the guards of what it spawned, which kill their process groups.
        let outcome = tokio::select! {
            biased;
            s = cancel.cancelled() => {
                fired.push(Fired {
                    action: i,
                    spec,
                    outcome: ActOutcome {
                        trigger_mono_ns,
                        error: Some(format!("interrupted by {s}")),
                        ..ActOutcome::default()
                    },
                });
                return (fired, Ended::Cancelled);
            }
            o = runner.act(&spec, log) => o,
        };
        fired_count.fetch_add(1, Ordering::Relaxed);
        fired.push(Fired {
            action: i,
            spec,
            outcome,
        });
        let s = &mut slots[i];
        s.next += 1;
        if matches!(
            actions[i].trigger,
            Trigger::AfterRequests(_) | Trigger::At(_)
        ) {
            s.done = true;
        }
    }
}

async fn load_over<L: LoadClock>(load: &L) -> bool {
    // wait_completed(MAX) resolves at once only when the load has ended.
    tokio::select! {
        biased;
        _ = load.wait_completed(u64::MAX) => true,
        _ = std::future::ready(()) => false,
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn wait_opt<L: LoadClock>(load: &L, n: Option<u64>) {
    match n {
        Some(n) => load.wait_completed(n).await,
        None => std::future::pending().await,
    }
}

/// Builds the report of each firing: trigger and phase times relative to the
/// load start, the old processes' `drained` / `exited` events looked up in
/// the log (or their observed exit). Failures are attributed separately
/// ([`super::attribution::attribute`]).
pub(crate) fn action_reports<R: Runner>(
    fired: &[Fired],
    log: &EventLog,
    runner: &R,
    started_mono_ns: u64,
) -> Vec<ActionReport> {
    let rel = |t: u64| t.saturating_sub(started_mono_ns);
    fired
        .iter()
        .enumerate()
        .map(|(index, f)| {
            let o = &f.outcome;
            let phase = |want_drained: bool| {
                log.seen()
                    .iter()
                    .filter_map(|s| s.event())
                    .filter(|e| o.old_pids.contains(&e.pid) && e.mono_ns >= o.trigger_mono_ns)
                    .find(|e| match e.kind {
                        EventKind::Drained { .. } => want_drained,
                        EventKind::Exited { .. } => !want_drained,
                        _ => false,
                    })
                    .map(|e| e.mono_ns)
            };
            let exited = phase(false)
                .or(o.exited_mono_ns)
                .or_else(|| o.old_pids.iter().find_map(|p| runner.exit_seen(*p)));
            ActionReport {
                index: index as u32,
                kind: f.spec.kind(),
                mode: f.spec.mode(),
                label: f.spec.label(),
                trigger_ns: rel(o.trigger_mono_ns),
                ready_ns: o.ready_mono_ns.map(rel),
                drained_ns: phase(true).map(rel),
                exited_ns: exited.map(rel),
                ok: o.error.is_none(),
                error: o.error.clone(),
                failures: Vec::new(),
                disruption_start_ns: None,
                disruption_end_ns: None,
                recovery_ns: None,
                kernel: None,
                lost_after_forwarding: None,
                observed: None,
            }
        })
        .collect()
}
