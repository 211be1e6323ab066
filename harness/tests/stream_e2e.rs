//! End-to-end with streamed responses (`kind = "stream"`): 10 clients
//! requesting the origin's `/stream?seconds=2&interval=100` through
//! refproxy, reloaded (fd-pass) every second. A stream is longer than the
//! time between reloads, so whenever it starts, a reload comes while at least
//! a second of it is left: with a drain deadline of 300 ms, each reload cuts
//! the streams of the old process, whatever the machine's speed (a 1 s
//! stream, as long as the period, could end just after each reload, in phase
//! with it, and none be cut). The
//! report's `truncated` responses are loadgen's, and as many as refproxy
//! says it cut at its deadlines with a response in progress (`cut` in its
//! `drained` events, an independent count: one request per connection).
//! `forced` is not that count: it also counts connections whose response was
//! all written and which were lingering for the client's close at the
//! deadline. With a long deadline every stream completes.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reloadbench_model::load::LoadReport;
use reloadbench_model::outcome::FailureClass;
use support::{reloadbench, scenario_dir};

const SCENARIO: &str = r#"
name = "stream"
[load]
kind = "stream"
path = "/stream?seconds=2&interval=100"
concurrency = 10
duration = "4s"
timeout = "5s"
[proxy]
drain_deadline = "300ms"
[[case]]
name = "short drain"
actions = [{ every = "1s", count = 3, do = "reload", mode = "fd-pass" }]
expect = { truncated = "> 0" }
[[case]]
name = "long drain"
proxy = { drain_deadline = "10s" }
actions = [{ every = "1s", count = 3, do = "reload", mode = "fd-pass" }]
expect = { truncated = 0, failed = 0 }
"#;

#[test]
fn heavy_stream_scenario_counts_responses_cut_by_the_drain_deadline_as_truncated() {
    let dir = scenario_dir("stream.toml", SCENARIO);
    let run = reloadbench(
        &dir,
        &["run", "stream.toml", "-q"],
        Duration::from_secs(120),
    );
    run.assert_code(0);
    let r = run.results();
    assert_eq!(r.cases.len(), 2);
    for (c, slug) in r.cases.iter().zip(["01-short-drain", "02-long-drain"]) {
        let case_dir = run.out.join("cases").join(slug);
        let loadgen: LoadReport =
            serde_json::from_slice(&std::fs::read(case_dir.join("loadgen.json")).unwrap()).unwrap();
        let stream = c.load.stream.as_ref().expect("a stream report");
        assert_eq!(Some(stream), loadgen.stream.as_ref(), "{}", c.name);
        assert_eq!(c.failed_of(FailureClass::Truncated), stream.truncated);
        assert_eq!(stream.complete, c.load.ok, "{}", c.name);
        // The origin does not count streamed responses: no request ledger.
        assert!(c.ledger.is_none(), "{}", c.name);
        // refproxy's own count of the connections it cut at a deadline with a
        // response in progress; a connection lingering after a whole response
        // is forced too, but not cut.
        let events = std::fs::read_to_string(case_dir.join("events.jsonl")).unwrap();
        let drained: Vec<serde_json::Value> = events
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event"]["event"] == "drained")
            .collect();
        let sum = |k: &str| -> u64 {
            drained
                .iter()
                .map(|v| v["event"][k].as_u64().unwrap())
                .sum()
        };
        let (forced, cut) = (sum("forced"), sum("cut"));
        assert_eq!(stream.truncated, cut, "{}: forced {forced}", c.name);
        assert!(cut <= forced, "{}: cut {cut}, forced {forced}", c.name);
        assert!(stream.complete > 0, "{}: {stream:?}", c.name);
    }
    let (short, long) = (&r.cases[0], &r.cases[1]);
    let truncated =
        |c: &reloadbench_model::run::CaseReport| c.load.stream.as_ref().unwrap().truncated;
    assert!(truncated(short) > 0);
    assert_eq!(truncated(long), 0);
    run.assert_no_process_left();
}
