//! The three-way ledger: what the client (loadgen), the proxy (refproxy) and the
//! origin each counted for one case, and whether those counts agree.
//!
//! Three kinds of data cross process boundaries here:
//! - [`OriginLedger`]: the file the built-in origin writes when it stops
//!   (`reloadbench origin --ledger PATH`): what it received and answered, per
//!   millisecond of the shared monotonic clock, and the request ids it answered;
//! - [`ProxyCounters`]: what one refproxy generation counted, carried by the
//!   `counters` event ([`crate::event::EventKind::Counters`]);
//! - [`Ledger`]: the reconciliation the harness puts in `results.json`
//!   ([`crate::run::CaseReport::ledger`]).
//!
//! Request ids: the load generator sends `x-reloadbench-id: <n>` ([`ID_HEADER`]) with
//! every request, `n` being the request's index in the run (0, 1, 2, ...), and records
//! the id of every failed request; the origin records the ids it answered. A failed
//! request whose id the origin answered was *lost after forwarding*: the origin did its
//! part, and the answer was lost on the way back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The request id header the load generator sends and the origin reads.
pub const ID_HEADER: &str = "x-reloadbench-id";

/// Width of the origin's time slots, in ns (1 ms): fine enough to be counted again into
/// the load's buckets (100 ms by default) with at most 1 ms of error at a bucket edge.
pub const ORIGIN_SLOT_NS: u64 = 1_000_000;

/// What the built-in origin counted from its start to its stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OriginLedger {
    /// Requests whose head the origin read (each request counted once, when read).
    pub received: u64,
    /// Responses the origin produced and handed to its connection for writing.
    pub answered: u64,
    /// Of the answered requests, those without a (valid) [`ID_HEADER`].
    pub answered_without_id: u64,
    /// Ids answered more than once (each extra answer counted once): a request the proxy
    /// sent twice.
    pub duplicate_ids: u64,
    /// The distinct request ids answered, as sorted half-open ranges `[start, end)`.
    pub answered_ids: Vec<[u64; 2]>,
    /// Monotonic time (ns) at which slot 0 of [`OriginLedger::answered_per_slot`] starts;
    /// a multiple of [`ORIGIN_SLOT_NS`].
    pub slots_start_mono_ns: u64,
    /// Answers per [`ORIGIN_SLOT_NS`]-wide slot, from `slots_start_mono_ns` on.
    pub answered_per_slot: Vec<u64>,
    /// Answers per request method (`GET`, `POST`, ...); empty in files written
    /// before the origin counted methods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answered_by_method: BTreeMap<String, u64>,
    /// Request body bytes read (of the answered requests; 0 when none had a body).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub body_bytes_received: u64,
    /// The WebSockets of `/ws` (not in the request counts above); `None` in
    /// files written before the origin counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws: Option<crate::ws::OriginWsLedger>,
    /// The streamed responses of `/stream` (not in the request counts
    /// above); `None` in files written before the origin counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<crate::ws::OriginStreamLedger>,
}

/// For serde's `skip_serializing_if`.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl OriginLedger {
    /// How many distinct ids were answered.
    pub fn distinct_ids(&self) -> u64 {
        self.answered_ids.iter().map(|[a, b]| b - a).sum()
    }

    /// Whether `id` was answered (`answered_ids` is sorted).
    pub fn answered_id(&self, id: u64) -> bool {
        let i = self.answered_ids.partition_point(|r| r[1] <= id);
        self.answered_ids.get(i).is_some_and(|r| r[0] <= id)
    }

    /// The ranges of a sorted, deduplicated list of ids.
    pub fn ranges_of(sorted_ids: &[u64]) -> Vec<[u64; 2]> {
        let mut out: Vec<[u64; 2]> = Vec::new();
        for &id in sorted_ids {
            // `u64::MAX` has no half-open range: left out, so the ledger's
            // `origin_repeats_within_retries` check shows it.
            let Some(next) = id.checked_add(1) else {
                continue;
            };
            match out.last_mut() {
                Some(r) if r[1] == id => r[1] = next,
                _ => out.push([id, next]),
            }
        }
        out
    }
}

/// What one refproxy generation (one process serving clients) counted, from its start to
/// its exit (or until it gave up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProxyCounters {
    /// Client connections accepted.
    pub accepted: u64,
    /// Requests whose head was written to an origin connection (a request sent again on
    /// a fresh connection after a reused one broke counts twice).
    pub forwarded: u64,
    /// Responses relayed to the client in full.
    pub completed: u64,
    /// Exchanges that broke after the response began, or whose client went away.
    pub aborted: u64,
    /// Requests answered by the proxy itself with an error status, by kind
    /// (`connect`, `no_slot`, `broken`, `bad_response`, `bad_response_body`, `timeout`,
    /// `bad_body`, `client_stalled`, `bad_request`, `tunnels_full`), non-zero only; and
    /// `slow_client`, responses refproxy cut because the client took them below its
    /// minimum send rate (not an answer, and not counted in `aborted`); and
    /// `premature_reset`, HTTP/2 connections (not requests) refproxy closed for resetting
    /// too many streams soon after they were forwarded (their streams count in `aborted`);
    /// and `address_premature_reset`, new HTTP/2 connections refused because their client
    /// address ended too many forwarded streams prematurely across its connections.
    pub errors: BTreeMap<String, u64>,
}

impl ProxyCounters {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &ProxyCounters) {
        self.accepted += other.accepted;
        self.forwarded += other.forwarded;
        self.completed += other.completed;
        self.aborted += other.aborted;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    /// All error answers.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The client's side of the ledger (from the load report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClientSide {
    /// Requests with a complete 2xx response.
    pub ok: u64,
    /// Failed requests.
    pub failed: u64,
    /// Planned requests never started.
    pub not_started: u64,
    /// Whether requests carried [`ID_HEADER`] and every failure was listed with its id
    /// (needed for an exact lost-after-forwarding count).
    pub ids: bool,
}

/// The proxy's side: the sum over its generations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProxySide {
    /// Sum of the counters of every generation that reported.
    pub total: ProxyCounters,
    /// Each reporting generation's own counters, by generation (several entries for one
    /// generation number are summed: a master-worker generation's workers).
    pub generations: BTreeMap<u64, ProxyCounters>,
    /// Generations that served but never reported (killed, or crashed): the totals miss
    /// their share and are not checked.
    pub missing: Vec<u64>,
    /// Generations a process reported more than once (the first report is kept; the
    /// totals are not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported_twice: Vec<u64>,
}

/// The origin's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OriginSide {
    /// Requests read.
    pub received: u64,
    /// Responses produced.
    pub answered: u64,
    /// Distinct request ids answered.
    pub answered_ids: u64,
    /// Answers without an id.
    pub answered_without_id: u64,
    /// Extra answers to an id already answered.
    pub duplicate_ids: u64,
    /// Answers per load bucket (same buckets as the load report's, 1 ms error at edges).
    pub answered_per_bucket: Vec<u64>,
    /// Answers before the load's first bucket or after its last one.
    pub answered_outside_load: u64,
    /// Answers per request method, as the origin counted them (empty when it
    /// did not count methods).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answered_by_method: BTreeMap<String, u64>,
    /// Request body bytes the origin read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub body_bytes_received: u64,
}

/// One equality of the ledger, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCheck {
    /// Short stable name, e.g. `client_ok_vs_origin`.
    pub name: String,
    /// The equality in words, e.g. `client ok = origin answered ids - lost after forwarding`.
    pub equality: String,
    /// Value of the left side.
    pub left: u64,
    /// Value of the right side.
    pub right: u64,
    /// Whether `left == right`.
    pub holds: bool,
}

impl LedgerCheck {
    /// `left - right` (what broke, and by how much).
    pub fn difference(&self) -> i128 {
        i128::from(self.left) - i128::from(self.right)
    }
}

/// The reconciled ledger of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ledger {
    /// The client's counts.
    pub client: ClientSide,
    /// The proxy's counts; `None` when the system under test does not report them
    /// (HAProxy, nginx, a command).
    pub proxy: Option<ProxySide>,
    /// The origin's counts; `None` when unavailable (see `origin_unavailable`).
    pub origin: Option<OriginSide>,
    /// Why the origin's counts are unavailable (killed before it wrote them, a command
    /// origin, ...).
    pub origin_unavailable: Option<String>,
    /// Failed requests whose id the origin answered; `None` when it cannot be counted
    /// exactly (no origin counts, no request ids, or failures not all listed).
    pub lost_after_forwarding: Option<u64>,
    /// Every equality that could be checked.
    pub checks: Vec<LedgerCheck>,
    /// Equalities that could not be checked, and why.
    pub unchecked: Vec<String>,
    /// True when every check holds and at least one was made.
    pub balanced: bool,
}

impl Ledger {
    /// The checks that do not hold.
    pub fn broken(&self) -> impl Iterator<Item = &LedgerCheck> {
        self.checks.iter().filter(|c| !c.holds)
    }

    /// The ledger in one line, e.g. `client ok 99,838 + failed 162 · proxy forwarded
    /// 99,838 · origin answered 99,838 · failed requests that reached the origin: 0`.
    pub fn summary(&self) -> String {
        let c = &self.client;
        let mut parts = vec![format!(
            "client ok {} + failed {}{}",
            thousands(c.ok),
            thousands(c.failed),
            if c.not_started > 0 {
                format!(" + not started {}", thousands(c.not_started))
            } else {
                String::new()
            }
        )];
        parts.push(match &self.proxy {
            None => "proxy not reported".to_owned(),
            Some(p) => format!(
                "proxy forwarded {} completed {}{}",
                thousands(p.total.forwarded),
                thousands(p.total.completed),
                if p.missing.is_empty() {
                    String::new()
                } else {
                    format!(" ({} generation(s) never reported)", p.missing.len())
                }
            ),
        });
        parts.push(match &self.origin {
            None => "origin count unavailable".to_owned(),
            Some(o) => format!("origin answered {}", thousands(o.answered)),
        });
        parts.push(format!(
            "failed requests that reached the origin: {}",
            self.lost_after_forwarding
                .map_or_else(|| "unknown".to_owned(), thousands)
        ));
        parts.join(" · ")
    }
}

/// `n` with a comma between groups of three digits.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_exactly_the_ids() {
        let l = OriginLedger {
            answered_ids: OriginLedger::ranges_of(&[0, 1, 2, 5, 7, 8]),
            ..OriginLedger::default()
        };
        assert_eq!(l.answered_ids, vec![[0, 3], [5, 6], [7, 9]]);
        assert_eq!(l.distinct_ids(), 6);
        let hits: Vec<u64> = (0..10).filter(|&i| l.answered_id(i)).collect();
        assert_eq!(hits, vec![0, 1, 2, 5, 7, 8]);
        // The largest id has no half-open range: left out, never wrapped.
        let top = OriginLedger::ranges_of(&[u64::MAX - 1, u64::MAX]);
        assert_eq!(top, vec![[u64::MAX - 1, u64::MAX]]);
    }

    #[test]
    fn summary_reads_as_one_line_with_thousands() {
        let mut l = Ledger {
            client: ClientSide {
                ok: 99_838,
                failed: 162,
                not_started: 0,
                ids: true,
            },
            ..Ledger::default()
        };
        assert_eq!(
            l.summary(),
            "client ok 99,838 + failed 162 · proxy not reported · origin count unavailable · \
             failed requests that reached the origin: unknown"
        );
        l.origin = Some(OriginSide {
            answered: 99_838,
            ..OriginSide::default()
        });
        l.lost_after_forwarding = Some(0);
        assert!(
            l.summary()
                .ends_with("origin answered 99,838 · failed requests that reached the origin: 0")
        );
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn proxy_counters_add_up_by_kind() {
        let mut a = ProxyCounters {
            accepted: 1,
            forwarded: 2,
            completed: 3,
            aborted: 4,
            errors: BTreeMap::from([("connect".into(), 1)]),
        };
        a.add(&a.clone());
        assert_eq!(
            (a.accepted, a.forwarded, a.completed, a.aborted),
            (2, 4, 6, 8)
        );
        assert_eq!(a.errors_total(), 2);
    }
}
