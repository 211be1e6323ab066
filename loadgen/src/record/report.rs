//! Merging the workers' [`Recorder`]s into a [`LoadReport`] plus the
//! per-bucket latency histograms for the HdrHistogram interval log.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use reloadbench_model::SCHEMA_VERSION;
use reloadbench_model::load::{
    AfterRetry, Bucket, BucketFailures, BucketHandshakes, BucketLatency, ClassCount,
    ConnectionTimes, H2Report, LatencySummary, LoadConfigSummary, LoadReport, MethodCounts,
    Percentile, RetryPolicy, ScheduleReport, TimeRow, TlsReport,
};
use reloadbench_model::outcome::{AbView, FailureClass};
use reloadbench_model::ws::StreamReport;

use super::{CLASSES, H2Stats, KindStat, Recorder, RequestSample, new_histogram};

/// The latency histogram of one time bucket (successful requests, µs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalHistogram {
    /// Bucket start, ns since the run's start.
    pub start_ns: u64,
    /// Bucket width in ns.
    pub duration_ns: u64,
    /// V2-serialized histogram; empty when the bucket had no successes.
    serialized: Vec<u8>,
}

impl IntervalHistogram {
    /// The histogram (values in µs); an empty one when the bucket had no successes.
    pub fn histogram(&self) -> Histogram<u64> {
        if self.serialized.is_empty() {
            return new_histogram();
        }
        Deserializer::new()
            .deserialize(&mut self.serialized.as_slice())
            .unwrap_or_else(|_| new_histogram())
    }
}

/// What the run knows beyond the recorders.
#[derive(Debug, Clone)]
pub(crate) struct RunFacts {
    pub(crate) config: LoadConfigSummary,
    pub(crate) bucket_ns: u64,
    pub(crate) started_mono_ns: u64,
    pub(crate) planned: u64,
    pub(crate) not_started: u64,
    pub(crate) rate_mode: bool,
    pub(crate) server_software: Option<String>,
    pub(crate) document_length: Option<u64>,
    /// The method of each request kind, by kind index.
    pub(crate) kind_methods: Vec<String>,
    /// The run's retry policy.
    pub(crate) retry: RetryPolicy,
    /// For an `https://` run: whether session resumption was offered.
    pub(crate) tls_resumption: Option<bool>,
    /// For an `--h2` run: streams per connection, and whether refused
    /// streams were retried.
    pub(crate) h2: Option<(u64, bool)>,
    /// For a `--ws` run: its WebSocket settings.
    pub(crate) ws: Option<crate::ws::WsOptions>,
    /// Whether it is a `--stream` run.
    pub(crate) stream: bool,
}

/// Everything [`build`] produces.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) report: LoadReport,
    pub(crate) intervals: Vec<IntervalHistogram>,
    pub(crate) samples: Vec<RequestSample>,
}

/// Percentiles listed in a [`LatencySummary`]: every integer 0..=100 plus 99.9 and 99.99.
pub(crate) fn summary_percentiles() -> Vec<f64> {
    let mut ps: Vec<f64> = (0..=99).map(f64::from).collect();
    ps.extend([99.9, 99.99, 100.0]);
    ps
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Auto-resizing histograms accept any value: addition cannot fail.
    let _ = into.add(from);
}

fn time_row(h: &Histogram<u64>) -> TimeRow {
    if h.is_empty() {
        return TimeRow::default();
    }
    TimeRow {
        min_us: h.min(),
        mean_us: h.mean(),
        sd_us: h.stdev(),
        median_us: h.value_at_quantile(0.5),
        max_us: h.max(),
    }
}

pub(crate) fn latency_summary(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        min_us: h.min(),
        mean_us: h.mean(),
        stdev_us: h.stdev(),
        max_us: h.max(),
        percentiles: summary_percentiles()
            .into_iter()
            .map(|p| Percentile {
                p,
                us: if p == 0.0 {
                    h.min()
                } else {
                    h.value_at_percentile(p)
                },
            })
            .collect(),
    }
}

fn bucket_latency(h: &Histogram<u64>) -> BucketLatency {
    if h.is_empty() {
        return BucketLatency::default();
    }
    BucketLatency {
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
        mean_us: h.mean(),
    }
}

/// Merges the recorders (already [`Recorder::finish`]ed) into the report.
pub(crate) fn build(recorders: Vec<Recorder>, facts: RunFacts) -> Built {
    let mut latency = new_histogram();
    let mut connect = new_histogram();
    let mut processing = new_histogram();
    let mut waiting = new_histogram();
    let mut total = new_histogram();
    let mut class_counts = [0u64; CLASSES];
    let mut classes: Vec<Option<ClassCount>> = vec![None; CLASSES];
    let mut failures = Vec::new();
    let mut samples = Vec::new();
    let mut failures_dropped = 0;
    let (mut body_bytes, mut total_bytes, mut connections) = (0, 0, 0);
    let (mut backoff, mut late_starts, mut max_lag_ns, mut elapsed_ns) = (0, 0, 0, 0);
    let mut stale_discarded = 0;
    let mut max_index = 0;
    for r in &recorders {
        add(&mut connect, &r.connect);
        add(&mut processing, &r.processing);
        add(&mut waiting, &r.waiting);
        add(&mut total, &r.total);
        for (i, s) in r.classes.iter().enumerate() {
            if s.count == 0 {
                continue;
            }
            class_counts[i] += s.count;
            let c = classes[i].get_or_insert(ClassCount {
                class: FailureClass::ALL[i],
                count: 0,
                on_reused: 0,
                first_ns: s.first_ns,
                last_ns: s.last_ns,
            });
            c.count += s.count;
            c.on_reused += s.on_reused;
            c.first_ns = c.first_ns.min(s.first_ns);
            c.last_ns = c.last_ns.max(s.last_ns);
        }
        failures.extend_from_slice(&r.failures);
        failures_dropped += r.failures_dropped;
        body_bytes += r.body_bytes;
        total_bytes += r.total_bytes;
        connections += r.connections;
        backoff += r.refused_backoff_ns;
        stale_discarded += r.stale_discarded;
        late_starts += r.late_starts;
        max_lag_ns = max_lag_ns.max(r.max_lag_ns);
        elapsed_ns = elapsed_ns.max(r.last_end_ns);
        if let Some(last) = r.closed.last() {
            max_index = max_index.max(last.index);
        }
    }
    failures.sort_by_key(|f| (f.t_ns, f.start_ns));
    for r in &recorders {
        if let Some(s) = &r.samples {
            samples.extend_from_slice(s);
        }
    }
    samples.sort_by_key(|s| s.start_ns);

    let (buckets, intervals) = merge_buckets(&recorders, facts.bucket_ns, max_index, &mut latency);
    let ok = latency.len();
    let failed: u64 = class_counts.iter().sum();
    let failed_on_reused = classes.iter().flatten().map(|c| c.on_reused).sum();
    let kinds = merge_kinds(&recorders, facts.kind_methods.len());
    let methods = per_method(&kinds, &facts.kind_methods, facts.retry);
    let failed_retryable: u64 = kinds.iter().map(|k| k.retryable).sum();
    let after_retry = (facts.retry == RetryPolicy::Both).then(|| {
        let mut all = AfterRetry::default();
        for m in &methods {
            if let Some(a) = &m.after_retry {
                add_after(&mut all, a);
            }
        }
        all
    });
    let schedule = facts.rate_mode.then_some(ScheduleReport {
        late_starts,
        max_lag_us: max_lag_ns / 1_000,
        fell_behind: late_starts > 0 || facts.not_started > 0,
    });
    let report = LoadReport {
        schema_version: SCHEMA_VERSION,
        config: facts.config,
        started_mono_ns: facts.started_mono_ns,
        elapsed_ns,
        planned: facts.planned,
        ok,
        failed,
        not_started: facts.not_started,
        failed_on_reused,
        body_bytes,
        total_bytes,
        connections,
        refused_backoff_ns: backoff,
        stale_discarded,
        server_software: facts.server_software,
        document_length: facts.document_length,
        classes: classes.into_iter().flatten().collect(),
        ab: AbView::from_counts(&class_counts),
        latency: latency_summary(&latency),
        connection_times: ConnectionTimes {
            connect: time_row(&connect),
            processing: time_row(&processing),
            waiting: time_row(&waiting),
            total: time_row(&total),
        },
        schedule,
        buckets,
        failures,
        failures_dropped,
        failed_retryable,
        failed_not_retryable: failed.saturating_sub(failed_retryable),
        retries: kinds.iter().map(|k| k.retries).sum(),
        methods,
        after_retry,
        tls: facts
            .tls_resumption
            .map(|resumption| tls_report(&recorders, resumption)),
        h2: facts
            .h2
            .map(|(streams, retry_refused)| h2_report(&recorders, streams, retry_refused)),
        ws: facts
            .ws
            .as_ref()
            .map(|o| crate::ws::record::report(&recorders, o, facts.bucket_ns)),
        stream: facts.stream.then(|| StreamReport {
            complete: ok,
            truncated: class_counts[FailureClass::Truncated.index()],
            truncated_bytes: recorders.iter().map(|r| r.truncated_bytes).sum(),
        }),
    };
    Built {
        report,
        intervals,
        samples,
    }
}

/// The TLS handshakes of all workers: each handshake ends full, resumed or
/// failed.
fn tls_report(recorders: &[Recorder], resumption: bool) -> TlsReport {
    let mut time = new_histogram();
    let (mut full, mut resumed, mut failed) = (0, 0, 0);
    let mut failed_by = reloadbench_model::load::HandshakeFailures::default();
    for r in recorders {
        add(&mut time, &r.handshake_time);
        full += r.handshakes[0];
        resumed += r.handshakes[1];
        failed += r.handshakes_failed;
        failed_by.add(&r.handshake_failures);
    }
    let protocol = recorders.iter().find_map(|r| r.tls_protocol.clone());
    TlsReport {
        protocol: protocol.as_ref().map(|p| p.0.clone()),
        cipher: protocol.map(|p| p.1),
        resumption,
        handshakes: full + resumed + failed,
        full,
        resumed,
        failed,
        handshake_time: latency_summary(&time),
        failed_by,
    }
}

/// The HTTP/2 counts of all workers.
fn h2_report(recorders: &[Recorder], streams: u64, retry_refused: bool) -> H2Report {
    let mut all = H2Stats::default();
    for r in recorders {
        all.add(&r.h2);
    }
    H2Report {
        streams,
        retry_refused,
        goaway: all.goaway_graceful + all.goaway_error,
        goaway_graceful: all.goaway_graceful,
        goaway_error: all.goaway_error,
        refused: all.refused,
        reset: all.reset_codes.values().sum(),
        reset_codes: all
            .reset_codes
            .iter()
            .map(|(code, n)| (crate::http2::code_name(*code), *n))
            .collect(),
        lost: all.lost,
        protocol_errors: all.protocol_errors,
        reconnects: all.reconnects,
    }
}

/// The workers' per-kind stats, summed kind by kind (`n` kinds at least).
fn merge_kinds(recorders: &[Recorder], n: usize) -> Vec<KindStat> {
    let mut out = vec![KindStat::default(); n];
    for r in recorders {
        if r.kinds.len() > out.len() {
            out.resize(r.kinds.len(), KindStat::default());
        }
        for (acc, k) in out.iter_mut().zip(&r.kinds) {
            acc.add(k);
        }
    }
    out
}

/// Non-zero counts by class.
fn by_class(counts: &[u64; CLASSES]) -> BTreeMap<FailureClass, u64> {
    FailureClass::ALL
        .into_iter()
        .filter(|c| counts[c.index()] > 0)
        .map(|c| (c, counts[c.index()]))
        .collect()
}

fn add_after(into: &mut AfterRetry, from: &AfterRetry) {
    into.ok += from.ok;
    into.failed += from.failed;
    for (class, n) in &from.failed_by_class {
        *into.failed_by_class.entry(*class).or_default() += n;
    }
}

/// The kinds' stats summed per method, methods in order of first appearance.
fn per_method(kinds: &[KindStat], methods: &[String], retry: RetryPolicy) -> Vec<MethodCounts> {
    let mut order: Vec<&str> = Vec::new();
    for m in methods {
        if !order.contains(&m.as_str()) {
            order.push(m);
        }
    }
    order
        .into_iter()
        .map(|method| {
            let mut sum = KindStat::default();
            for (k, _) in kinds.iter().zip(methods).filter(|(_, m)| *m == method) {
                sum.add(k);
            }
            let failed: u64 = sum.failed.iter().sum();
            MethodCounts {
                method: method.to_owned(),
                ok: sum.ok,
                failed,
                failed_retryable: sum.retryable,
                failed_not_retryable: failed.saturating_sub(sum.retryable),
                retries: sum.retries,
                failed_by_class: by_class(&sum.failed),
                after_retry: (retry == RetryPolicy::Both).then(|| AfterRetry {
                    ok: sum.after_ok,
                    failed: sum.after_failed.iter().sum(),
                    failed_by_class: by_class(&sum.after_failed),
                }),
            }
        })
        .collect()
}

/// Sums the workers' buckets index by index, merging their histograms; adds
/// every bucket's latencies to `latency` (the whole run's histogram).
fn merge_buckets(
    recorders: &[Recorder],
    bucket_ns: u64,
    max_index: u64,
    latency: &mut Histogram<u64>,
) -> (Vec<Bucket>, Vec<IntervalHistogram>) {
    let has_any = recorders.iter().any(|r| !r.closed.is_empty());
    let n = if has_any { max_index as usize + 1 } else { 0 };
    let mut oks = vec![0u64; n];
    let mut fails = vec![[0u64; CLASSES]; n];
    let mut conns = vec![0u64; n];
    let mut retryable = vec![0u64; n];
    let mut handshakes = vec![[0u64; 2]; n];
    let mut goaways = vec![0u64; n];
    let mut parts: Vec<Vec<&[u8]>> = vec![Vec::new(); n];
    for r in recorders {
        for b in &r.closed {
            let i = b.index as usize;
            oks[i] += b.ok;
            conns[i] += b.connections;
            retryable[i] += b.retryable;
            handshakes[i][0] += b.handshakes[0];
            handshakes[i][1] += b.handshakes[1];
            goaways[i] += b.goaways;
            for (acc, c) in fails[i].iter_mut().zip(b.failed) {
                *acc += c;
            }
            if !b.histogram.is_empty() {
                parts[i].push(&b.histogram);
            }
        }
    }
    let mut deserializer = Deserializer::new();
    let mut serializer = V2Serializer::new();
    let mut acc = new_histogram();
    let mut buckets = Vec::with_capacity(n);
    let mut intervals = Vec::with_capacity(n);
    for i in 0..n {
        acc.reset();
        for bytes in &parts[i] {
            let mut reader: &[u8] = bytes;
            if let Ok(h) = deserializer.deserialize::<u64, _>(&mut reader) {
                add(&mut acc, &h);
            }
        }
        add(latency, &acc);
        let mut serialized = Vec::new();
        if !acc.is_empty() && serializer.serialize(&acc, &mut serialized).is_err() {
            serialized.clear();
        }
        let start_ns = i as u64 * bucket_ns;
        intervals.push(IntervalHistogram {
            start_ns,
            duration_ns: bucket_ns,
            serialized,
        });
        buckets.push(Bucket {
            start_ns,
            ok: oks[i],
            failed: FailureClass::ALL
                .into_iter()
                .filter(|c| fails[i][c.index()] > 0)
                .map(|class| BucketFailures {
                    class,
                    count: fails[i][class.index()],
                })
                .collect(),
            latency: bucket_latency(&acc),
            connections: conns[i],
            failed_retryable: retryable[i],
            handshakes: BucketHandshakes {
                full: handshakes[i][0],
                resumed: handshakes[i][1],
            },
            goaways: goaways[i],
        });
    }
    (buckets, intervals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::OkTimes;
    use reloadbench_model::load::FailureRecord;

    fn facts() -> RunFacts {
        RunFacts {
            config: crate::LoadConfig::new("http://127.0.0.1:1/")
                .unwrap()
                .summary(),
            bucket_ns: 100,
            started_mono_ns: 7,
            planned: 5,
            not_started: 1,
            rate_mode: false,
            server_software: None,
            document_length: Some(3),
            kind_methods: vec!["GET".to_owned()],
            retry: RetryPolicy::None,
            tls_resumption: None,
            h2: None,
            ws: None,
            stream: false,
        }
    }

    #[test]
    fn merges_workers() {
        let mut a = Recorder::new(100, false);
        let mut b = Recorder::new(100, false);
        let ok = |t, lat| OkTimes {
            end_ns: t,
            latency_ns: lat,
            ..OkTimes::default()
        };
        a.connected(5);
        a.ok(&ok(10, 1_000_000));
        b.connected(8);
        b.ok(&ok(20, 3_000_000));
        b.connected(240);
        b.ok(&ok(250, 2_000_000));
        a.failure(
            FailureRecord {
                t_ns: 120,
                start_ns: 100,
                class: FailureClass::Closed,
                reused: true,
                id: None,
                retryable: true,
                kind: 0,
            },
            true,
        );
        a.finish();
        b.finish();
        let built = build(vec![a, b], facts());
        let r = built.report;
        assert_eq!((r.ok, r.failed, r.failed_on_reused), (3, 1, 1));
        assert_eq!(r.ok + r.failed + r.not_started, r.planned);
        assert_eq!(r.buckets.len(), 3);
        assert_eq!(r.buckets[0].ok, 2);
        assert_eq!(r.buckets[1].failed_total(), 1);
        assert_eq!(r.buckets[2].ok, 1);
        let conns: Vec<u64> = r.buckets.iter().map(|b| b.connections).collect();
        assert_eq!(
            conns,
            vec![2, 0, 1],
            "connections of both workers, per bucket"
        );
        assert_eq!(r.connections, 3);
        let h = built.intervals[0].histogram();
        assert_eq!(h.len(), 2);
        assert!(built.intervals[1].histogram().is_empty());
        assert_eq!(r.latency.count, 3);
        let median = r.latency.at(50.0).unwrap();
        assert!((1995..=2005).contains(&median), "{median}");
        assert_eq!(r.ab.receive, 1);
        assert_eq!(r.classes.len(), 1);
        assert_eq!((r.failed_retryable, r.failed_not_retryable), (1, 0));
        assert_eq!(r.buckets[1].failed_retryable, 1);
        let get = r.method("GET").unwrap();
        assert_eq!((get.ok, get.failed, get.failed_retryable), (3, 1, 1));
        assert_eq!(get.failed_by_class[&FailureClass::Closed], 1);
        assert!(r.after_retry.is_none());
    }
}
