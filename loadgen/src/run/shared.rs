//! State shared by all workers of a run: the request plan (tickets), stop
//! flag, global progress counters and the waiters of
//! [`crate::LoadRun::wait_completed`].
//!
//! Per request the hot path touches a few atomics (ticket, start and
//! completion counters, the next wake-up threshold) and no lock; everything
//! else is recorded per worker.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

/// The first successful response's facts (ab's Server Software and Document Length).
#[derive(Debug, Clone)]
pub(crate) struct FirstResponse {
    pub(crate) server: Option<String>,
    pub(crate) body_len: u64,
}

/// Permission to start one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// The request's index in the run (0, 1, 2, ...): its id.
    pub(crate) index: u64,
    /// Intended start (rate mode only). The request may start up to a timer
    /// tick before it; latency then counts from the actual start.
    pub(crate) intended: Option<Instant>,
}

/// How the run's requests are planned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanSpec {
    pub(crate) requests: Option<u64>,
    pub(crate) duration: Option<Duration>,
    /// Nanoseconds between intended starts (rate mode).
    pub(crate) interval_ns: Option<f64>,
    pub(crate) failure_cap: usize,
}

type Waiters = Vec<(u64, oneshot::Sender<()>)>;

/// Resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Shared run state.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) start: Instant,
    pub(crate) started_mono_ns: u64,
    spec: PlanSpec,
    deadline: Option<Instant>,
    next_index: AtomicU64,
    started: AtomicU64,
    stopped: AtomicBool,
    stop_offset_ns: AtomicU64,
    stop_notify: Notify,
    /// Notified when the last request of `-n` is taken (clients in their think
    /// time then end at once).
    all_taken: Notify,
    completed: AtomicU64,
    failed: AtomicU64,
    next_wake: AtomicU64,
    waiters: Mutex<Waiters>,
    ended: AtomicBool,
    pub(crate) workers_running: AtomicUsize,
    failure_slots: AtomicUsize,
    pub(crate) first_response: OnceLock<FirstResponse>,
    /// `--ws`: connections opened, ended (closed or cut) and attempts failed so far.
    pub(crate) ws: [AtomicU64; 3],
}

impl Shared {
    /// A run starting now.
    pub(crate) fn new(spec: PlanSpec, workers: usize) -> Shared {
        let start = Instant::now();
        let started_mono_ns = reloadbench_model::clock::monotonic_ns();
        Shared {
            start,
            started_mono_ns,
            spec,
            deadline: spec.duration.map(|d| start + d),
            next_index: AtomicU64::new(0),
            started: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            stop_offset_ns: AtomicU64::new(u64::MAX),
            stop_notify: Notify::new(),
            all_taken: Notify::new(),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            next_wake: AtomicU64::new(u64::MAX),
            waiters: Mutex::new(Vec::new()),
            ended: AtomicBool::new(false),
            workers_running: AtomicUsize::new(workers),
            failure_slots: AtomicUsize::new(0),
            first_response: OnceLock::new(),
            ws: Default::default(),
        }
    }

    /// Nanoseconds since the run's start.
    pub(crate) fn offset_ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// When the time limit (`-t`) ends the run, if there is one.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether [`Shared::stop`] was called.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// No new requests start after this.
    pub(crate) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            let off = self.offset_ns(Instant::now());
            self.stop_offset_ns.store(off, Ordering::SeqCst);
        }
        self.stop_notify.notify_waiters();
    }

    /// Sleeps until `until`; returns false early when the run is stopped.
    pub(crate) async fn sleep_until(&self, until: Instant) -> bool {
        let mut notified = pin!(self.stop_notify.notified());
        notified.as_mut().enable();
        if self.is_stopped() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => !self.is_stopped(),
            () = notified => false,
        }
    }

    /// A client's think time before its next request: returns false, at once, when
    /// no request could follow it (the run was stopped, every request of `-n` has
    /// been taken, or the time limit comes before the pause ends), and early when
    /// the run is stopped or the last request is taken (by another client) during it.
    pub(crate) async fn think(&self, pause: Duration) -> bool {
        let limit = self.spec.requests.unwrap_or(u64::MAX);
        // Made before the check, so that a last ticket taken in between wakes it.
        let all_taken = self.all_taken.notified();
        if self.next_index.load(Ordering::SeqCst) >= limit {
            return false;
        }
        let until = Instant::now() + pause;
        if self.deadline.is_some_and(|d| until >= d) {
            return false;
        }
        tokio::select! {
            keep = self.sleep_until(until) => keep,
            () = all_taken => false,
        }
    }

    /// The next request to make, or `None` when the plan is done.
    pub(crate) async fn next_ticket(&self) -> Option<Ticket> {
        if self.is_stopped() {
            return None;
        }
        let limit = self.spec.requests.unwrap_or(u64::MAX);
        match self.spec.interval_ns {
            None => {
                if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    return None;
                }
                let i = self.next_index.fetch_add(1, Ordering::SeqCst);
                if i >= limit {
                    return None;
                }
                if i + 1 == limit {
                    self.all_taken.notify_waiters();
                }
                self.started.fetch_add(1, Ordering::Relaxed);
                Some(Ticket {
                    index: i,
                    intended: None,
                })
            }
            Some(interval) => {
                let i = self.next_index.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    return None;
                }
                let intended = self.start + Duration::from_nanos((i as f64 * interval) as u64);
                if self.deadline.is_some_and(|d| intended >= d) {
                    return None;
                }
                // The timer wakes up to a tick (1 ms) after its deadline: aim
                // one tick early so that on-time requests start on time.
                let wake = intended.checked_sub(TIMER_TICK).unwrap_or(intended);
                if wake > Instant::now() && !self.sleep_until(wake).await {
                    return None;
                }
                // Requests due before the end but not started by then are not started.
                if self.is_stopped() || self.deadline.is_some_and(|d| Instant::now() >= d) {
                    return None;
                }
                self.started.fetch_add(1, Ordering::Relaxed);
                Some(Ticket {
                    index: i,
                    intended: Some(intended),
                })
            }
        }
    }

    /// Grants a slot in the failure list, while under the cap.
    pub(crate) fn failure_slot(&self) -> bool {
        self.failure_slots.fetch_add(1, Ordering::Relaxed) < self.spec.failure_cap
    }

    /// Counts one finished request and wakes waiters whose threshold is reached.
    pub(crate) fn done(&self, ok: bool) {
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let c = self.completed.fetch_add(1, Ordering::SeqCst) + 1;
        if c >= self.next_wake.load(Ordering::SeqCst) {
            self.wake(c);
        }
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self, completed: u64) {
        let mut w = self.lock_waiters();
        let mut min = u64::MAX;
        let mut i = 0;
        while i < w.len() {
            if w[i].0 <= completed {
                let (_, tx) = w.swap_remove(i);
                let _ = tx.send(());
            } else {
                min = min.min(w[i].0);
                i += 1;
            }
        }
        self.next_wake.store(min, Ordering::SeqCst);
    }

    /// Marks the run as ended and releases every waiter.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        let mut w = self.lock_waiters();
        for (_, tx) in w.drain(..) {
            let _ = tx.send(());
        }
        self.next_wake.store(u64::MAX, Ordering::SeqCst);
    }

    /// Resolves once `n` requests completed or the run ended.
    pub(crate) async fn wait_completed(&self, n: u64) {
        let rx = {
            let mut w = self.lock_waiters();
            if self.ended.load(Ordering::SeqCst) || self.completed() >= n {
                return;
            }
            let (tx, rx) = oneshot::channel();
            w.push((n, tx));
            self.next_wake.fetch_min(n, Ordering::SeqCst);
            rx
        };
        // A request may have completed between the check and publishing the
        // threshold; the recorder may then have missed it, so check again.
        if self.completed() >= n {
            self.wake(self.completed());
        }
        let _ = rx.await;
    }

    /// Requests completed so far.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }

    /// Requests failed so far.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Requests started so far.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// Planned requests, once the run is over: `-n` when given; otherwise in a
    /// closed loop the started ones, and in rate mode the intended starts
    /// before the end (duration or stop).
    pub(crate) fn planned(&self) -> u64 {
        let started = self.started();
        if let Some(n) = self.spec.requests {
            return n.max(started);
        }
        let Some(interval) = self.spec.interval_ns else {
            return started;
        };
        let stop = self.stop_offset_ns.load(Ordering::SeqCst);
        let end = self
            .spec
            .duration
            .map_or(u64::MAX, |d| d.as_nanos() as u64)
            .min(stop);
        if end == u64::MAX {
            return started;
        }
        // Count the i with intended offset (i * interval) < end, computed
        // exactly as `next_ticket` computes intended starts.
        let offset = |i: u64| (i as f64 * interval) as u64;
        let mut due = (end as f64 / interval).ceil() as u64;
        while due > 0 && offset(due - 1) >= end {
            due -= 1;
        }
        while offset(due) < end {
            due += 1;
        }
        due.max(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(requests: Option<u64>) -> PlanSpec {
        PlanSpec {
            requests,
            duration: None,
            interval_ns: None,
            failure_cap: 2,
        }
    }

    #[tokio::test]
    async fn tickets_stop_at_n_and_planned_counts() {
        let s = Shared::new(spec(Some(3)), 1);
        for _ in 0..3 {
            assert!(s.next_ticket().await.is_some());
        }
        assert!(s.next_ticket().await.is_none());
        assert_eq!((s.started(), s.planned()), (3, 3));
        assert!(s.failure_slot() && s.failure_slot() && !s.failure_slot());
    }

    #[test]
    fn rate_plan_counts_starts_due_before_the_end() {
        for (rate, ms, due) in [
            (200.0, 500, 100),
            (3.0, 1000, 3),
            (7.0, 1001, 8),
            (1e6, 1, 1000),
        ] {
            let s = Shared::new(
                PlanSpec {
                    requests: None,
                    duration: Some(Duration::from_millis(ms)),
                    interval_ns: Some(1e9 / rate),
                    failure_cap: 0,
                },
                1,
            );
            assert_eq!(s.planned(), due, "rate {rate} for {ms} ms");
        }
    }

    #[tokio::test]
    async fn stop_leaves_the_rest_not_started() {
        let s = Shared::new(spec(Some(10)), 1);
        assert!(s.next_ticket().await.is_some());
        s.stop();
        assert!(s.next_ticket().await.is_none());
        assert_eq!((s.started(), s.planned()), (1, 10));
    }

    #[tokio::test]
    async fn waiters_wake_at_threshold_and_at_end() {
        let s = std::sync::Arc::new(Shared::new(spec(None), 1));
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.wait_completed(2).await });
        let s3 = s.clone();
        let never = tokio::spawn(async move { s3.wait_completed(100).await });
        tokio::task::yield_now().await;
        s.done(true);
        s.done(false);
        tokio::time::timeout(reloadbench_model::test_timing::scaled_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.completed(), s.failed()), (2, 1));
        s.end();
        tokio::time::timeout(reloadbench_model::test_timing::scaled_secs(10), never)
            .await
            .unwrap()
            .unwrap();
        s.wait_completed(1000).await;
    }

    #[tokio::test]
    async fn a_think_time_ends_when_another_client_takes_the_last_request() {
        let s = std::sync::Arc::new(Shared::new(spec(Some(2)), 1));
        assert!(s.next_ticket().await.is_some());
        // One request left: a client that finished its own pauses for it...
        let s2 = s.clone();
        let thinking = tokio::spawn(async move { s2.think(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        // ...and another client takes it: the pause ends (long before its hour),
        // with nothing to do.
        assert!(s.next_ticket().await.is_some());
        let woken = tokio::time::timeout(reloadbench_model::test_timing::scaled_secs(10), thinking);
        assert!(!woken.await.expect("woken").unwrap());
        // Once every request is taken, no pause begins.
        assert!(!s.think(Duration::from_secs(3600)).await);
    }
}
