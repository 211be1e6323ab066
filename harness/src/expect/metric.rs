//! The metrics an expectation can name, and how each is measured on a case.

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{ActionKind, ActionReport, CaseReport};

use super::ws::WsMetric;

/// A number measured on a finished case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// `failed`: failed requests (each counted once).
    Failed,
    /// `failed_ratio`: failed / (ok + failed).
    FailedRatio,
    /// `ok`: requests with a complete 2xx response.
    Ok,
    /// `not_started`: planned requests never started.
    NotStarted,
    /// `failed_on_reused`: failures on reused keep-alive connections.
    FailedOnReused,
    /// `failed_retryable`: failures a careful client retries (an idempotent
    /// method, on a reused connection, before any response byte).
    FailedRetryable,
    /// `failed_not_retryable`: failures no client retries by itself.
    FailedNotRetryable,
    /// `retries`: retries made on a new connection (`retry = "safe"` or `"both"`).
    Retries,
    /// `failed.<METHOD>` (`failed.POST`): failed requests of one method.
    /// Methods are upper-case and failure class keys lower-case, so neither
    /// can be read as the other.
    FailedMethod(String),
    /// `per_reload.failed.<METHOD>`: the most failures of one method
    /// attributed to one restart, reload or kill.
    PerReloadFailedMethod(String),
    /// A failure class by its key (`connect_refused`, `reset`, ...).
    Class(FailureClass),
    /// An ab counter (`ab_connect`, `ab_receive`, ...).
    Ab(AbField),
    /// `rps`: requests per second over the whole load, as ab and report.md count them:
    /// complete (ok + failed) requests / time taken.
    Rps,
    /// `ok_rps`: successful requests per second over the whole load.
    OkRps,
    /// A latency statistic of the successful requests, in ms (`p99_ms`, ...).
    Latency(LatencyStat),
    /// `per_reload.failed`: the most failures attributed to one restart, reload or kill.
    PerReloadFailed,
    /// `per_reload.<class>`: the most failures of a class attributed to one
    /// restart, reload or kill.
    PerReloadClass(FailureClass),
    /// `reload_failed`: restarts and reloads that did not succeed (e.g. rolled back).
    ReloadFailed,
    /// `reload_time_ms`: the longest time from a reload's trigger to the new process being ready.
    ReloadTimeMs,
    /// `p99_reload_ratio`: p99 latency in buckets overlapping restart/reload/kill windows
    /// divided by p99 in the other buckets (each the ok-weighted mean of per-bucket p99s).
    P99ReloadRatio,
    /// `lost_after_forwarding`: failed requests whose request the origin answered (exact,
    /// by request id; not measured when the origin's counts are unavailable).
    LostAfterForwarding,
    /// `ledger_balanced`: 1 when every equality of the three-way ledger holds, 0 when one
    /// does not (not measured when the origin's counts are unavailable).
    LedgerBalanced,
    /// `tls_failed`: failed TLS handshakes (`tls_handshake` + `tls_certificate`).
    TlsFailed,
    /// `tls_resumed_ratio`: resumed / completed handshakes over the whole load.
    TlsResumedRatio,
    /// `per_reload.tls_resumed_ratio`: the lowest resumed ratio of the
    /// handshakes in the second after a restart or reload.
    PerReloadTlsResumedRatio,
    /// `handshake_p99_ms`: p99 TLS handshake time (TCP connect done to handshake done).
    HandshakeP99Ms,
    /// `goaway`: HTTP/2 GOAWAY frames received (graceful and with an error).
    Goaway,
    /// `per_reload.goaway`: the most GOAWAYs received in one restart,
    /// reload or kill's window (see `expect::goaway`).
    PerReloadGoaway,
    /// A WebSocket count (`ws_cut`, `ws_closed`, `ws_failed`, `messages_lost`).
    Ws(WsMetric),
    /// `per_reload.<ws count>`: the most of a WebSocket count in one
    /// restart, reload or kill's window (see `expect::ws`).
    PerReloadWs(WsMetric),
    /// `reconnect_p99_ms`: p99 WebSocket reconnect time.
    ReconnectP99Ms,
    /// `old_generations_max`: the most old generations alive at once, from
    /// the proxy's events, else from the server's process tree.
    OldGenerationsMax,
    /// `messages_lost_per_close`: messages lost per WebSocket connection
    /// that ended (closed cleanly or cut): the messages a connection still
    /// awaited the echo of when it ended (see `expect::ws`).
    MessagesLostPerClose,
}

/// ab's counters, as expectation keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbField {
    /// `ab_connect`.
    Connect,
    /// `ab_receive`.
    Receive,
    /// `ab_length`.
    Length,
    /// `ab_exceptions`.
    Exceptions,
    /// `ab_write_errors`.
    WriteErrors,
    /// `ab_non_2xx`.
    Non2xx,
}

/// Latency statistics, as expectation keys (all in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyStat {
    /// `p50_ms`.
    P50,
    /// `p90_ms`.
    P90,
    /// `p99_ms`.
    P99,
    /// `p999_ms` (99.9th percentile).
    P999,
    /// `max_ms`.
    Max,
    /// `mean_ms`.
    Mean,
}

const AB: [(AbField, &str); 6] = [
    (AbField::Connect, "ab_connect"),
    (AbField::Receive, "ab_receive"),
    (AbField::Length, "ab_length"),
    (AbField::Exceptions, "ab_exceptions"),
    (AbField::WriteErrors, "ab_write_errors"),
    (AbField::Non2xx, "ab_non_2xx"),
];

const LATENCY: [(LatencyStat, &str); 6] = [
    (LatencyStat::P50, "p50_ms"),
    (LatencyStat::P90, "p90_ms"),
    (LatencyStat::P99, "p99_ms"),
    (LatencyStat::P999, "p999_ms"),
    (LatencyStat::Max, "max_ms"),
    (LatencyStat::Mean, "mean_ms"),
];

const SIMPLE: [(Metric, &str); 24] = [
    (Metric::Failed, "failed"),
    (Metric::FailedRatio, "failed_ratio"),
    (Metric::Ok, "ok"),
    (Metric::NotStarted, "not_started"),
    (Metric::FailedOnReused, "failed_on_reused"),
    (Metric::FailedRetryable, "failed_retryable"),
    (Metric::FailedNotRetryable, "failed_not_retryable"),
    (Metric::Retries, "retries"),
    (Metric::Rps, "rps"),
    (Metric::OkRps, "ok_rps"),
    (Metric::ReloadFailed, "reload_failed"),
    (Metric::ReloadTimeMs, "reload_time_ms"),
    (Metric::P99ReloadRatio, "p99_reload_ratio"),
    (Metric::LostAfterForwarding, "lost_after_forwarding"),
    (Metric::LedgerBalanced, "ledger_balanced"),
    (Metric::TlsFailed, "tls_failed"),
    (Metric::TlsResumedRatio, "tls_resumed_ratio"),
    (
        Metric::PerReloadTlsResumedRatio,
        "per_reload.tls_resumed_ratio",
    ),
    (Metric::HandshakeP99Ms, "handshake_p99_ms"),
    (Metric::Goaway, "goaway"),
    (Metric::PerReloadGoaway, "per_reload.goaway"),
    (Metric::ReconnectP99Ms, "reconnect_p99_ms"),
    (Metric::OldGenerationsMax, "old_generations_max"),
    (Metric::MessagesLostPerClose, "messages_lost_per_close"),
];

impl Metric {
    /// The key as written in scenarios.
    pub(crate) fn key(&self) -> String {
        match self {
            Metric::Class(c) => c.key().to_owned(),
            Metric::Ab(f) => lookup_name(&AB, *f).to_owned(),
            Metric::Latency(s) => lookup_name(&LATENCY, *s).to_owned(),
            Metric::PerReloadFailed => "per_reload.failed".to_owned(),
            Metric::PerReloadClass(c) => format!("per_reload.{}", c.key()),
            Metric::FailedMethod(m) => format!("failed.{m}"),
            Metric::PerReloadFailedMethod(m) => format!("per_reload.failed.{m}"),
            Metric::Ws(w) => w.key().to_owned(),
            Metric::PerReloadWs(w) => format!("per_reload.{}", w.key()),
            m => SIMPLE
                .iter()
                .find(|(x, _)| x == m)
                .map_or("?", |(_, k)| k)
                .to_owned(),
        }
    }

    /// The method a per-method metric names, if it is one.
    pub(crate) fn method(&self) -> Option<&str> {
        match self {
            Metric::FailedMethod(m) | Metric::PerReloadFailedMethod(m) => Some(m),
            _ => None,
        }
    }

    /// Parses a key (`per_reload.x` and `failed.<METHOD>` included); `None`
    /// for an unknown metric.
    pub fn from_key(key: &str) -> Option<Metric> {
        if let Some(sub) = key.strip_prefix("per_reload.") {
            if sub == "tls_resumed_ratio" {
                return Some(Metric::PerReloadTlsResumedRatio);
            }
            if sub == "goaway" {
                return Some(Metric::PerReloadGoaway);
            }
            if let Some(w) = WsMetric::from_key(sub) {
                return Some(Metric::PerReloadWs(w));
            }
            if let Some(m) = sub.strip_prefix("failed.") {
                return is_method(m).then(|| Metric::PerReloadFailedMethod(m.to_owned()));
            }
            return match sub {
                "failed" => Some(Metric::PerReloadFailed),
                other => FailureClass::from_key(other).map(Metric::PerReloadClass),
            };
        }
        if let Some(m) = key.strip_prefix("failed.") {
            return is_method(m).then(|| Metric::FailedMethod(m.to_owned()));
        }
        let find = |table: &[(Metric, &str)]| {
            table
                .iter()
                .find(|(_, k)| *k == key)
                .map(|(m, _)| m.clone())
        };
        find(&SIMPLE)
            .or_else(|| WsMetric::from_key(key).map(Metric::Ws))
            .or_else(|| FailureClass::from_key(key).map(Metric::Class))
            .or_else(|| {
                AB.iter()
                    .find(|(_, k)| *k == key)
                    .map(|(f, _)| Metric::Ab(*f))
            })
            .or_else(|| {
                LATENCY
                    .iter()
                    .find(|(_, k)| *k == key)
                    .map(|(s, _)| Metric::Latency(*s))
            })
    }

    /// Every fixed key a scenario may use, for error messages (the
    /// per-method keys, `failed.<METHOD>`, are not listed).
    pub(crate) fn all_keys() -> Vec<String> {
        let mut keys: Vec<String> = SIMPLE.iter().map(|(_, k)| (*k).to_owned()).collect();
        keys.extend(FailureClass::ALL.iter().map(|c| c.key().to_owned()));
        keys.extend(AB.iter().map(|(_, k)| (*k).to_owned()));
        keys.extend(LATENCY.iter().map(|(_, k)| (*k).to_owned()));
        keys.push("per_reload.failed".to_owned());
        keys.extend(
            FailureClass::ALL
                .iter()
                .map(|c| format!("per_reload.{}", c.key())),
        );
        keys.extend(super::ws::ALL.iter().map(|(_, k)| (*k).to_owned()));
        keys.extend(
            super::ws::ALL
                .iter()
                .map(|(_, k)| format!("per_reload.{k}")),
        );
        keys
    }

    /// True for metrics that only exist when the case has a restart, reload or kill.
    pub(crate) fn needs_reloads(&self) -> bool {
        matches!(
            self,
            Metric::PerReloadFailed
                | Metric::PerReloadClass(_)
                | Metric::PerReloadFailedMethod(_)
                | Metric::ReloadFailed
                | Metric::ReloadTimeMs
                | Metric::P99ReloadRatio
                | Metric::PerReloadTlsResumedRatio
                | Metric::PerReloadGoaway
                | Metric::PerReloadWs(_)
        )
    }

    /// The metric's value on `case`, `None` when it cannot be computed.
    pub fn measure(&self, case: &CaseReport) -> Option<f64> {
        let load = &case.load;
        let n = |v: u64| Some(v as f64);
        match self {
            Metric::Failed => n(load.failed),
            Metric::FailedRatio => {
                let done = load.ok + load.failed;
                (done > 0).then(|| load.failed as f64 / done as f64)
            }
            Metric::Ok => n(load.ok),
            Metric::NotStarted => n(load.not_started),
            Metric::FailedOnReused => n(load.failed_on_reused),
            Metric::FailedRetryable => n(load.failed_retryable),
            Metric::FailedNotRetryable => n(load.failed_not_retryable),
            Metric::Retries => n(load.retries),
            Metric::FailedMethod(m) => match load.method(m) {
                Some(c) => n(c.failed),
                // A file without per-method counts: its one method is the run's.
                None if load.methods.is_empty() && load.config.mix.is_empty() => {
                    (load.config.method == *m).then_some(load.failed as f64)
                }
                None => None,
            },
            Metric::PerReloadFailedMethod(m) => reloads(case)
                .map(|a| a.failed_of_method(load, m).map(|v| v as f64))
                .collect::<Option<Vec<f64>>>()?
                .into_iter()
                .reduce(f64::max),
            Metric::Class(c) => n(case.failed_of(*c)),
            Metric::Ab(f) => n(match f {
                AbField::Connect => load.ab.connect,
                AbField::Receive => load.ab.receive,
                AbField::Length => load.ab.length,
                AbField::Exceptions => load.ab.exceptions,
                AbField::WriteErrors => load.ab.write_errors,
                AbField::Non2xx => load.ab.non_2xx,
            }),
            Metric::Rps => per_second(load, load.ok + load.failed),
            Metric::OkRps => per_second(load, load.ok),
            Metric::Latency(s) => latency_ms(case, *s),
            Metric::PerReloadFailed => reloads(case)
                .map(|a| a.failed_total() as f64)
                .reduce(f64::max),
            Metric::PerReloadClass(c) => reloads(case)
                .map(|a| {
                    a.failures
                        .iter()
                        .filter(|f| f.class == *c)
                        .map(|f| f.count)
                        .sum::<u64>() as f64
                })
                .reduce(f64::max),
            Metric::ReloadFailed => {
                let mut it = replacements(case).peekable();
                it.peek()?;
                n(it.filter(|a| !a.ok).count() as u64)
            }
            Metric::ReloadTimeMs => replacements(case)
                .filter_map(ActionReport::reload_time_ns)
                .map(|ns| ns as f64 / 1e6)
                .reduce(f64::max),
            Metric::P99ReloadRatio => super::windows::p99_reload_ratio(case),
            Metric::LostAfterForwarding => case
                .ledger
                .as_ref()?
                .lost_after_forwarding
                .map(|n| n as f64),
            Metric::LedgerBalanced => {
                let l = case.ledger.as_ref()?;
                l.origin.as_ref()?;
                Some(if l.balanced { 1.0 } else { 0.0 })
            }
            Metric::TlsFailed => {
                load.tls.as_ref()?;
                n(case.failed_of(FailureClass::TlsHandshake)
                    + case.failed_of(FailureClass::TlsCertificate))
            }
            Metric::TlsResumedRatio => load.tls.as_ref()?.resumed_ratio(),
            Metric::PerReloadTlsResumedRatio => case.lowest_tls_resumed_ratio_after_reload(),
            Metric::HandshakeP99Ms => {
                let t = &load.tls.as_ref()?.handshake_time;
                (t.count > 0).then_some(())?;
                Some(t.at(99.0)? as f64 / 1000.0)
            }
            Metric::Goaway => n(load.h2.as_ref()?.goaway),
            Metric::PerReloadGoaway => super::goaway::per_reload(case)
                .into_iter()
                .max()
                .map(|v| v as f64),
            Metric::Ws(w) => n(w.total(load.ws.as_ref()?)),
            Metric::PerReloadWs(w) => super::ws::per_reload(case, *w)?
                .into_iter()
                .max()
                .map(|v| v as f64),
            Metric::ReconnectP99Ms => super::ws::reconnect_p99_ms(case),
            Metric::OldGenerationsMax => case.old_generations_max.map(|v| v as f64),
            Metric::MessagesLostPerClose => super::ws::lost_per_close(case),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// True for a method as the per-method metrics name it: an upper-case
/// token (`GET`, `POST`, `PURGE`), never a failure class key (lower-case).
pub(crate) fn is_method(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && s.bytes().any(|b| b.is_ascii_uppercase())
}

/// `count` requests per second of the load's time taken; `None` for a zero time.
fn per_second(load: &reloadbench_model::load::LoadReport, count: u64) -> Option<f64> {
    (load.elapsed_ns > 0).then(|| count as f64 / (load.elapsed_ns as f64 / 1e9))
}

fn lookup_name<T: PartialEq + Copy>(table: &[(T, &'static str)], v: T) -> &'static str {
    table.iter().find(|(x, _)| *x == v).map_or("?", |(_, k)| k)
}

fn latency_ms(case: &CaseReport, stat: LatencyStat) -> Option<f64> {
    let l = &case.load.latency;
    if l.count == 0 {
        return None;
    }
    let us = match stat {
        LatencyStat::P50 => l.at(50.0)? as f64,
        LatencyStat::P90 => l.at(90.0)? as f64,
        LatencyStat::P99 => l.at(99.0)? as f64,
        LatencyStat::P999 => l.at(99.9)? as f64,
        LatencyStat::Max => l.max_us as f64,
        LatencyStat::Mean => l.mean_us,
    };
    Some(us / 1000.0)
}

/// Actions whose failures count per reload: restarts, reloads, kills.
pub(super) fn reloads(case: &CaseReport) -> impl Iterator<Item = &ActionReport> {
    case.actions.iter().filter(|a| {
        matches!(
            a.kind,
            ActionKind::Restart | ActionKind::Reload | ActionKind::Kill
        )
    })
}

/// Actions that replace the process and can fail: restarts and reloads.
fn replacements(case: &CaseReport) -> impl Iterator<Item = &ActionReport> {
    case.actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Restart | ActionKind::Reload))
}
