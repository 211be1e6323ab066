//! Per-worker recording of outcomes: cheap counters and HdrHistograms, kept
//! in fixed-width time buckets so memory stays bounded however long the run.
//!
//! Each worker thread owns one [`Recorder`] (no locks per request). A bucket
//! is closed when the worker records into a later one: its latency histogram
//! is then stored in the compact V2 serialized form, so a closed bucket costs
//! a few hundred bytes. [`report`] merges the workers' recorders at the end;
//! the whole run's latency histogram is the sum of the buckets' ones, so each
//! latency is recorded once.

pub(crate) mod report;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use reloadbench_model::load::FailureRecord;
use reloadbench_model::outcome::FailureClass;

/// Number of failure classes.
pub(crate) const CLASSES: usize = FailureClass::ALL.len();

/// Significant figures of every histogram.
const SIGFIG: u8 = 3;

/// A new auto-resizing histogram of µs values.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGFIG).expect("3 significant figures is a valid histogram precision")
}

/// Timings of one successful request, in ns.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OkTimes {
    /// Completion, ns since the run's start.
    pub(crate) end_ns: u64,
    /// Latency reported (from the intended start in rate mode).
    pub(crate) latency_ns: u64,
    /// Connect time (0 on a reused connection).
    pub(crate) connect_ns: u64,
    /// From connected (or request start on a reused connection) to the last byte.
    pub(crate) processing_ns: u64,
    /// From the request written to the first response byte.
    pub(crate) waiting_ns: u64,
    /// When the request started, ns since the run's start.
    pub(crate) start_ns: u64,
    /// Its request kind.
    pub(crate) kind: u16,
}

/// One successful request, kept only when samples were asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSample {
    /// When the request started, ns since the run's start.
    pub start_ns: u64,
    /// Connect time in µs (0 on a reused connection).
    pub connect_us: u64,
    /// Connected to last byte, µs.
    pub processing_us: u64,
    /// Request written to first byte, µs.
    pub waiting_us: u64,
    /// Connect + processing, µs.
    pub total_us: u64,
}

/// First/last time and counts of one class in one worker.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClassStat {
    /// Failures.
    pub(crate) count: u64,
    /// Of them on a reused connection.
    pub(crate) on_reused: u64,
    /// First, ns since start.
    pub(crate) first_ns: u64,
    /// Last, ns since start.
    pub(crate) last_ns: u64,
}

/// Outcomes of one request kind in one worker.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KindStat {
    /// Successes.
    pub(crate) ok: u64,
    /// Failures per class.
    pub(crate) failed: [u64; CLASSES],
    /// Failures a careful client retries.
    pub(crate) retryable: u64,
    /// Retries made.
    pub(crate) retries: u64,
    /// With `RetryPolicy::Both`: successes after the retries.
    pub(crate) after_ok: u64,
    /// With `RetryPolicy::Both`: failures per class after the retries.
    pub(crate) after_failed: [u64; CLASSES],
}

impl KindStat {
    /// Adds `other`'s counts to these (workers merged, kinds summed per method).
    pub(crate) fn add(&mut self, other: &KindStat) {
        self.ok += other.ok;
        self.retryable += other.retryable;
        self.retries += other.retries;
        self.after_ok += other.after_ok;
        for i in 0..CLASSES {
            self.failed[i] += other.failed[i];
            self.after_failed[i] += other.after_failed[i];
        }
    }
}

/// A finished bucket of one worker.
#[derive(Debug, Clone)]
pub(crate) struct ClosedBucket {
    /// Bucket index (start = index * width).
    pub(crate) index: u64,
    /// Successes.
    pub(crate) ok: u64,
    /// Failures per class.
    pub(crate) failed: [u64; CLASSES],
    /// TCP connections opened (connects that succeeded).
    pub(crate) connections: u64,
    /// Failures a careful client retries.
    pub(crate) retryable: u64,
    /// TLS handshakes completed: full, resumed.
    pub(crate) handshakes: [u64; 2],
    /// HTTP/2 GOAWAY frames received.
    pub(crate) goaways: u64,
    /// V2-serialized latency histogram (empty when no successes).
    pub(crate) histogram: Vec<u8>,
}

/// One worker's recording.
#[derive(Debug)]
pub(crate) struct Recorder {
    bucket_ns: u64,
    cur_index: u64,
    cur_ok: u64,
    cur_failed: [u64; CLASSES],
    cur_connections: u64,
    cur_retryable: u64,
    cur_handshakes: [u64; 2],
    cur_goaways: u64,
    cur_hist: Histogram<u64>,
    pub(crate) closed: Vec<ClosedBucket>,
    /// Outcomes per request kind, indexed by kind (grown on first use).
    pub(crate) kinds: Vec<KindStat>,
    pub(crate) connect: Histogram<u64>,
    pub(crate) processing: Histogram<u64>,
    pub(crate) waiting: Histogram<u64>,
    pub(crate) total: Histogram<u64>,
    pub(crate) classes: [ClassStat; CLASSES],
    pub(crate) failures: Vec<FailureRecord>,
    pub(crate) failures_dropped: u64,
    pub(crate) body_bytes: u64,
    pub(crate) total_bytes: u64,
    pub(crate) connections: u64,
    pub(crate) refused_backoff_ns: u64,
    /// Idle keep-alive connections found closed before reuse, not used.
    pub(crate) stale_discarded: u64,
    /// Bytes received by truncated responses before the cut.
    pub(crate) truncated_bytes: u64,
    /// A `--ws` run's WebSocket outcomes (created on first use).
    pub(crate) ws: Option<Box<crate::ws::record::WsRecorder>>,
    pub(crate) late_starts: u64,
    pub(crate) max_lag_ns: u64,
    pub(crate) last_end_ns: u64,
    pub(crate) samples: Option<Vec<RequestSample>>,
    /// TLS handshakes completed: full, resumed.
    pub(crate) handshakes: [u64; 2],
    /// TLS handshakes that failed (a first attempt's or a retry's).
    pub(crate) handshakes_failed: u64,
    /// How the `tls_handshake` ones ended.
    pub(crate) handshake_failures: reloadbench_model::load::HandshakeFailures,
    /// Time of the completed TLS handshakes, µs.
    pub(crate) handshake_time: Histogram<u64>,
    /// Protocol version and cipher suite of this worker's first handshake.
    pub(crate) tls_protocol: Option<(String, String)>,
    /// The HTTP/2 counts of an `--h2` run.
    pub(crate) h2: H2Stats,
}

/// One worker's HTTP/2 counts (see [`reloadbench_model::load::H2Report`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct H2Stats {
    /// GOAWAYs received with NO_ERROR.
    pub(crate) goaway_graceful: u64,
    /// GOAWAYs received with another error code.
    pub(crate) goaway_error: u64,
    /// Streams refused by a GOAWAY.
    pub(crate) refused: u64,
    /// Streams reset by the server, per error code.
    pub(crate) reset_codes: std::collections::BTreeMap<u32, u64>,
    /// Streams lost with their connection.
    pub(crate) lost: u64,
    /// Streams failed by a protocol error.
    pub(crate) protocol_errors: u64,
    /// Connections opened to replace one that got a GOAWAY or ended.
    pub(crate) reconnects: u64,
}

impl H2Stats {
    /// Adds `other`'s counts (workers merged).
    pub(crate) fn add(&mut self, other: &H2Stats) {
        self.goaway_graceful += other.goaway_graceful;
        self.goaway_error += other.goaway_error;
        self.refused += other.refused;
        for (code, n) in &other.reset_codes {
            *self.reset_codes.entry(*code).or_default() += n;
        }
        self.lost += other.lost;
        self.protocol_errors += other.protocol_errors;
        self.reconnects += other.reconnects;
    }
}

/// How a TLS handshake ended, when it completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// A full handshake.
    Full,
    /// A resumed (abbreviated) handshake.
    Resumed,
}

fn us(ns: u64) -> u64 {
    ns / 1_000
}

/// Records `v`, growing the histogram as needed (`saturating_record` would
/// clamp instead). Growing only fails beyond `usize` counts, which µs
/// latencies cannot reach.
fn put(h: &mut Histogram<u64>, v: u64) {
    let _ = h.record(v);
}

impl Recorder {
    /// An empty recorder with buckets of `bucket_ns`.
    pub(crate) fn new(bucket_ns: u64, keep_samples: bool) -> Recorder {
        Recorder {
            bucket_ns: bucket_ns.max(1),
            cur_index: 0,
            cur_ok: 0,
            cur_failed: [0; CLASSES],
            cur_connections: 0,
            cur_retryable: 0,
            cur_handshakes: [0; 2],
            cur_goaways: 0,
            cur_hist: new_histogram(),
            closed: Vec::new(),
            kinds: Vec::new(),
            connect: new_histogram(),
            processing: new_histogram(),
            waiting: new_histogram(),
            total: new_histogram(),
            classes: [ClassStat::default(); CLASSES],
            failures: Vec::new(),
            failures_dropped: 0,
            body_bytes: 0,
            total_bytes: 0,
            connections: 0,
            refused_backoff_ns: 0,
            stale_discarded: 0,
            truncated_bytes: 0,
            ws: None,
            late_starts: 0,
            max_lag_ns: 0,
            last_end_ns: 0,
            samples: keep_samples.then(Vec::new),
            handshakes: [0; 2],
            handshakes_failed: 0,
            handshake_failures: Default::default(),
            handshake_time: new_histogram(),
            tls_protocol: None,
            h2: H2Stats::default(),
        }
    }

    /// Moves to the bucket of `t_ns`, closing the current one if it is earlier.
    fn bucket_for(&mut self, t_ns: u64) {
        self.move_to(t_ns);
        self.last_end_ns = self.last_end_ns.max(t_ns);
    }

    fn move_to(&mut self, t_ns: u64) {
        let index = t_ns / self.bucket_ns;
        if index > self.cur_index {
            self.close_current();
            self.cur_index = index;
        }
    }

    fn close_current(&mut self) {
        if self.cur_ok == 0
            && self.cur_connections == 0
            && self.cur_handshakes == [0; 2]
            && self.cur_goaways == 0
            && self.cur_failed.iter().all(|c| *c == 0)
        {
            // cur_retryable counts some of cur_failed: 0 as well.
            return;
        }
        let mut histogram = Vec::new();
        if self.cur_ok > 0 {
            // Serializing into a Vec cannot fail for a histogram this crate built.
            if V2Serializer::new()
                .serialize(&self.cur_hist, &mut histogram)
                .is_err()
            {
                histogram.clear();
            }
        }
        self.closed.push(ClosedBucket {
            index: self.cur_index,
            ok: self.cur_ok,
            failed: self.cur_failed,
            connections: self.cur_connections,
            retryable: self.cur_retryable,
            handshakes: self.cur_handshakes,
            goaways: self.cur_goaways,
            histogram,
        });
        self.cur_ok = 0;
        self.cur_goaways = 0;
        self.cur_handshakes = [0; 2];
        self.cur_connections = 0;
        self.cur_retryable = 0;
        self.cur_failed = [0; CLASSES];
        self.cur_hist.reset();
    }

    /// The stats of request kind `kind`.
    fn kind(&mut self, kind: u16) -> &mut KindStat {
        let i = usize::from(kind);
        if i >= self.kinds.len() {
            self.kinds.resize(i + 1, KindStat::default());
        }
        &mut self.kinds[i]
    }

    /// Records a successful request.
    pub(crate) fn ok(&mut self, t: &OkTimes) {
        self.bucket_for(t.end_ns);
        self.cur_ok += 1;
        self.kind(t.kind).ok += 1;
        put(&mut self.cur_hist, us(t.latency_ns));
        let (c, p, w) = (us(t.connect_ns), us(t.processing_ns), us(t.waiting_ns));
        put(&mut self.connect, c);
        put(&mut self.processing, p);
        put(&mut self.waiting, w);
        put(&mut self.total, c + p);
        if let Some(samples) = &mut self.samples {
            samples.push(RequestSample {
                start_ns: t.start_ns,
                connect_us: c,
                processing_us: p,
                waiting_us: w,
                total_us: c + p,
            });
        }
    }

    /// Records a connection opened at `t_ns` (a connect that succeeded): one
    /// counter for the run, one for its bucket.
    pub(crate) fn connected(&mut self, t_ns: u64) {
        self.move_to(t_ns);
        self.connections += 1;
        self.cur_connections += 1;
    }

    /// Records a TLS handshake completed at `t_ns` after `took_ns`, and the
    /// first one's protocol (`protocol` is called only for it).
    pub(crate) fn handshake(
        &mut self,
        t_ns: u64,
        kind: Handshake,
        took_ns: u64,
        protocol: impl FnOnce() -> (String, String),
    ) {
        self.move_to(t_ns);
        let i = usize::from(kind == Handshake::Resumed);
        self.handshakes[i] += 1;
        self.cur_handshakes[i] += 1;
        put(&mut self.handshake_time, us(took_ns));
        if self.tls_protocol.is_none() {
            self.tls_protocol = Some(protocol());
        }
    }

    /// Records an HTTP/2 GOAWAY received at `t_ns` (`graceful`: NO_ERROR).
    pub(crate) fn goaway(&mut self, t_ns: u64, graceful: bool) {
        self.move_to(t_ns);
        self.cur_goaways += 1;
        if graceful {
            self.h2.goaway_graceful += 1;
        } else {
            self.h2.goaway_error += 1;
        }
    }

    /// Records bytes received (heads and bodies), and body bytes of successes.
    pub(crate) fn bytes(&mut self, total: u64, body: u64) {
        self.total_bytes += total;
        self.body_bytes += body;
    }

    /// Records a failed request; `keep` says whether a [`FailureRecord`] slot was granted.
    pub(crate) fn failure(&mut self, record: FailureRecord, keep: bool) {
        self.bucket_for(record.t_ns);
        let i = record.class.index();
        self.cur_failed[i] += 1;
        let kind = self.kind(record.kind);
        kind.failed[i] += 1;
        if record.retryable {
            kind.retryable += 1;
            self.cur_retryable += 1;
        }
        let stat = &mut self.classes[i];
        if stat.count == 0 {
            stat.first_ns = record.t_ns;
        }
        stat.count += 1;
        stat.last_ns = stat.last_ns.max(record.t_ns);
        if record.reused {
            stat.on_reused += 1;
        }
        if keep {
            self.failures.push(record);
        } else {
            self.failures_dropped += 1;
        }
    }

    /// Records a retry of a request of `kind`.
    pub(crate) fn retried(&mut self, kind: u16) {
        self.kind(kind).retries += 1;
    }

    /// With `RetryPolicy::Both`: records the outcome of a request of `kind`
    /// after its retry (`None`: success).
    pub(crate) fn after_retry(&mut self, kind: u16, class: Option<FailureClass>) {
        let k = self.kind(kind);
        match class {
            None => k.after_ok += 1,
            Some(c) => k.after_failed[c.index()] += 1,
        }
    }

    /// Records a start later than intended (rate mode).
    pub(crate) fn lag(&mut self, lag_ns: u64) {
        if lag_ns > 1_000_000 {
            self.late_starts += 1;
        }
        self.max_lag_ns = self.max_lag_ns.max(lag_ns);
    }

    /// Closes the last bucket; call once at the end.
    pub(crate) fn finish(&mut self) {
        self.close_current();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_close_in_order_and_count() {
        let mut r = Recorder::new(100, false);
        for t in [5, 50, 150, 420] {
            r.ok(&OkTimes {
                end_ns: t,
                latency_ns: 2_000,
                ..OkTimes::default()
            });
        }
        r.failure(
            FailureRecord {
                t_ns: 430,
                start_ns: 400,
                class: FailureClass::Reset,
                reused: true,
                id: None,
                retryable: true,
                kind: 1,
            },
            true,
        );
        r.connected(460);
        r.handshake(470, Handshake::Resumed, 3_000, || ("v".into(), "c".into()));
        r.connected(710);
        r.handshake(720, Handshake::Full, 9_000, || {
            unreachable!("only the first")
        });
        r.finish();
        assert_eq!(r.handshakes, [1, 1]);
        assert_eq!(r.handshake_time.len(), 2);
        assert_eq!(r.tls_protocol, Some(("v".into(), "c".into())));
        let hs: Vec<[u64; 2]> = r.closed.iter().map(|b| b.handshakes).collect();
        assert_eq!(hs, vec![[0, 0], [0, 0], [0, 1], [1, 0]]);
        let idx: Vec<u64> = r.closed.iter().map(|b| b.index).collect();
        assert_eq!(idx, vec![0, 1, 4, 7]);
        let conns: Vec<u64> = r.closed.iter().map(|b| b.connections).collect();
        assert_eq!(conns, vec![0, 0, 1, 1]);
        assert_eq!(r.connections, 2);
        assert_eq!(r.last_end_ns, 430, "a connect is not the end of a request");
        assert_eq!(r.closed[0].ok, 2);
        assert_eq!(r.closed[2].failed[FailureClass::Reset.index()], 1);
        assert_eq!(r.classes[FailureClass::Reset.index()].on_reused, 1);
        assert_eq!(r.closed[2].retryable, 1);
        assert_eq!(r.kinds.len(), 2);
        assert_eq!((r.kinds[0].ok, r.kinds[1].retryable), (4, 1));
        assert_eq!(r.kinds[1].failed[FailureClass::Reset.index()], 1);
        let latencies: u64 = r
            .closed
            .iter()
            .filter(|b| !b.histogram.is_empty())
            .map(|b| {
                hdrhistogram::serialization::Deserializer::new()
                    .deserialize::<u64, _>(&mut b.histogram.as_slice())
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(latencies, 4);
    }
}
