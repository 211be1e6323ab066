//! Recording a worker's WebSocket outcomes ([`WsRecorder`]) and merging the
//! workers' recordings into the report's [`WsReport`].
//!
//! Counts are kept per time bucket too (a small array per bucket, grown as
//! the run goes), so the report can show when connections were cut or
//! closed; the whole-run counts are the sums. Reconnect times are kept as
//! they come, with their bucket (one per reconnect, at most one per opened
//! connection), and put into one HdrHistogram per bucket when the report is
//! built: each bucket's p50, p99 and max.

use std::cell::{RefCell, RefMut};
use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::ws::{CloseCodeCount, WsBuckets, WsFailedCount, WsReport};

use super::WsOptions;
use crate::record::report::latency_summary;
use crate::record::{CLASSES, Recorder, new_histogram};

/// The per-bucket counters, by position in a bucket's array.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(crate) enum Col {
    Opened,
    Failed,
    Closed,
    Cut,
    Sent,
    Echoed,
    Lost,
    Late,
}

const COLS: usize = 8;

/// One worker's WebSocket outcomes.
#[derive(Debug)]
pub(crate) struct WsRecorder {
    bucket_ns: u64,
    buckets: Vec<[u64; COLS]>,
    failed: [u64; CLASSES],
    close_codes: BTreeMap<u16, u64>,
    open_at_end: u64,
    /// The latest bucket in which a connection was still open at the run's end.
    end_bucket: Option<usize>,
    reconnect: Histogram<u64>,
    /// Each reconnect's bucket and time (µs), in the order they came.
    reconnects: Vec<(usize, u64)>,
    echo: Histogram<u64>,
}

/// The WebSocket recorder of `rec`, created on first use.
pub(crate) fn of(rec: &RefCell<Recorder>, bucket_ns: u64) -> RefMut<'_, WsRecorder> {
    RefMut::map(rec.borrow_mut(), |r| {
        &mut **r
            .ws
            .get_or_insert_with(|| Box::new(WsRecorder::new(bucket_ns)))
    })
}

impl WsRecorder {
    fn new(bucket_ns: u64) -> WsRecorder {
        WsRecorder {
            bucket_ns: bucket_ns.max(1),
            buckets: Vec::new(),
            failed: [0; CLASSES],
            close_codes: BTreeMap::new(),
            open_at_end: 0,
            end_bucket: None,
            reconnect: new_histogram(),
            reconnects: Vec::new(),
            echo: new_histogram(),
        }
    }

    fn bucket(&self, t_ns: u64) -> usize {
        (t_ns / self.bucket_ns) as usize
    }

    /// Adds `n` to column `col` of the bucket of `t_ns`.
    pub(crate) fn count(&mut self, t_ns: u64, col: Col, n: u64) {
        let i = self.bucket(t_ns);
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, [0; COLS]);
        }
        self.buckets[i][col as usize] += n;
    }

    /// A connection opened; `reconnect_us` since the client's last one ended.
    pub(crate) fn opened(&mut self, t_ns: u64, reconnect_us: Option<u64>) {
        self.count(t_ns, Col::Opened, 1);
        if let Some(us) = reconnect_us {
            let _ = self.reconnect.record(us);
            self.reconnects.push((self.bucket(t_ns), us));
        }
    }

    /// An attempt failed to open.
    pub(crate) fn failed(&mut self, t_ns: u64, class: FailureClass) {
        self.count(t_ns, Col::Failed, 1);
        self.failed[class.index()] += 1;
    }

    /// The server closed the connection with a close frame of `code`.
    pub(crate) fn closed(&mut self, t_ns: u64, code: u16) {
        self.count(t_ns, Col::Closed, 1);
        *self.close_codes.entry(code).or_default() += 1;
    }

    /// A message's echo came back in time, after `rtt_us`.
    pub(crate) fn echoed(&mut self, t_ns: u64, rtt_us: u64) {
        self.count(t_ns, Col::Echoed, 1);
        let _ = self.echo.record(rtt_us);
    }

    /// A connection was still open when the run ended, at `t_ns`: it counts
    /// as open through that bucket.
    pub(crate) fn open_at_end(&mut self, t_ns: u64) {
        self.open_at_end += 1;
        let i = self.bucket(t_ns);
        self.end_bucket = Some(self.end_bucket.map_or(i, |e| e.max(i)));
    }
}

/// Sparse `[index, count]` pairs of one column.
fn sparse(totals: &[[u64; COLS]], col: Col) -> Vec<(usize, u64)> {
    totals
        .iter()
        .enumerate()
        .filter(|(_, b)| b[col as usize] > 0)
        .map(|(i, b)| (i, b[col as usize]))
        .collect()
}

/// The run's [`WsReport`] from the workers' recorders.
pub(crate) fn report(recorders: &[Recorder], options: &WsOptions, bucket_ns: u64) -> WsReport {
    let mut totals: Vec<[u64; COLS]> = Vec::new();
    let mut failed = [0u64; CLASSES];
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let mut open_at_end = 0;
    let mut end_bucket: Option<usize> = None;
    let mut reconnect = new_histogram();
    let mut reconnects: Vec<(usize, u64)> = Vec::new();
    let mut echo = new_histogram();
    for w in recorders.iter().filter_map(|r| r.ws.as_deref()) {
        if totals.len() < w.buckets.len() {
            totals.resize(w.buckets.len(), [0; COLS]);
        }
        for (acc, b) in totals.iter_mut().zip(&w.buckets) {
            for (a, v) in acc.iter_mut().zip(b) {
                *a += v;
            }
        }
        for (a, v) in failed.iter_mut().zip(w.failed) {
            *a += v;
        }
        for (code, n) in &w.close_codes {
            *codes.entry(*code).or_default() += n;
        }
        open_at_end += w.open_at_end;
        end_bucket = end_bucket.max(w.end_bucket);
        reconnects.extend_from_slice(&w.reconnects);
        let _ = reconnect.add(&w.reconnect);
        let _ = echo.add(&w.echo);
    }
    // The connections open at the end stay open through the bucket the run
    // ended in, even when nothing else happened in the last buckets.
    if let Some(end) = end_bucket
        && totals.len() <= end
    {
        totals.resize(end + 1, [0; COLS]);
    }
    let sum = |col: Col| totals.iter().map(|b| b[col as usize]).sum::<u64>();
    let mut open = Vec::new();
    let mut now_open: u64 = 0;
    for (i, b) in totals.iter().enumerate() {
        now_open += b[Col::Opened as usize];
        now_open = now_open.saturating_sub(b[Col::Closed as usize] + b[Col::Cut as usize]);
        if now_open > 0 {
            open.push((i, now_open));
        }
    }
    let failed_classes: Vec<WsFailedCount> = FailureClass::ALL
        .into_iter()
        .filter(|c| failed[c.index()] > 0)
        .map(|class| WsFailedCount {
            class,
            count: failed[class.index()],
        })
        .collect();
    let mut report = WsReport {
        message_interval_ms: options.message_interval.as_millis() as u64,
        message_bytes: options.message_bytes as u64,
        message_timeout_ms: options.message_timeout.as_millis() as u64,
        reconnect_delay_ms: options.reconnect_delay.as_millis() as u64,
        opened: sum(Col::Opened),
        failed: sum(Col::Failed),
        failed_classes,
        closed_cleanly: sum(Col::Closed),
        close_codes: codes
            .into_iter()
            .map(|(code, count)| CloseCodeCount { code, count })
            .collect(),
        cut: sum(Col::Cut),
        open_at_end,
        sent: sum(Col::Sent),
        echoed: sum(Col::Echoed),
        lost: sum(Col::Lost),
        late: sum(Col::Late),
        reconnect_time: latency_summary(&reconnect),
        echo_time: latency_summary(&echo),
        buckets: WsBuckets {
            width_ns: bucket_ns,
            opened: sparse(&totals, Col::Opened),
            failed: sparse(&totals, Col::Failed),
            closed_cleanly: sparse(&totals, Col::Closed),
            cut: sparse(&totals, Col::Cut),
            open,
            sent: sparse(&totals, Col::Sent),
            echoed: sparse(&totals, Col::Echoed),
            lost: sparse(&totals, Col::Lost),
            late: sparse(&totals, Col::Late),
            ..WsBuckets::default()
        },
        ab: Default::default(),
    };
    report.ab = report.handshakes_ab();
    reconnect_columns(&mut report.buckets, reconnects);
    report
}

/// The per-bucket reconnect columns: count, p50, p99 and max of each
/// bucket's reconnect times (one HdrHistogram per bucket that had any).
fn reconnect_columns(b: &mut WsBuckets, mut reconnects: Vec<(usize, u64)>) {
    reconnects.sort_unstable_by_key(|(i, _)| *i);
    for group in reconnects.chunk_by(|x, y| x.0 == y.0) {
        let i = group[0].0;
        let mut h = new_histogram();
        for (_, us) in group {
            let _ = h.record(*us);
        }
        b.reconnects.push((i, h.len()));
        b.reconnect_p50_us.push((i, h.value_at_quantile(0.5)));
        b.reconnect_p99_us.push((i, h.value_at_quantile(0.99)));
        b.reconnect_max_us.push((i, h.max()));
    }
}
