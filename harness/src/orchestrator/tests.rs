//! Timeline tests on a scripted runner and a simulated load, on tokio's paused clock (the
//! simulated load, the timeline's and the runner's trigger stamps all follow it): they take
//! no real time and do not depend on the machine's speed.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::event::ReloadMode;
use reloadbench_model::run::ActionKind;

use super::events::EventLog;
use super::os::cancel::Cancel;
use super::sut::fake::FakeRunner;
use super::timeline::{Ended, LoadClock, action_reports, drive};
use crate::scenario::{Action, ActionSpec, ReloadSpec, Trigger};

/// A load completing `per_ms` requests per millisecond until `total`.
struct SimLoad {
    start_mono: u64,
    start: tokio::time::Instant,
    per_ms: u64,
    total: u64,
}

impl SimLoad {
    fn new(per_ms: u64, total: u64) -> SimLoad {
        SimLoad {
            start_mono: monotonic_ns(),
            start: tokio::time::Instant::now(),
            per_ms,
            total,
        }
    }
}

impl LoadClock for SimLoad {
    fn started_mono_ns(&self) -> u64 {
        self.start_mono
    }
    fn completed(&self) -> u64 {
        let ms = self.start.elapsed().as_millis() as u64;
        (ms * self.per_ms).min(self.total)
    }
    async fn wait_completed(&self, n: u64) {
        let n = n.min(self.total);
        let ms = n.div_ceil(self.per_ms);
        tokio::time::sleep_until(self.start + Duration::from_millis(ms)).await;
    }
    fn now_mono_ns(&self) -> u64 {
        self.start_mono + self.start.elapsed().as_nanos() as u64
    }
}

fn reload(trigger: Trigger) -> Action {
    Action {
        trigger,
        what: ActionSpec::Reload(ReloadSpec::Reference(ReloadMode::FdPass)),
    }
}

#[tokio::test(start_paused = true)]
async fn every_fires_until_the_load_ends_and_reports_phases() {
    let (sink, mut log) = EventLog::create(None).unwrap();
    let mut runner = FakeRunner::new(sink);
    runner.fail = vec![1];
    let load = SimLoad::new(10, 5_000); // ends after 500 ms
    runner.clock = Some((load.start_mono, load.start));
    let actions = [reload(Trigger::Every {
        start: Duration::from_millis(100),
        interval: Duration::from_millis(100),
        count: None,
    })];
    let (_h, cancel) = Cancel::new();
    let count = AtomicU32::new(0);
    let (fired, ended) = drive(&actions, &load, &mut runner, &mut log, &cancel, &count).await;
    assert_eq!(ended, Ended::LoadDone);
    log.pump();
    let reports = action_reports(&fired, &log, &runner, load.started_mono_ns());
    // On the paused clock each fires on time: 100, 200, 300, 400 ms; the one due at 500 ms
    // does not, the load ended at that instant.
    let triggers: Vec<u64> = reports.iter().map(|r| r.trigger_ns).collect();
    assert_eq!(
        triggers,
        [100_000_000, 200_000_000, 300_000_000, 400_000_000]
    );
    assert_eq!(reports[0].kind, ActionKind::Reload);
    assert_eq!(reports[0].mode, Some(ReloadMode::FdPass));
    let r0 = &reports[0];
    assert_eq!(r0.ready_ns, Some(r0.trigger_ns + 5_000_000));
    assert_eq!(r0.drained_ns, Some(r0.trigger_ns + 50_000_000));
    assert_eq!(r0.exited_ns, Some(r0.trigger_ns + 50_000_001));
    assert!(!reports[1].ok);
    assert_eq!(reports[1].error.as_deref(), Some("scripted failure"));
}

#[tokio::test(start_paused = true)]
async fn at_and_after_requests_fire_once_in_time_order() {
    let (sink, mut log) = EventLog::create(None).unwrap();
    let mut runner = FakeRunner::new(sink);
    let load = SimLoad::new(10, 4_000); // 400 ms
    let actions = [
        reload(Trigger::At(Duration::from_millis(250))),
        reload(Trigger::AfterRequests(1_000)), // at 100 ms
        reload(Trigger::At(Duration::from_secs(60))), // after the end: never
    ];
    let (_h, cancel) = Cancel::new();
    let count = AtomicU32::new(0);
    let (fired, ended) = drive(&actions, &load, &mut runner, &mut log, &cancel, &count).await;
    assert_eq!(ended, Ended::LoadDone);
    let order: Vec<usize> = fired.iter().map(|f| f.action).collect();
    assert_eq!(order, vec![1, 0]);
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_the_timeline() {
    let (sink, mut log) = EventLog::create(None).unwrap();
    let mut runner = FakeRunner::new(sink);
    let load = SimLoad::new(1, 1_000_000);
    let actions = [reload(Trigger::At(Duration::from_secs(60)))];
    let (h, cancel) = Cancel::new();
    h.cancel(nix::sys::signal::Signal::SIGINT);
    let count = AtomicU32::new(0);
    let (fired, ended) = drive(&actions, &load, &mut runner, &mut log, &cancel, &count).await;
    assert_eq!(ended, Ended::Cancelled);
    assert!(fired.is_empty());
}

/// A runner whose actions never return (an `exec` that hangs).
struct HangRunner(std::sync::Arc<tokio::sync::Notify>);

impl super::sut::runner::Runner for HangRunner {
    async fn start(
        &mut self,
        _log: &mut EventLog,
    ) -> Result<std::net::SocketAddr, super::sut::runner::RunnerError> {
        Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 1)))
    }
    async fn act(
        &mut self,
        _a: &ActionSpec,
        _log: &mut EventLog,
    ) -> super::sut::runner::ActOutcome {
        self.0.notify_one();
        std::future::pending().await
    }
    async fn stop(&mut self, _log: &mut EventLog) -> Result<(), super::sut::runner::RunnerError> {
        Ok(())
    }
    fn exit_seen(&self, _pid: u32) -> Option<u64> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_interrupts_a_hanging_action() {
    let (_sink, mut log) = EventLog::create(None).unwrap();
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut runner = HangRunner(started.clone());
    let load = SimLoad::new(1, 1_000_000);
    let actions = [reload(Trigger::At(Duration::ZERO))];
    let (h, cancel) = Cancel::new();
    let count = AtomicU32::new(0);
    let timeline = drive(&actions, &load, &mut runner, &mut log, &cancel, &count);
    let canceller = async {
        started.notified().await;
        h.cancel(nix::sys::signal::Signal::SIGINT);
    };
    let ((fired, ended), ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(timeline, canceller)
    })
    .await
    .expect("the cancellation interrupts the action");
    assert_eq!(ended, Ended::Cancelled);
    assert_eq!(fired.len(), 1);
    assert_eq!(
        fired[0].outcome.error.as_deref(),
        Some("interrupted by SIGINT")
    );
}

#[tokio::test]
async fn dropping_a_guard_kills_the_whole_process_group() {
    use super::events::Payload;
    use super::os::process::{PidLog, ProcessContext, ProcessGuard, ProcessSpec};
    use super::sut::readiness::pid_alive;

    let dir = tempfile::tempdir().unwrap();
    let (sink, mut log) = EventLog::create(None).unwrap();
    let ctx = ProcessContext {
        sink,
        log_dir: dir.path().to_owned(),
        pids: PidLog::memory(),
    };
    let spec = ProcessSpec::new("tree", "/bin/sh")
        .arg("-c")
        .arg("sleep 60 & echo $!; wait");
    let guard = ProcessGuard::spawn(&spec, &ctx).unwrap();
    let idx = log
        .wait_for(
            0,
            Duration::from_secs(10),
            |s| matches!(&s.payload, Payload::Line(l) if l.parse::<u32>().is_ok()),
        )
        .await
        .expect("the grandchild's pid");
    let Payload::Line(l) = &log.seen()[idx].payload else {
        unreachable!()
    };
    let grandchild: u32 = l.parse().unwrap();
    assert!(pid_alive(grandchild));
    assert_eq!(ctx.pids.pids(), vec![guard.pid()]);
    drop(guard);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pid_alive(grandchild) {
        assert!(
            std::time::Instant::now() < deadline,
            "grandchild {grandchild} survived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_deadline() {
    use super::os::process::{PidLog, ProcessContext, ProcessGuard, ProcessSpec};
    use nix::sys::signal::Signal;

    let dir = tempfile::tempdir().unwrap();
    let (sink, mut log) = EventLog::create(None).unwrap();
    let ctx = ProcessContext {
        sink,
        log_dir: dir.path().to_owned(),
        pids: PidLog::memory(),
    };
    // Ignores SIGTERM once it said "ready".
    let spec = ProcessSpec::new("stubborn", "/bin/sh")
        .arg("-c")
        .arg("trap '' TERM; echo ready; while :; do sleep 1; done");
    let mut p = ProcessGuard::spawn(&spec, &ctx).unwrap();
    log.wait_for(0, Duration::from_secs(10), |s| {
        s.payload == super::events::Payload::Line("ready".into())
    })
    .await
    .expect("ready line");
    let res = p.stop(Signal::SIGTERM, Duration::from_millis(300)).await;
    assert!(res.is_err(), "{res:?}");
    assert!(p.status().is_some(), "not reaped after SIGKILL");
}

#[tokio::test]
async fn reaped_processes_leave_the_live_pid_list() {
    use super::os::process::{PidLog, ProcessContext, ProcessGuard, ProcessSpec};

    let dir = tempfile::tempdir().unwrap();
    let (sink, _log) = EventLog::create(None).unwrap();
    let pids = PidLog::create(&dir.path().join("pids.log")).unwrap();
    let ctx = ProcessContext {
        sink,
        log_dir: dir.path().to_owned(),
        pids: pids.clone(),
    };
    let mut a = ProcessGuard::spawn(&ProcessSpec::new("a", "/bin/true"), &ctx).unwrap();
    let b = ProcessGuard::spawn(&ProcessSpec::new("b", "/bin/sleep").arg("60"), &ctx).unwrap();
    assert_eq!(pids.live(), vec![a.pid(), b.pid()]);
    a.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert_eq!(pids.live(), vec![b.pid()]);
    let b_pid = b.pid();
    drop(b);
    assert!(pids.live().is_empty());
    assert_eq!(pids.pids(), vec![a.pid(), b_pid]);
    let text = std::fs::read_to_string(dir.path().join("pids.log")).unwrap();
    assert_eq!(text, format!("{} a\n{b_pid} b\n", a.pid()));
}
