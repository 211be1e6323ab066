//! Which action caused which failures, and how long throughput took to
//! recover.
//!
//! The rules (also in the README):
//! - **Window** of an action: from its trigger to `max(exited, ready)` (of the
//!   old process's exit and the new process's readiness, whichever is later
//!   and known; the trigger when neither is) plus [`GRACE_NS`], capped at the
//!   next action's trigger. Windows therefore never overlap.
//! - **Attribution**: a failure (its `t_ns`, when the client saw it) belongs
//!   to the action whose window contains it; a failure in no window belongs
//!   to no action. Per action: failures by class, and the disruption window
//!   from its first to its last attributed failure.
//! - **Recovery** is measured only for an action with attributed failures
//!   (an action without any gets none: on a shared machine a throughput dip
//!   without failures cannot be told from noise). The steady level is the
//!   median `ok` count of the buckets that overlap no window (the first and
//!   the last, partial, buckets are left out; when no bucket is outside all
//!   windows, all buckets but the first and the last are used). The action
//!   has recovered at the first bucket that starts at or after its trigger,
//!   is not earlier than the bucket of its last attributed failure, and
//!   whose `ok` count, and the mean of it and the next bucket's, are at
//!   least [`RECOVERY_FRACTION`] of that level (one good bucket inside a
//!   longer dip does not count). `recovery_ns` is that bucket's start minus
//!   the trigger, so its resolution is one bucket; `None` when no bucket
//!   qualifies before the next action's trigger (or the end of the run): a
//!   recovery is never stretched over later actions.

use reloadbench_model::load::{Bucket, LoadReport};
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{ActionReport, ClassTotal};

/// Time after an action's last phase during which failures are still its own.
pub(crate) const GRACE_NS: u64 = 200_000_000;

/// Share of the steady `ok` count per bucket that counts as recovered.
pub(crate) const RECOVERY_FRACTION: f64 = 0.9;

/// The attribution window `[start, end)` of each action, in ns since load start.
pub(crate) fn windows(actions: &[ActionReport]) -> Vec<(u64, u64)> {
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let last_phase = [a.exited_ns, a.ready_ns]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(a.trigger_ns)
                .max(a.trigger_ns);
            let mut end = last_phase.saturating_add(GRACE_NS);
            if let Some(next) = actions.get(i + 1) {
                end = end.min(next.trigger_ns.max(a.trigger_ns));
            }
            (a.trigger_ns, end)
        })
        .collect()
}

/// Fills `failures`, `disruption_*` and `recovery_ns` of every action from
/// the load report. Actions must be in trigger order. Returns the number of
/// failures attributed to no action.
pub(crate) fn attribute(load: &LoadReport, actions: &mut [ActionReport]) -> u64 {
    let wins = windows(actions);
    let mut counts = vec![[0u64; FailureClass::ALL.len()]; actions.len()];
    let mut unattributed = 0;
    for a in actions.iter_mut() {
        a.failures.clear();
        a.disruption_start_ns = None;
        a.disruption_end_ns = None;
        a.recovery_ns = None;
    }
    for f in &load.failures {
        let i = wins.partition_point(|w| w.0 <= f.t_ns);
        match i.checked_sub(1) {
            Some(i) if f.t_ns < wins[i].1 => {
                counts[i][f.class.index()] += 1;
                let a = &mut actions[i];
                a.disruption_start_ns =
                    Some(a.disruption_start_ns.map_or(f.t_ns, |s| s.min(f.t_ns)));
                a.disruption_end_ns = Some(a.disruption_end_ns.map_or(f.t_ns, |e| e.max(f.t_ns)));
            }
            _ => unattributed += 1,
        }
    }
    for (a, c) in actions.iter_mut().zip(&counts) {
        a.failures = FailureClass::ALL
            .into_iter()
            .filter(|cl| c[cl.index()] > 0)
            .map(|class| ClassTotal {
                class,
                count: c[class.index()],
            })
            .collect();
    }
    let width = load.config.bucket_ns();
    if let Some(level) = steady_level(&load.buckets, width, &wins) {
        let threshold = level * RECOVERY_FRACTION;
        // The last bucket is partial: never a sample.
        let full = &load.buckets[..load.buckets.len().saturating_sub(1)];
        let next_triggers: Vec<u64> = actions
            .iter()
            .skip(1)
            .map(|a| a.trigger_ns)
            .chain([u64::MAX])
            .collect();
        for (a, next) in actions.iter_mut().zip(next_triggers) {
            let Some(last_failure) = a.disruption_end_ns else {
                continue;
            };
            a.recovery_ns = full
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    b.start_ns >= a.trigger_ns
                        && b.start_ns < next
                        && b.start_ns.saturating_add(width) > last_failure
                })
                .find(|&(i, b)| {
                    let ok = b.ok as f64;
                    let mean = full.get(i + 1).map_or(ok, |n| (ok + n.ok as f64) / 2.0);
                    ok >= threshold && mean >= threshold
                })
                .map(|(_, b)| b.start_ns - a.trigger_ns);
        }
    }
    unattributed
}

/// Median ok count per bucket outside all windows (see the module docs).
pub(crate) fn steady_level(buckets: &[Bucket], width_ns: u64, wins: &[(u64, u64)]) -> Option<f64> {
    if buckets.len() < 3 {
        return None;
    }
    let inner = &buckets[1..buckets.len() - 1];
    let outside: Vec<u64> = inner
        .iter()
        .filter(|b| {
            let (s, e) = (b.start_ns, b.start_ns + width_ns);
            !wins.iter().any(|&(ws, we)| ws < e && s < we)
        })
        .map(|b| b.ok)
        .collect();
    let mut oks = if outside.is_empty() {
        inner.iter().map(|b| b.ok).collect()
    } else {
        outside
    };
    oks.sort_unstable();
    let n = oks.len();
    let median = if n % 2 == 1 {
        oks[n / 2] as f64
    } else {
        (oks[n / 2 - 1] + oks[n / 2]) as f64 / 2.0
    };
    (median > 0.0).then_some(median)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use reloadbench_model::load::{
        BucketLatency, ConnectionTimes, FailureRecord, LatencySummary, LoadConfigSummary,
    };
    use reloadbench_model::outcome::AbView;
    use reloadbench_model::run::ActionKind;

    pub(crate) const MS: u64 = 1_000_000;

    pub(crate) fn action(
        trigger_ms: u64,
        ready_ms: Option<u64>,
        exited_ms: Option<u64>,
    ) -> ActionReport {
        ActionReport {
            index: 0,
            kind: ActionKind::Reload,
            mode: None,
            label: "reload".into(),
            trigger_ns: trigger_ms * MS,
            ready_ns: ready_ms.map(|m| m * MS),
            drained_ns: None,
            exited_ns: exited_ms.map(|m| m * MS),
            ok: true,
            error: None,
            failures: vec![],
            disruption_start_ns: None,
            disruption_end_ns: None,
            recovery_ns: None,
            kernel: None,
            lost_after_forwarding: None,
            observed: None,
        }
    }

    pub(crate) fn load(failures: &[(u64, FailureClass)], oks: &[u64]) -> LoadReport {
        LoadReport {
            schema_version: 1,
            config: LoadConfigSummary {
                url: "http://127.0.0.1:1/".into(),
                method: "GET".into(),
                concurrency: 1,
                requests: None,
                duration_ms: None,
                rate: None,
                keep_alive: false,
                timeout_ms: 1000,
                bucket_ms: 100,
                mix: Vec::new(),
                retry: Default::default(),
                think_time_ms: None,
                tls: None,
            },
            started_mono_ns: 0,
            elapsed_ns: oks.len() as u64 * 100 * MS,
            planned: 0,
            ok: oks.iter().sum(),
            failed: failures.len() as u64,
            not_started: 0,
            failed_on_reused: 0,
            body_bytes: 0,
            total_bytes: 0,
            connections: 0,
            refused_backoff_ns: 0,
            server_software: None,
            document_length: None,
            classes: vec![],
            ab: AbView::default(),
            latency: LatencySummary::default(),
            connection_times: ConnectionTimes::default(),
            schedule: None,
            buckets: oks
                .iter()
                .enumerate()
                .map(|(i, &ok)| Bucket {
                    start_ns: i as u64 * 100 * MS,
                    ok,
                    failed: vec![],
                    latency: BucketLatency::default(),
                    connections: 0,
                    failed_retryable: 0,
                    handshakes: Default::default(),
                    goaways: 0,
                })
                .collect(),
            failures: failures
                .iter()
                .map(|&(t, class)| FailureRecord {
                    t_ns: t * MS,
                    start_ns: t * MS,
                    class,
                    reused: false,
                    id: None,
                    retryable: false,
                    kind: 0,
                })
                .collect(),
            failures_dropped: 0,
            failed_retryable: 0,
            failed_not_retryable: failures.len() as u64,
            retries: 0,
            stale_discarded: 0,
            methods: Vec::new(),
            after_retry: None,
            tls: None,
            h2: None,
            ws: None,
            stream: None,
        }
    }

    #[test]
    fn windows_end_after_the_last_phase_plus_grace_capped_by_the_next_trigger() {
        let acts = [
            action(100, Some(150), Some(400)),
            action(500, Some(520), None),
            action(600, None, None),
        ];
        let w = windows(&acts);
        assert_eq!(w[0], (100 * MS, 500 * MS)); // 400 + 200 capped at 500
        assert_eq!(w[1], (500 * MS, 600 * MS)); // 520 + 200 capped at 600
        assert_eq!(w[2], (600 * MS, 800 * MS)); // trigger + grace
    }

    #[test]
    fn failures_go_to_their_window_or_to_none() {
        let mut acts = [action(100, Some(150), None), action(1000, Some(1010), None)];
        let l = load(
            &[
                (50, FailureClass::Reset), // before any action
                (120, FailureClass::ConnectRefused),
                (140, FailureClass::ConnectRefused),
                (349, FailureClass::Reset), // 150 + 200 grace - 1
                (350, FailureClass::Reset), // just outside
                (1005, FailureClass::Truncated),
            ],
            &[10; 20],
        );
        let none = attribute(&l, &mut acts);
        assert_eq!(none, 2);
        assert_eq!(acts[0].failed_total(), 3);
        assert_eq!(
            acts[0].failures,
            vec![
                ClassTotal {
                    class: FailureClass::ConnectRefused,
                    count: 2
                },
                ClassTotal {
                    class: FailureClass::Reset,
                    count: 1
                },
            ]
        );
        assert_eq!(acts[0].disruption_start_ns, Some(120 * MS));
        assert_eq!(acts[0].disruption_end_ns, Some(349 * MS));
        assert_eq!(acts[1].failed_total(), 1);
    }

    #[test]
    fn recovery_is_the_first_full_bucket_after_the_failures() {
        // Steady 100/bucket; the action at 450 ms fails requests until 520 ms
        // and hurts buckets 5 to 7; bucket 8 alone is good, 9 dips again.
        let mut oks = vec![100u64; 20];
        oks[0] = 30; // ramp-up, ignored
        oks[5] = 10;
        oks[6] = 85; // below 90
        oks[7] = 95;
        oks[8] = 70; // the mean of 7 and 8 is below 90
        oks[19] = 5; // partial last bucket, ignored
        let fails = [
            (460, FailureClass::ConnectRefused),
            (520, FailureClass::Reset),
        ];
        let mut acts = [action(450, Some(480), Some(700))];
        attribute(&load(&fails, &oks), &mut acts);
        assert_eq!(acts[0].recovery_ns, Some(450 * MS)); // bucket 9 at 900 ms
    }

    #[test]
    fn recovery_is_not_before_the_last_failure_nor_measured_without_failures() {
        let mut oks = vec![100u64; 20];
        oks[5] = 60; // a dip without failures: noise, not measured
        let mut acts = [action(450, Some(480), None), action(1050, None, None)];
        // The second action's failures go on into bucket 12 (full buckets).
        let fails = [(1060, FailureClass::Reset), (1230, FailureClass::Reset)];
        attribute(&load(&fails, &oks), &mut acts);
        assert_eq!(acts[0].recovery_ns, None);
        assert_eq!(acts[1].recovery_ns, Some(150 * MS)); // bucket 12 at 1200 ms
    }

    #[test]
    fn recovery_is_not_stretched_over_the_next_action() {
        let mut oks = vec![100u64; 20];
        for o in &mut oks[5..12] {
            *o = 40; // still down when the next action fires at 900 ms
        }
        let mut acts = [action(450, None, None), action(900, None, None)];
        let fails = [(460, FailureClass::Reset), (950, FailureClass::Reset)];
        attribute(&load(&fails, &oks), &mut acts);
        assert_eq!(acts[0].recovery_ns, None);
        assert_eq!(acts[1].recovery_ns, Some(300 * MS)); // bucket 12 at 1200 ms
    }

    #[test]
    fn no_recovery_when_throughput_never_comes_back() {
        let mut oks = vec![100u64; 10];
        for o in oks.iter_mut().skip(5) {
            *o = 0;
        }
        let mut acts = [action(450, None, None)];
        attribute(
            &load(&[(460, FailureClass::ConnectRefused)], &oks),
            &mut acts,
        );
        assert_eq!(acts[0].recovery_ns, None);
    }
}
