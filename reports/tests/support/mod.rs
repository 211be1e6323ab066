//! Shared helpers of the integration tests: the fixture run report.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::path::PathBuf;

use reloadbench_model::generations::{GenerationPoint, GenerationSeries, GenerationSource};
use reloadbench_model::load::{LatencySummary, Percentile};
use reloadbench_model::ws::{CloseCodeCount, WsBuckets, WsReport};
use reloadbench_reports::RunReport;

/// Path of the fixture `results.json`.
pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json")
}

/// The fixture run: seed-like, four cases (normal, restart, naive, fd-pass).
pub fn fixture() -> RunReport {
    reloadbench_reports::read_results(&fixture_path()).expect("fixture parses")
}

/// The fixture with its naive case's `failed = 0` expectation dropped: the
/// fixture's naive case fails it (3 resets), and `compare` regresses any
/// case that expects no failure and has some in NEW.
pub fn passing_fixture() -> RunReport {
    let mut r = fixture();
    r.cases[2].expectations.clear();
    r
}

/// The fixture with every case's load the first case's, holding WebSockets
/// (a 64-byte message every 100 ms, late after 1 s, reconnect after 10 ms);
/// case 3 had its connections closed with 1001 (5) and 1000 (1), 2 cut
/// (per 100 ms bucket: 5 closed at 20, 1 closed and 2 cut at 40), and
/// its old processes counted from the process tree (2, then 4 from 4 s,
/// in 1 and 2 generations).
pub fn ws_fixture() -> RunReport {
    let mut r = fixture();
    let mut cfg = r.cases[0].load.config.clone();
    cfg.duration_ms = Some(10_000);
    let base = WsReport {
        message_interval_ms: 100,
        message_bytes: 64,
        message_timeout_ms: 1000,
        reconnect_delay_ms: 10,
        opened: 100,
        open_at_end: 100,
        sent: 10_000,
        echoed: 10_000,
        ..WsReport::default()
    };
    for c in &mut r.cases {
        c.load.config = cfg.clone();
        c.load.ws = Some(base.clone());
    }
    r.cases[3].old_generations_max = Some(2);
    let point = |ms: u64, processes, old_processes, old_generations| GenerationPoint {
        t_ns: ms * 1_000_000,
        processes: Some(processes),
        old_processes,
        old_generations,
    };
    r.cases[3].generations = Some(GenerationSeries::from_looks(
        GenerationSource::ProcessTree,
        [
            point(0, 3, 0, 0),
            point(2000, 5, 2, 1),
            point(4000, 7, 4, 2),
            point(6000, 5, 2, 1),
        ],
    ));
    r.cases[3].load.ws = Some(WsReport {
        opened: 108,
        failed: 3,
        closed_cleanly: 6,
        close_codes: vec![
            CloseCodeCount {
                code: 1000,
                count: 1,
            },
            CloseCodeCount {
                code: 1001,
                count: 5,
            },
        ],
        cut: 2,
        open_at_end: 100,
        sent: 9_990,
        echoed: 9_970,
        lost: 15,
        late: 5,
        buckets: WsBuckets {
            width_ns: 100_000_000,
            opened: vec![(0, 100), (21, 5), (41, 3)],
            closed_cleanly: vec![(20, 5), (40, 1)],
            cut: vec![(40, 2)],
            sent: (0..100)
                .map(|i| (i, if i == 99 { 90 } else { 100 }))
                .collect(),
            echoed: (0..100)
                .map(|i| (i, if i == 99 { 70 } else { 100 }))
                .collect(),
            lost: vec![(20, 10), (40, 5)],
            late: vec![(60, 5)],
            ..WsBuckets::default()
        },
        reconnect_time: LatencySummary {
            count: 8,
            percentiles: vec![
                Percentile { p: 50.0, us: 1_250 },
                Percentile {
                    p: 99.0,
                    us: 40_500,
                },
            ],
            ..LatencySummary::default()
        },
        ..base
    });
    r
}
