//! The load generator's result: what `loadgen --json` writes and what the
//! harness keeps per case.
//!
//! Times inside a [`LoadReport`] are nanoseconds relative to
//! [`LoadReport::started_mono_ns`] unless a field says otherwise; add the base
//! to compare them with proxy events.

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
