//! The three-way ledger of a case: the client's counts (the load report), the
//! proxy's (refproxy's `counters` events, one per generation) and the origin's
//! (the file `reloadbench origin --ledger` writes when it stops), reconciled.
//!
//! The equalities (also in harness/README.md), each checked only when its inputs
//! are there; a check that does not hold makes the ledger unbalanced:
//! - `client_accounting`: planned = ok + failed + not started;
//! - `client_ok_vs_origin`: client ok = origin answered ids − lost after forwarding
//!   (needs request ids, the origin's file and every failure listed);
//! - `origin_answers_have_ids`: no answer without an id;
//! - `origin_repeats_within_retries`: ids answered more than once (answered −
//!   answered without id − distinct ids answered) ≤ the client's retries (0
//!   without a retry policy): no request served twice but by a retry;
//! - `proxy_forwarded_vs_origin`: proxy forwarded = origin received (refproxy, every
//!   generation reported);
//! - `proxy_completed_vs_client`: proxy completed = client ok (after the retries
//!   with `retry = "both"`; refproxy, every generation reported).
//!
//! **Lost after forwarding**: the failed requests (with their ids, from the load
//! report) whose id the origin answered; counted per action with the attribution
//! windows of [`super::attribution`].
//!
//! **Retries** send a request's id again. With `retry = "safe"` the failures
//! listed are final outcomes, so the rules above hold with distinct ids, and an
//! id may be answered twice (the first answer lost on its way back, the retry
//! answered), at most once per retry. With `retry = "both"` the failures listed
//! are first attempts, whose
//! retries the origin may have answered: only the failures never retried (not
//! retryable) count as lost after forwarding, and `client_ok_vs_origin` is
//! not checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reloadbench_model::event::EventKind;
use reloadbench_model::ledger::{
    ClientSide, Ledger, LedgerCheck, ORIGIN_SLOT_NS, OriginLedger, OriginSide, ProxyCounters,
    ProxySide,
};
use reloadbench_model::load::{FailureRecord, LoadReport, RetryPolicy};
use reloadbench_model::run::ActionReport;

use super::attribution::windows;
use super::events::Stamped;

/// Why the origin's counts are unavailable.
#[derive(Debug, thiserror::Error)]
pub enum OriginUnavailable {
    /// A command origin (any server) keeps no ledger.
    #[error("a command origin does not report its counts")]
    CommandOrigin,
    /// The case runs no origin (an external server without `[origin]`).
    #[error("the case runs no origin (the external server serves on its own)")]
    NoOrigin,
    /// The origin died during the case: its counts are incomplete.
    #[error("the origin died during the case")]
    Died,
    /// The origin wrote no ledger file.
    #[error("the origin wrote no counts (it did not stop on SIGTERM)")]
    NoCounts,
    /// The ledger file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The ledger file is not an origin ledger.
    #[error("{} is not an origin ledger: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// The origin's ledger file in `path`, or why it is unavailable.
pub fn read_origin(path: &Path) -> Result<OriginLedger, OriginUnavailable> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            OriginUnavailable::NoCounts
        } else {
            OriginUnavailable::Read {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|source| OriginUnavailable::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The proxy's side from the case's events: every `counters` event of a process
/// other than `origin_pid`, summed by generation; a process that announced itself
/// serving (`ready`, `reload_done`, `worker_respawned`) and never reported is missing.
pub(crate) fn proxy_side(events: &[Stamped], origin_pid: u32) -> ProxySide {
    let mut served: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut reported: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut side = ProxySide::default();
    for s in events.iter().filter(|s| s.source_pid != origin_pid) {
        let Some(e) = s.event() else { continue };
        match &e.kind {
            EventKind::Ready { generation, .. } => {
                served.insert((e.pid, *generation));
            }
            EventKind::ReloadDone {
                generation,
                new_pid,
                ..
            }
            | EventKind::WorkerRespawned {
                generation,
                new_pid,
            } => {
                served.insert((*new_pid, *generation));
            }
            EventKind::Counters {
                generation,
                counters,
            } => {
                if !reported.insert((e.pid, *generation)) {
                    side.reported_twice.push(*generation);
                    continue;
                }
                side.total.add(counters);
                side.generations
                    .entry(*generation)
                    .or_insert_with(ProxyCounters::default)
                    .add(counters);
            }
            _ => {}
        }
    }
    side.missing = served
        .difference(&reported)
        .map(|(_, g)| *g)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    side
}

/// What the reconciliation needs besides the load report.
#[derive(Debug)]
pub struct Sides {
    /// Whether the load sent request ids.
    pub ids: bool,
    /// The origin's counts, or why they are unavailable.
    pub origin: Result<OriginLedger, OriginUnavailable>,
    /// The proxy's counts; `None` for a system under test that does not report them.
    pub proxy: Option<ProxySide>,
}

/// Reconciles the three sides; fills every action's `lost_after_forwarding`.
pub fn reconcile(load: &LoadReport, sides: Sides, actions: &mut [ActionReport]) -> Ledger {
    let client = ClientSide {
        ok: load.ok,
        failed: load.failed,
        not_started: load.not_started,
        ids: sides.ids
            && load.failures_dropped == 0
            && load.failures.iter().all(|f| f.id.is_some()),
    };
    let mut checks = vec![check(
        "client_accounting",
        "client planned = ok + failed + not started",
        load.planned,
        load.ok + load.failed + load.not_started,
    )];
    let mut unchecked = Vec::new();
    let retry = load.config.retry;
    let (origin, origin_unavailable, lost) = match &sides.origin {
        Ok(o) => {
            let lost = if client.ids {
                Some(lost_per_action(load, o, actions))
            } else {
                unchecked.push(if sides.ids {
                    "client_ok_vs_origin: not every failure was listed with its id".to_owned()
                } else {
                    "client_ok_vs_origin: requests carried no ids".to_owned()
                });
                None
            };
            let side = origin_side(load, o);
            match lost {
                Some(_) if retry == RetryPolicy::Both => unchecked.push(
                    "client_ok_vs_origin: with retry = \"both\" the failures listed are \
                     first attempts, whose retries the origin may have answered"
                        .to_owned(),
                ),
                Some(lost) => checks.push(check(
                    "client_ok_vs_origin",
                    "client ok = origin answered ids - lost after forwarding",
                    load.ok,
                    side.answered_ids.saturating_sub(lost),
                )),
                None => {}
            }
            if sides.ids {
                checks.push(check(
                    "origin_answers_have_ids",
                    "origin answers without id = 0",
                    side.answered_without_id,
                    0,
                ));
                // An id answered twice is a request the origin served twice: only a
                // retry may do that (its first answer lost on the way back).
                let repeated = side
                    .answered
                    .saturating_sub(side.answered_without_id)
                    .saturating_sub(side.answered_ids);
                let allowed = if retry.retries() { load.retries } else { 0 };
                checks.push(check(
                    "origin_repeats_within_retries",
                    "ids the origin answered again <= the client's retries",
                    repeated,
                    repeated.min(allowed),
                ));
            }
            (Some(side), None, lost)
        }
        Err(e) => {
            let why = crate::cause::chain(e);
            unchecked.push(format!("origin: count unavailable ({why})"));
            (None, Some(why), None)
        }
    };
    match (&sides.proxy, &origin) {
        (None, _) => unchecked.push("proxy: not reported by this system under test".to_owned()),
        (Some(p), _) if !p.missing.is_empty() => unchecked.push(format!(
            "proxy: generation(s) {:?} never reported (killed or crashed)",
            p.missing
        )),
        (Some(p), o) => {
            // A process reports once; a second report is a defect of the
            // proxy's accounting (the first is kept in the totals).
            if !p.reported_twice.is_empty() {
                checks.push(check(
                    "proxy_reports_once",
                    "counters reports repeated by a process = 0",
                    p.reported_twice.len() as u64,
                    0,
                ));
            }
            if let Some(o) = o {
                checks.push(check(
                    "proxy_forwarded_vs_origin",
                    "proxy forwarded = origin received",
                    p.total.forwarded,
                    o.received,
                ));
            }
            // With retry = "both", `ok` counts first attempts; the proxy also
            // completed the retries that succeeded.
            let (equality, client_ok) = match (&load.after_retry, retry) {
                (Some(after), RetryPolicy::Both) => {
                    ("proxy completed = client ok after retries", after.ok)
                }
                _ => ("proxy completed = client ok", load.ok),
            };
            checks.push(check(
                "proxy_completed_vs_client",
                equality,
                p.total.completed,
                client_ok,
            ));
        }
    }
    if lost.is_none() {
        for a in actions.iter_mut() {
            a.lost_after_forwarding = None;
        }
    }
    let balanced = checks.iter().all(|c| c.holds);
    Ledger {
        client,
        proxy: sides.proxy,
        origin,
        origin_unavailable,
        lost_after_forwarding: lost,
        checks,
        unchecked,
        balanced,
    }
}

fn check(name: &str, equality: &str, left: u64, right: u64) -> LedgerCheck {
    LedgerCheck {
        name: name.to_owned(),
        equality: equality.to_owned(),
        left,
        right,
        holds: left == right,
    }
}

/// Whether a listed failure is the request's outcome: always, except the first
/// attempts that `retry = "both"` retried (their outcome is the retry's).
fn is_final(load: &LoadReport, f: &FailureRecord) -> bool {
    load.config.retry != RetryPolicy::Both || !f.retryable
}

/// Counts the failures whose id the origin answered, in total and per action window.
fn lost_per_action(load: &LoadReport, origin: &OriginLedger, actions: &mut [ActionReport]) -> u64 {
    let wins = windows(actions);
    let mut per_action = vec![0u64; actions.len()];
    let mut total = 0;
    for f in load.failures.iter().filter(|f| is_final(load, f)) {
        let Some(id) = f.id else { continue };
        if !origin.answered_id(id) {
            continue;
        }
        total += 1;
        let i = wins.partition_point(|w| w.0 <= f.t_ns);
        if let Some(i) = i.checked_sub(1)
            && f.t_ns < wins[i].1
        {
            per_action[i] += 1;
        }
    }
    for (a, n) in actions.iter_mut().zip(per_action) {
        a.lost_after_forwarding = Some(n);
    }
    total
}

/// The origin's counts, its answers counted again into the load's buckets.
fn origin_side(load: &LoadReport, o: &OriginLedger) -> OriginSide {
    let width = load.config.bucket_ns();
    let mut per_bucket = vec![0u64; load.buckets.len()];
    let mut outside = 0;
    for (i, &n) in o.answered_per_slot.iter().enumerate() {
        if n == 0 {
            continue;
        }
        // The slot's middle: at most half a slot from any answer in it.
        let t = o.slots_start_mono_ns + i as u64 * ORIGIN_SLOT_NS + ORIGIN_SLOT_NS / 2;
        let bucket = t
            .checked_sub(load.started_mono_ns)
            .map(|rel| rel / width)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|b| *b < per_bucket.len());
        match bucket {
            Some(b) => per_bucket[b] += n,
            None => outside += n,
        }
    }
    OriginSide {
        received: o.received,
        answered: o.answered,
        answered_ids: o.distinct_ids(),
        answered_without_id: o.answered_without_id,
        duplicate_ids: o.duplicate_ids,
        answered_per_bucket: per_bucket,
        answered_outside_load: outside,
        answered_by_method: o.answered_by_method.clone(),
        body_bytes_received: o.body_bytes_received,
    }
}

#[cfg(test)]
mod tests;
