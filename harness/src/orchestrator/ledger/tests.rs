//! The reconciliation rules on hand-made sides.

use reloadbench_model::event::{Event, EventKind, ReloadMode};
use reloadbench_model::ledger::{ORIGIN_SLOT_NS, OriginLedger, ProxyCounters, ProxySide};
use reloadbench_model::load::{LoadReport, RetryPolicy};
use reloadbench_model::outcome::FailureClass;

use super::*;
use crate::orchestrator::attribution::tests::{MS, action, load};
use crate::orchestrator::events::{Payload, Stamped, Stream};

/// A load of `ok` successes (10 buckets of 100 ms, started at mono 1 s) and failures
/// at the given ms with the given ids.
fn client(ok: u64, failures: &[(u64, u64)]) -> LoadReport {
    let f: Vec<(u64, FailureClass)> = failures
        .iter()
        .map(|&(t, _)| (t, FailureClass::Reset))
        .collect();
    let mut l = load(&f, &[ok / 10; 10]);
    l.ok = ok;
    l.started_mono_ns = 1_000 * MS;
    l.planned = ok + failures.len() as u64;
    for (rec, &(_, id)) in l.failures.iter_mut().zip(failures) {
        rec.id = Some(id);
    }
    l
}

/// An origin that answered `ids`, all in the slot at `at_ms` after mono 1 s.
fn origin(ids: &[u64], at_ms: u64) -> OriginLedger {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let dups = sorted.len();
    sorted.dedup();
    let mut per_slot = vec![0; at_ms as usize + 1];
    per_slot[at_ms as usize] = ids.len() as u64;
    OriginLedger {
        received: ids.len() as u64,
        answered: ids.len() as u64,
        answered_without_id: 0,
        duplicate_ids: (dups - sorted.len()) as u64,
        answered_ids: OriginLedger::ranges_of(&sorted),
        slots_start_mono_ns: 1_000 * MS,
        answered_per_slot: per_slot,
        ..OriginLedger::default()
    }
}

fn proxy(forwarded: u64, completed: u64) -> ProxySide {
    let c = ProxyCounters {
        accepted: forwarded,
        forwarded,
        completed,
        aborted: 0,
        errors: Default::default(),
    };
    ProxySide {
        total: c.clone(),
        generations: [(1, c)].into(),
        missing: vec![],
        reported_twice: vec![],
    }
}

fn sides(origin: Result<OriginLedger, OriginUnavailable>, proxy: Option<ProxySide>) -> Sides {
    Sides {
        ids: true,
        origin,
        proxy,
    }
}

fn names(l: &Ledger) -> Vec<(&str, bool)> {
    l.checks
        .iter()
        .map(|c| (c.name.as_str(), c.holds))
        .collect()
}

#[test]
fn a_clean_run_balances_on_every_equality() {
    // ids 0..=99: 98 ok, 98 and 99 failed before reaching the origin.
    let load = client(98, &[(250, 98), (260, 99)]);
    let ids: Vec<u64> = (0..98).collect();
    let mut actions = [action(200, Some(300), None)];
    let l = reconcile(
        &load,
        sides(Ok(origin(&ids, 150)), Some(proxy(98, 98))),
        &mut actions,
    );
    assert!(l.balanced, "{l:#?}");
    assert_eq!(
        names(&l),
        [
            ("client_accounting", true),
            ("client_ok_vs_origin", true),
            ("origin_answers_have_ids", true),
            ("origin_repeats_within_retries", true),
            ("proxy_forwarded_vs_origin", true),
            ("proxy_completed_vs_client", true),
        ]
    );
    assert_eq!(l.lost_after_forwarding, Some(0));
    assert_eq!(actions[0].lost_after_forwarding, Some(0));
    assert!(l.unchecked.is_empty(), "{:?}", l.unchecked);
    let o = l.origin.unwrap();
    // Answered at 150.5 ms after load start: bucket 1.
    assert_eq!(o.answered_per_bucket[1], 98);
    assert_eq!(o.answered_per_bucket.iter().sum::<u64>(), 98);
    assert_eq!(o.answered_outside_load, 0);
}

#[test]
fn answered_failures_are_lost_after_forwarding_per_action_and_still_balance() {
    // Failures: id 5 (answered, action 0), id 7 (answered, action 1), id 9 (not
    // answered), id 3 (answered, in no window).
    let load = client(6, &[(210, 5), (610, 7), (620, 9), (900, 3)]);
    let answered = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10];
    let mut actions = [action(200, Some(300), None), action(600, Some(650), None)];
    let l = reconcile(&load, sides(Ok(origin(&answered, 0)), None), &mut actions);
    assert_eq!(l.lost_after_forwarding, Some(3));
    assert_eq!(actions[0].lost_after_forwarding, Some(1));
    assert_eq!(actions[1].lost_after_forwarding, Some(1));
    // ok 6 = 10 answered ids - 3 lost + ... 1 too many: id 10 was never an ok request.
    let c = l
        .checks
        .iter()
        .find(|c| c.name == "client_ok_vs_origin")
        .unwrap();
    assert_eq!((c.left, c.right, c.difference()), (6, 7, -1));
    assert!(!l.balanced);
    assert_eq!(l.broken().count(), 1);
    assert!(
        l.unchecked
            .iter()
            .any(|u| u.starts_with("proxy: not reported"))
    );
}

#[test]
fn a_proxy_that_drops_answers_breaks_its_equalities_by_the_drop_count() {
    // 10 requests; the origin answered all; the proxy completed 7 and the client saw 3
    // failures: lost after forwarding = 3, client side balances, proxy completed = ok.
    let load = client(7, &[(100, 7), (110, 8), (120, 9)]);
    let ids: Vec<u64> = (0..10).collect();
    let l = reconcile(
        &load,
        sides(Ok(origin(&ids, 0)), Some(proxy(10, 7))),
        &mut [],
    );
    assert_eq!(l.lost_after_forwarding, Some(3));
    assert!(l.balanced, "{l:#?}");
    // The same with a proxy that claims it completed all 10: flagged, by 3.
    let l = reconcile(
        &load,
        sides(Ok(origin(&ids, 0)), Some(proxy(10, 10))),
        &mut [],
    );
    let broken: Vec<_> = l
        .broken()
        .map(|c| (c.name.as_str(), c.difference()))
        .collect();
    assert_eq!(broken, [("proxy_completed_vs_client", 3)]);
    assert!(!l.balanced);
}

#[test]
fn duplicate_or_idless_answers_and_a_short_forward_count_are_flagged() {
    let load = client(3, &[]);
    let mut o = origin(&[0, 1, 2, 2], 0);
    o.answered += 1;
    o.answered_without_id = 1;
    o.received = 5;
    let l = reconcile(&load, sides(Ok(o), Some(proxy(4, 3))), &mut []);
    let broken: Vec<_> = l
        .broken()
        .map(|c| (c.name.as_str(), c.difference()))
        .collect();
    assert_eq!(
        broken,
        [
            ("origin_answers_have_ids", 1),
            ("origin_repeats_within_retries", 1),
            ("proxy_forwarded_vs_origin", -1)
        ]
    );
    let side = l.origin.unwrap();
    assert_eq!((side.duplicate_ids, side.answered_without_id), (1, 1));
}

#[test]
fn unavailable_counts_are_said_never_zero() {
    let load = client(5, &[(100, 5)]);
    let mut actions = [action(50, None, None)];
    let l = reconcile(
        &load,
        sides(Err(OriginUnavailable::Died), None),
        &mut actions,
    );
    assert_eq!(l.origin, None);
    assert_eq!(
        l.origin_unavailable.as_deref(),
        Some("the origin died during the case")
    );
    assert_eq!(l.lost_after_forwarding, None);
    assert_eq!(actions[0].lost_after_forwarding, None);
    assert_eq!(names(&l), [("client_accounting", true)]);
    assert!(
        l.summary().contains("origin count unavailable"),
        "{}",
        l.summary()
    );
    assert!(l.summary().contains("reached the origin: unknown"));
}

#[test]
fn lost_is_not_counted_when_a_failure_has_no_id_or_the_list_was_capped() {
    let mut load = client(5, &[(100, 5)]);
    load.failures_dropped = 1;
    load.failed += 1;
    load.planned += 1;
    let ids: Vec<u64> = (0..6).collect();
    let l = reconcile(&load, sides(Ok(origin(&ids, 0)), None), &mut []);
    assert_eq!(l.lost_after_forwarding, None);
    assert!(!l.client.ids);
    assert!(l.checks.iter().all(|c| c.name != "client_ok_vs_origin"));
    assert!(l.unchecked.iter().any(|u| u.contains("not every failure")));
}

#[test]
fn answers_map_to_load_buckets_by_the_shared_clock() {
    let load = client(0, &[]);
    let mut o = origin(&[], 0);
    // Slots at 0.5 ms before the load, 99.5 ms, 100.5 ms and 5 s after its start.
    o.slots_start_mono_ns = 1_000 * MS - ORIGIN_SLOT_NS;
    o.answered_per_slot = vec![0; 5_002];
    o.answered_per_slot[0] = 1;
    o.answered_per_slot[100] = 2;
    o.answered_per_slot[101] = 3;
    o.answered_per_slot[5_001] = 4;
    let side = origin_side(&load, &o);
    assert_eq!(&side.answered_per_bucket[..2], &[2, 3]);
    assert_eq!(side.answered_outside_load, 5);
}

/// Error kinds by name.
fn errors(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn stamped(source_pid: u32, pid: u32, kind: EventKind) -> Stamped {
    Stamped {
        recv_mono_ns: 0,
        source: "refproxy".into(),
        source_pid,
        stream: Stream::Stdout,
        payload: Payload::Event(Event {
            mono_ns: 0,
            pid,
            kind,
        }),
    }
}

#[test]
fn proxy_side_sums_generations_and_names_the_silent_ones() {
    let counters = |n| EventKind::Counters {
        generation: 0,
        counters: ProxyCounters {
            accepted: n,
            forwarded: n,
            completed: n,
            aborted: 0,
            errors: errors(&[("connect", 1)]),
        },
    };
    let with_gen = |k: EventKind, g: u64| match k {
        EventKind::Counters { counters, .. } => EventKind::Counters {
            generation: g,
            counters,
        },
        k => k,
    };
    let ready = |g| EventKind::Ready {
        generation: g,
        addrs: vec![],
    };
    let events = vec![
        stamped(10, 10, ready(1)),
        stamped(
            10,
            10,
            EventKind::ReloadDone {
                generation: 2,
                new_pid: 11,
                mode: ReloadMode::FdPass,
            },
        ),
        stamped(10, 10, with_gen(counters(5), 1)),
        stamped(11, 11, ready(2)),
        // A restart after a kill: generation 1 again, in a new process that reports.
        stamped(12, 12, ready(1)),
        stamped(12, 12, with_gen(counters(2), 1)),
        // The origin's own ready line is not the proxy's.
        stamped(99, 99, ready(1)),
    ];
    let mut events = events;
    // A process that reports twice: the second report is not summed.
    events.push(stamped(12, 12, with_gen(counters(2), 1)));
    let side = proxy_side(&events, 99);
    assert_eq!(side.reported_twice, vec![1]);
    assert_eq!(side.total.forwarded, 7);
    assert_eq!(side.total.errors, errors(&[("connect", 2)]));
    assert_eq!(side.generations[&1].completed, 7);
    assert_eq!(side.missing, vec![2]);
}

#[test]
fn a_process_reporting_its_counters_twice_unbalances_the_ledger() {
    let load = client(98, &[(250, 98), (260, 99)]);
    let ids: Vec<u64> = (0..98).collect();
    let mut twice = proxy(98, 98);
    twice.reported_twice = vec![1];
    let mut actions = [action(200, Some(300), None)];
    let l = reconcile(
        &load,
        sides(Ok(origin(&ids, 150)), Some(twice)),
        &mut actions,
    );
    assert!(!l.balanced, "{l:#?}");
    assert!(names(&l).contains(&("proxy_reports_once", false)), "{l:#?}");
    // The other proxy equalities are still checked on the deduplicated totals.
    assert!(
        names(&l).contains(&("proxy_completed_vs_client", true)),
        "{l:#?}"
    );
}

#[test]
fn with_safe_retries_an_id_answered_twice_is_no_imbalance() {
    // Ids 0..=9 ok; id 4 was answered twice (its first answer lost, the retry
    // answered); id 12 failed for good after the origin answered it.
    let mut load = client(10, &[(210, 12)]);
    load.config.retry = RetryPolicy::Safe;
    load.retries = 1;
    let answered = [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 12];
    let mut actions = [action(200, Some(300), None)];
    let l = reconcile(&load, sides(Ok(origin(&answered, 0)), None), &mut actions);
    assert_eq!(l.lost_after_forwarding, Some(1));
    assert_eq!(actions[0].lost_after_forwarding, Some(1));
    assert_eq!(
        names(&l),
        [
            ("client_accounting", true),
            ("client_ok_vs_origin", true),
            ("origin_answers_have_ids", true),
            ("origin_repeats_within_retries", true)
        ]
    );
    // More repeats than retries: a request served twice that no retry explains
    // (e.g. a proxy that forwarded a POST twice).
    load.retries = 0;
    let l = reconcile(&load, sides(Ok(origin(&answered, 0)), None), &mut actions);
    let broken: Vec<_> = l
        .broken()
        .map(|c| (c.name.as_str(), c.difference()))
        .collect();
    assert_eq!(broken, [("origin_repeats_within_retries", 1)]);
    // Without retries the same answers are a duplicate.
    load.retries = 1;
    load.config.retry = RetryPolicy::None;
    let l = reconcile(&load, sides(Ok(origin(&answered, 0)), None), &mut actions);
    assert!(!l.balanced);
}

#[test]
fn with_both_only_failures_never_retried_are_lost_after_forwarding() {
    // Raw first attempts: id 5 retryable (retried; the origin answered the
    // retry), id 7 not retryable (answered, then lost: a POST).
    let mut load = client(8, &[(210, 5), (220, 7)]);
    load.config.retry = RetryPolicy::Both;
    load.failures[0].retryable = true;
    let answered = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    let mut actions = [action(200, Some(300), None)];
    let l = reconcile(&load, sides(Ok(origin(&answered, 0)), None), &mut actions);
    assert_eq!(l.lost_after_forwarding, Some(1));
    assert_eq!(actions[0].lost_after_forwarding, Some(1));
    assert!(l.checks.iter().all(|c| c.name != "client_ok_vs_origin"));
    assert!(
        l.unchecked
            .iter()
            .any(|u| u.starts_with("client_ok_vs_origin: with retry = \"both\""))
    );
    assert!(l.balanced);
    // The proxy completed the first attempts that succeeded and the retry that did.
    load.after_retry = Some(reloadbench_model::load::AfterRetry {
        ok: 9,
        failed: 1,
        failed_by_class: Default::default(),
    });
    let l = reconcile(
        &load,
        sides(Ok(origin(&answered, 0)), Some(proxy(9, 9))),
        &mut actions,
    );
    let c = l
        .checks
        .iter()
        .find(|c| c.name == "proxy_completed_vs_client")
        .unwrap();
    assert_eq!((c.left, c.right, c.holds), (9, 9, true), "{c:?}");
}
