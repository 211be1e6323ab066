//! The load generator's result: what `loadgen --json` writes and what the
//! harness keeps per case.
//!
//! Times inside a [`LoadReport`] are nanoseconds relative to
//! [`LoadReport::started_mono_ns`] unless a field says otherwise; add the base
//! to compare them with proxy events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::outcome::{AbView, FailureClass};

/// The complete result of one load run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// [`crate::SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// What was run.
    pub config: LoadConfigSummary,
    /// Monotonic clock reading when the first request was due.
    pub started_mono_ns: u64,
    /// Time from start until the last request finished.
    pub elapsed_ns: u64,
    /// Requests the run intended to make.
    pub planned: u64,
    /// Requests that got a complete 2xx response.
    pub ok: u64,
    /// Requests that failed (each counted once, in exactly one class).
    pub failed: u64,
    /// Planned requests that were never started (duration ran out, or a rate
    /// run fell behind). `planned = ok + failed + not_started` always holds.
    pub not_started: u64,
    /// Of the failed requests, those sent on a reused keep-alive connection.
    pub failed_on_reused: u64,
    /// Response body bytes received (successful requests).
    pub body_bytes: u64,
    /// Bytes received in total, heads included.
    pub total_bytes: u64,
    /// TCP connections opened (successful connects).
    pub connections: u64,
    /// Total time clients spent backing off after refused connects, summed over clients.
    pub refused_backoff_ns: u64,
    /// Value of the `Server` header of the first response, if any.
    pub server_software: Option<String>,
    /// Body length of the first successful response.
    pub document_length: Option<u64>,
    /// Failure counts per class; classes that never happened are omitted.
    pub classes: Vec<ClassCount>,
    /// The ab counters, each failure counted once.
    pub ab: AbView,
    /// Latency of successful requests (from the intended start in rate mode).
    pub latency: LatencySummary,
    /// ab's "Connection Times (ms)" table, successful requests only.
    pub connection_times: ConnectionTimes,
    /// Set in rate mode: how far the run fell behind its schedule.
    pub schedule: Option<ScheduleReport>,
    /// Fixed-width time buckets covering the run, in order (written as
    /// columns, see [`crate::bucket_columns`]).
    #[serde(with = "crate::bucket_columns")]
    pub buckets: Vec<Bucket>,
    /// Every failed request with its time, in time order (up to [`LoadReport::failures_dropped`];
    /// written as columns, see [`crate::failure_columns`]).
    #[serde(with = "crate::failure_columns")]
    pub failures: Vec<FailureRecord>,
    /// Failures not listed in [`LoadReport::failures`] because the list hit its cap.
    pub failures_dropped: u64,
    /// Of the failed requests, those a careful client retries
    /// ([`crate::outcome::is_retryable`]: an idempotent method, on a reused
    /// connection, no response byte). 0 in files written before schema 5.
    #[serde(default)]
    pub failed_retryable: u64,
    /// Failed requests that no client retries by itself:
    /// `failed = failed_retryable + failed_not_retryable`. 0 in files
    /// written before schema 5.
    #[serde(default)]
    pub failed_not_retryable: u64,
    /// Retries made on a new connection ([`RetryPolicy::Safe`] and
    /// [`RetryPolicy::Both`]); 0 without retries.
    #[serde(default)]
    pub retries: u64,
    /// Idle keep-alive connections a careful client ([`RetryPolicy::Safe`])
    /// found closed by the server before reusing them, and replaced by a new
    /// connection instead of sending on them; 0 without that policy.
    #[serde(default)]
    pub stale_discarded: u64,
    /// Outcomes per method, in the order the methods first appear in the
    /// request mix; they add up to `ok` and `failed`. Empty in files written
    /// before schema 5.
    #[serde(default)]
    pub methods: Vec<MethodCounts>,
    /// With [`RetryPolicy::Both`]: what a careful client felt, the outcome
    /// of each request after its retry (the fields above are the raw,
    /// first-attempt outcomes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_retry: Option<AfterRetry>,
    /// The TLS handshakes of an `https://` run; `None` for a cleartext run
    /// (and in files written before TLS was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// The HTTP/2 connections and streams of an `--h2` run; `None` for an
    /// HTTP/1.1 run (and in files written before HTTP/2 was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2: Option<H2Report>,
    /// The WebSocket connections and messages of a `--ws` run; `None`
    /// otherwise (and in files written before WebSockets were measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws: Option<crate::ws::WsReport>,
    /// The streamed responses of a `--stream` run; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<crate::ws::StreamReport>,
}

/// The HTTP/2 side of an `--h2` run: GOAWAYs received and what became of the
/// streams.
///
/// Stream counts are per attempt: with `retry_refused`, a refused stream and
/// its retry are two streams, and the refused one counts in `refused` while
/// the request's outcome is its retry's. Without retries, `refused`, `reset`,
/// `lost` and `protocol_errors` equal the requests failed with the classes
/// `goaway_refused`, `stream_reset`, `stream_lost` and `protocol_error`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct H2Report {
    /// Concurrent streams per connection (`--streams`).
    pub streams: u64,
    /// Whether streams refused by a GOAWAY were retried once on a new
    /// connection (`--retry-refused`; the retries count in
    /// [`LoadReport::retries`]).
    pub retry_refused: bool,
    /// GOAWAY frames received: `goaway = goaway_graceful + goaway_error`.
    pub goaway: u64,
    /// Of them, with the error code NO_ERROR.
    pub goaway_graceful: u64,
    /// Of them, with any other error code.
    pub goaway_error: u64,
    /// Streams refused by a GOAWAY (id above its last-stream-id).
    pub refused: u64,
    /// Streams reset by the server (RST_STREAM).
    pub reset: u64,
    /// Of them, per error code (`CANCEL`, `REFUSED_STREAM`, ..., or the
    /// number of an unknown code), codes that never happened omitted.
    pub reset_codes: BTreeMap<String, u64>,
    /// Streams open when their connection was lost without a GOAWAY
    /// refusing them.
    pub lost: u64,
    /// Streams failed by a protocol error of the server.
    pub protocol_errors: u64,
    /// Connections opened to replace one that had received a GOAWAY or
    /// had ended (never a failure by itself; included in
    /// [`LoadReport::connections`]).
    pub reconnects: u64,
}

impl H2Report {
    /// `GOAWAY received: N (graceful G, with error E)`, as loadgen prints it.
    pub fn goaway_line(&self) -> String {
        format!(
            "GOAWAY received:        {} (graceful {}, with error {})",
            self.goaway, self.goaway_graceful, self.goaway_error
        )
    }

    /// `Streams reset: N (CODE n, ...)`, as loadgen prints it.
    pub fn reset_line(&self) -> String {
        let codes: Vec<String> = self
            .reset_codes
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        if codes.is_empty() {
            format!("Streams reset:          {}", self.reset)
        } else {
            format!(
                "Streams reset:          {} ({})",
                self.reset,
                codes.join(", ")
            )
        }
    }
}

/// The TLS handshakes of a run (`https://` targets only).
///
/// Every new connection makes one handshake, which ends `full`, `resumed`
/// or `failed`: `handshakes = full + resumed + failed`, and `failed` equals
/// the requests failed with a TLS class ([`FailureClass::is_tls`]), except
/// with [`RetryPolicy::Both`], where the failed handshake of a retry counts
/// in [`LoadReport::after_retry`] and here, not in the raw classes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsReport {
    /// The protocol version of the first completed handshake, e.g. `TLSv1.3`.
    pub protocol: Option<String>,
    /// Its cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: Option<String>,
    /// Whether the client offered session resumption (off with `--no-resume`).
    pub resumption: bool,
    /// Handshakes begun (TCP connects that succeeded).
    pub handshakes: u64,
    /// Completed full handshakes.
    pub full: u64,
    /// Completed resumed (abbreviated) handshakes.
    pub resumed: u64,
    /// Failed handshakes (`tls_handshake` and `tls_certificate`).
    pub failed: u64,
    /// Handshake time of the completed handshakes, TCP connect done to
    /// handshake done.
    pub handshake_time: LatencySummary,
    /// How the `tls_handshake` failures ended (a detail of that one class:
    /// each failed handshake counted once; absent when there were none).
    #[serde(default, skip_serializing_if = "HandshakeFailures::is_empty")]
    pub failed_by: HandshakeFailures,
}

/// How TLS handshakes of the `tls_handshake` class failed: each one counted
/// once, under the first thing that ended it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeFailures {
    /// Alerts received from the server, by description (RFC 8446 names,
    /// e.g. `handshake_failure`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub alerts: std::collections::BTreeMap<String, u64>,
    /// Connection reset during the handshake.
    #[serde(default)]
    pub reset: u64,
    /// The server closed the connection (EOF) during the handshake.
    #[serde(default)]
    pub eof: u64,
    /// Not done within the request timeout.
    #[serde(default)]
    pub timeout: u64,
    /// Anything else (garbage from the server, a protocol error).
    #[serde(default)]
    pub other: u64,
}

impl HandshakeFailures {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// All failures counted.
    pub fn total(&self) -> u64 {
        self.alerts.values().sum::<u64>() + self.reset + self.eof + self.timeout + self.other
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &HandshakeFailures) {
        for (name, n) in &other.alerts {
            *self.alerts.entry(name.clone()).or_default() += n;
        }
        self.reset += other.reset;
        self.eof += other.eof;
        self.timeout += other.timeout;
        self.other += other.other;
    }
}

impl TlsReport {
    /// The ab-style line that counts the handshakes, as loadgen prints it and
    /// the report's ab view repeats it:
    /// `TLS handshakes:         N (full F, resumed R, failed X)`.
    pub fn handshakes_line(&self) -> String {
        let off = if self.resumption {
            ""
        } else {
            " [resumption off]"
        };
        format!(
            "TLS handshakes:         {} (full {}, resumed {}, failed {}){off}",
            self.handshakes, self.full, self.resumed, self.failed
        )
    }

    /// The ab-style line under [`TlsReport::handshakes_line`] that details the
    /// `tls_handshake` failures, when there were any:
    /// `Handshakes failed by:   alert 2 (handshake_failure 2), reset 1, eof 0, timeout 0, other 0`.
    pub fn failed_by_line(&self) -> Option<String> {
        let f = &self.failed_by;
        if f.is_empty() {
            return None;
        }
        let alerts: u64 = f.alerts.values().sum();
        let names: Vec<String> = f.alerts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let detail = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        Some(format!(
            "Handshakes failed by:   alert {alerts}{detail}, reset {}, eof {}, timeout {}, other {}",
            f.reset, f.eof, f.timeout, f.other
        ))
    }

    /// `resumed / handshakes` (full + resumed + failed: a handshake that failed
    /// resumed nothing), `None` without a handshake.
    pub fn resumed_ratio(&self) -> Option<f64> {
        let all = self.full + self.resumed + self.failed;
        (all > 0).then(|| self.resumed as f64 / all as f64)
    }
}

impl LoadReport {
    /// The counts of `method` (exact, case-sensitive), if the run sent it.
    pub fn method(&self, method: &str) -> Option<&MethodCounts> {
        self.methods.iter().find(|m| m.method == method)
    }

    /// The method of a failed request: that of its request kind
    /// ([`FailureRecord::kind`] in [`LoadConfigSummary::mix`]), or the run's
    /// one method.
    pub fn failure_method(&self, f: &FailureRecord) -> &str {
        self.config
            .mix
            .get(usize::from(f.kind))
            .map_or(self.config.method.as_str(), |k| k.method.as_str())
    }
}

/// How failed requests are retried (`loadgen --retry-safe`, scenario `retry`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryPolicy {
    /// Never retry: measure the server (the default).
    #[default]
    None,
    /// Retry a retryable failure once on a new connection, as Go's
    /// `net/http` and browsers do; the request's outcome is the retry's. And,
    /// as they do, never send on an idle keep-alive connection the server
    /// has closed ([`LoadReport::stale_discarded`]).
    Safe,
    /// Retry as with `Safe`, but report the raw first-attempt outcomes and,
    /// in [`LoadReport::after_retry`], the outcomes after the retries. Idle
    /// connections are reused unchecked, as without a policy, so that the raw
    /// outcomes are a naive client's.
    Both,
}

impl RetryPolicy {
    /// Whether retryable failures are retried.
    pub fn retries(self) -> bool {
        self != RetryPolicy::None
    }

    /// Stable key: `none`, `safe`, `both`.
    pub fn key(self) -> &'static str {
        match self {
            RetryPolicy::None => "none",
            RetryPolicy::Safe => "safe",
            RetryPolicy::Both => "both",
        }
    }

    /// Parses a [`RetryPolicy::key`].
    pub fn from_key(key: &str) -> Option<RetryPolicy> {
        [RetryPolicy::None, RetryPolicy::Safe, RetryPolicy::Both]
            .into_iter()
            .find(|p| p.key() == key)
    }

    /// For serde's `skip_serializing_if`.
    fn is_none(&self) -> bool {
        *self == RetryPolicy::None
    }
}

/// The outcomes of the requests of one method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodCounts {
    /// The method, as sent (e.g. `GET`, `POST`).
    pub method: String,
    /// Requests that got a complete 2xx response.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Of them, those a careful client retries.
    pub failed_retryable: u64,
    /// Of them, those no client retries.
    pub failed_not_retryable: u64,
    /// Retries made for requests of this method.
    pub retries: u64,
    /// Failures per class (classes that never happened are omitted).
    pub failed_by_class: BTreeMap<FailureClass, u64>,
    /// With [`RetryPolicy::Both`]: the outcomes after the retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_retry: Option<AfterRetry>,
}

/// Outcomes after retrying each retryable failure once ([`RetryPolicy::Both`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterRetry {
    /// Requests that ended with a complete 2xx response, at once or on their retry.
    pub ok: u64,
    /// Requests that still failed (`ok + failed` equals the raw `ok + failed`).
    pub failed: u64,
    /// Failures per class (classes that never happened are omitted).
    pub failed_by_class: BTreeMap<FailureClass, u64>,
}

/// One kind of request of a mix, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestKindSummary {
    /// Relative weight in the mix.
    pub weight: u32,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Body bytes sent with each request (0 without a body).
    pub body_bytes: u64,
}

/// The settings of a load run, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadConfigSummary {
    /// Target URL.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Concurrent clients.
    pub concurrency: u64,
    /// Request count limit (`-n`), if any.
    pub requests: Option<u64>,
    /// Duration limit (`-t`) in ms, if any.
    pub duration_ms: Option<u64>,
    /// Constant rate in requests per second (`--rate`), if open loop.
    pub rate: Option<f64>,
    /// Whether connections are kept alive (`-k`).
    pub keep_alive: bool,
    /// Per-request timeout in ms (`-s`).
    pub timeout_ms: u64,
    /// Width of a time bucket in ms.
    pub bucket_ms: u64,
    /// The request kinds of a weighted mix, in order ([`FailureRecord::kind`]
    /// indexes it); empty when every request is the same `method` on the URL's path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<RequestKindSummary>,
    /// How retryable failures were retried (absent: never).
    #[serde(default, skip_serializing_if = "RetryPolicy::is_none")]
    pub retry: RetryPolicy,
    /// Pause of each client between its requests, in ms (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time_ms: Option<u64>,
    /// The TLS options of an `https://` run (absent: cleartext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSummary>,
}

/// The TLS options of an `https://` load run, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSummary {
    /// The one version offered (`"1.2"` or `"1.3"`, `--tls-version`); absent: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The server's certificate is not verified (`--insecure`).
    pub insecure: bool,
    /// The CA file it is verified against (`--cacert`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Sessions resumed from one store shared by the run's connections (off with
    /// `--no-resume`).
    pub resume: bool,
}

impl TlsSummary {
    /// In words, e.g. `TLS 1.2 and 1.3, certificate checked against ca.pem, resumption on`.
    pub fn describe(&self) -> String {
        let version = match &self.version {
            Some(v) => format!("TLS {v} only"),
            None => "TLS 1.2 and 1.3".to_owned(),
        };
        let cert = match (&self.ca_file, self.insecure) {
            (_, true) => "certificate not verified (insecure)".to_owned(),
            (Some(ca), false) => format!("certificate checked against {ca}"),
            (None, false) => "certificate checked".to_owned(),
        };
        let resume = if self.resume { "on" } else { "off" };
        format!("{version}, {cert}, resumption {resume}")
    }
}

impl LoadConfigSummary {
    /// Width of a time bucket in ns: `bucket_ms`, taken as at least 1 ms
    /// (and at most what fits in ns), times 10^6.
    pub fn bucket_ns(&self) -> u64 {
        self.bucket_ms.clamp(1, u64::MAX / 1_000_000) * 1_000_000
    }
}

/// Count of one failure class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// The class.
    pub class: FailureClass,
    /// How many requests failed this way.
    pub count: u64,
    /// How many of them were on a reused keep-alive connection.
    pub on_reused: u64,
    /// First occurrence, ns since start.
    pub first_ns: u64,
    /// Last occurrence, ns since start.
    pub last_ns: u64,
}

/// One failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// When the failure was observed, ns since start.
    pub t_ns: u64,
    /// When the request started (intended start in rate mode), ns since start.
    pub start_ns: u64,
    /// How it failed.
    pub class: FailureClass,
    /// Whether it was sent on a reused keep-alive connection.
    pub reused: bool,
    /// The request's id (its index in the run, sent as
    /// [`crate::ledger::ID_HEADER`]), when request ids were on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Whether a careful client retries it ([`crate::outcome::is_retryable`]);
    /// false in files written before schema 5.
    #[serde(default)]
    pub retryable: bool,
    /// Its request kind: an index into [`LoadConfigSummary::mix`] (0 without a mix).
    #[serde(default)]
    pub kind: u16,
}

/// Latency statistics in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencySummary {
    /// Number of recorded values.
    pub count: u64,
    /// Minimum.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub stdev_us: f64,
    /// Maximum.
    pub max_us: u64,
    /// Percentiles as (percentile 0..=100, value in µs), ascending.
    pub percentiles: Vec<Percentile>,
}

impl LatencySummary {
    /// The value at percentile `p` (0..=100) if it was reported.
    pub fn at(&self, p: f64) -> Option<u64> {
        self.percentiles
            .iter()
            .find(|q| (q.p - p).abs() < 1e-9)
            .map(|q| q.us)
    }
}

/// One percentile of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentile {
    /// Percentile, 0..=100.
    pub p: f64,
    /// Latency at that percentile in µs.
    pub us: u64,
}

/// ab's "Connection Times (ms)" rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConnectionTimes {
    /// Time to establish the connection.
    pub connect: TimeRow,
    /// Time from connected to the last byte of the response.
    pub processing: TimeRow,
    /// Time from the request written to the first byte of the response.
    pub waiting: TimeRow,
    /// Connect + processing.
    pub total: TimeRow,
}

/// min / mean / sd / median / max of one phase, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct TimeRow {
    /// Minimum.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub sd_us: f64,
    /// Median.
    pub median_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// How an open-loop run kept to its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleReport {
    /// Requests that started later than intended by more than one millisecond.
    pub late_starts: u64,
    /// Largest start delay, in µs.
    pub max_lag_us: u64,
    /// Whether the run fell behind (late starts or not-started requests).
    pub fell_behind: bool,
}

/// Counters and latency for one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket start, ns since the run's start.
    pub start_ns: u64,
    /// Successful requests that completed in this bucket.
    pub ok: u64,
    /// Failed requests per class that completed in this bucket (non-zero only).
    pub failed: Vec<BucketFailures>,
    /// Latency of the successful requests of this bucket.
    pub latency: BucketLatency,
    /// TCP connections opened (successful connects) in this bucket; 0 in
    /// files written before it was counted.
    #[serde(default)]
    pub connections: u64,
    /// Of the failures of this bucket, those a careful client retries; 0 in
    /// files written before schema 5.
    #[serde(default)]
    pub failed_retryable: u64,
    /// TLS handshakes completed in this bucket (all 0 for a cleartext run,
    /// and in files written before TLS was measured).
    #[serde(default)]
    pub handshakes: BucketHandshakes,
    /// HTTP/2 GOAWAY frames received in this bucket (0 for an HTTP/1.1
    /// run, and in files written before HTTP/2 was measured).
    #[serde(default)]
    pub goaways: u64,
}

/// The TLS handshakes completed in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketHandshakes {
    /// Full handshakes.
    pub full: u64,
    /// Resumed handshakes.
    pub resumed: u64,
}

impl Bucket {
    /// Total failures in this bucket.
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().map(|f| f.count).sum()
    }
}

/// Failures of one class in a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketFailures {
    /// The class.
    pub class: FailureClass,
    /// How many.
    pub count: u64,
}

/// Latency percentiles of one bucket, in µs (zero when the bucket has no successes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct BucketLatency {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Maximum.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bucket_ms: u64) -> LoadConfigSummary {
        LoadConfigSummary {
            url: "http://127.0.0.1:1/".into(),
            method: "GET".into(),
            concurrency: 1,
            requests: None,
            duration_ms: None,
            rate: None,
            keep_alive: true,
            timeout_ms: 1000,
            bucket_ms,
            mix: Vec::new(),
            retry: RetryPolicy::None,
            think_time_ms: None,
            tls: None,
        }
    }

    #[test]
    fn bucket_ns_is_the_width_in_ns_at_least_1ms_and_never_overflows() {
        assert_eq!(config(100).bucket_ns(), 100_000_000);
        assert_eq!(config(3_600_000).bucket_ns(), 3_600_000_000_000);
        assert_eq!(config(0).bucket_ns(), 1_000_000);
        assert_eq!(
            config(u64::MAX).bucket_ns(),
            u64::MAX / 1_000_000 * 1_000_000
        );
    }
}
