//! End-to-end with WebSockets: the shipped `scenarios/websocket.toml` at
//! small counts (40 clients for 4 s, two reloads a second apart), its
//! fd-pass case with `drain_tunnels = "keep"` and its master-worker case
//! with `"close"`, through `reloadbench run` with real processes. The
//! report's WebSocket counts are loadgen's, and they agree with refproxy's
//! own `tunnels` events (an independent count): with keep, the draining
//! processes relayed every tunnel and cut none, and no client lost a
//! connection or a message; with close, every clean close the clients saw
//! is a 1001 the proxy says it sent, nothing was cut, and every client
//! reconnected.
//!
//! Needs `refproxy` built next to `reloadbench` (`cargo build --workspace --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reloadbench_model::load::LoadReport;
use reloadbench_model::ws::GOING_AWAY;
use support::{reloadbench, scenario_dir};

/// `scenarios/websocket.toml` with its load made small and two reloads
/// per case (none near the load's end); panics if the shipped file no
/// longer has the lines replaced.
fn small_ws_scenario() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/websocket.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut small = text.clone();
    for (from, to) in [
        ("concurrency = 200 ", "concurrency = 40 "),
        ("duration = \"10s\"\n", "duration = \"4s\"\n"),
    ] {
        assert!(
            small.contains(from),
            "scenarios/websocket.toml has no {from:?}"
        );
        small = small.replacen(from, to, 1);
    }
    assert!(small.contains("{ every = \"1s\", do = \"reload\""));
    small.replace(
        "{ every = \"1s\", do = \"reload\"",
        "{ every = \"1s\", count = 2, do = \"reload\"",
    )
}

/// Per generation, the last `tunnels` event's (open, going_away, cut), and
/// the most tunnels any drain started with.
fn tunnels_events(case_dir: &Path) -> (BTreeMap<u64, (u64, u64, u64)>, u64) {
    let text = std::fs::read_to_string(case_dir.join("events.jsonl")).unwrap();
    let mut last = BTreeMap::new();
    let mut most_open = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let e = &v["event"];
        if e["event"] != "tunnels" {
            continue;
        }
        let n = |k: &str| e[k].as_u64().unwrap();
        most_open = most_open.max(n("open"));
        last.insert(n("generation"), (n("open"), n("going_away"), n("cut")));
    }
    (last, most_open)
}

#[test]
fn heavy_ws_scenario_keeps_or_politely_closes_tunnels_across_reloads() {
    let dir = scenario_dir("websocket.toml", &small_ws_scenario());
    let run = reloadbench(
        &dir,
        &[
            "run",
            "websocket.toml",
            "-q",
            "--case",
            "fd-pass, keep",
            "--case",
            "master-worker, close",
        ],
        Duration::from_secs(240),
    );
    run.assert_code(0);
    let r = run.results();
    assert_eq!(r.cases.len(), 2);
    let md = std::fs::read_to_string(run.out.join("report.md")).unwrap();
    assert!(
        md.contains(
            "Load of every case: 40 WebSocket clients, each holding a connection for 4.0 s"
        ),
        "{}",
        md.lines().find(|l| l.starts_with("Load of")).unwrap_or("")
    );
    assert!(md.contains("### WebSocket connections"));
    for (c, (slug, policy)) in r.cases.iter().zip([
        ("01-fd-pass-keep", "keep"),
        ("02-master-worker-close", "close"),
    ]) {
        let case_dir = run.out.join("cases").join(slug);
        let proxy = std::fs::read_to_string(case_dir.join("proxy.toml")).unwrap();
        assert!(
            proxy.contains(&format!("tunnels = \"{policy}\"")),
            "{proxy}"
        );
        // The report's counts are loadgen's own (its loadgen.json).
        let loadgen: LoadReport =
            serde_json::from_slice(&std::fs::read(case_dir.join("loadgen.json")).unwrap()).unwrap();
        let ws = c.load.ws.as_ref().expect("a WebSocket report");
        assert_eq!(Some(ws), loadgen.ws.as_ref(), "{}", c.name);
        assert_eq!(ws.opened, ws.closed_cleanly + ws.cut + ws.open_at_end);
        assert_eq!(ws.sent, ws.echoed + ws.lost + ws.late);
        // A WebSocket load makes no request: no request ledger to balance.
        assert!(c.ledger.is_none(), "{}", c.name);
        let reloads = c.actions.iter().filter(|a| a.ok).count();
        assert_eq!(reloads, 2, "{}: {:?}", c.name, c.actions);
        // Nothing failed to open, nothing was cut, and every client is
        // connected at the end.
        assert_eq!((ws.failed, ws.cut), (0, 0), "{}: {ws:?}", c.name);
        assert_eq!(ws.open_at_end, 40, "{}: {ws:?}", c.name);
        // refproxy's own account of its tunnels.
        let (events, most_open) = tunnels_events(&case_dir);
        let going_away: u64 = events.values().map(|e| e.1).sum();
        let cut: u64 = events.values().map(|e| e.2).sum();
        assert_eq!(cut, 0, "{}: {events:?}", c.name);
        // Every drain of the load's generations started with the clients' tunnels.
        assert!(most_open > 0, "{}: {events:?}", c.name);
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {} | {} |", c.name, ws.opened)))
            .unwrap_or_else(|| panic!("no WebSocket row for {}", c.name));
        assert!(row.contains(&format!("| {} |", ws.sent)), "{row}");
        if policy == "keep" {
            // Tunnels ran on through the drains: no close, no loss.
            assert_eq!((ws.closed_cleanly, ws.lost), (0, 0), "{ws:?}");
            assert_eq!(going_away, 0, "{events:?}");
            assert_eq!(ws.opened, 40, "{ws:?}");
            // The generation holding the tunnels outlived the reloads.
            assert!(
                c.old_generations_max >= Some(1),
                "{:?}",
                c.old_generations_max
            );
        } else {
            // Each reload closed every client's tunnel with 1001, which the
            // proxy counted; every client reconnected to the new generation.
            assert_eq!(ws.closed_with(GOING_AWAY), ws.closed_cleanly, "{ws:?}");
            assert_eq!(ws.closed_cleanly, going_away, "{ws:?} vs {events:?}");
            assert_eq!(ws.closed_cleanly, 2 * 40, "{ws:?}");
            assert_eq!(ws.opened, 40 + ws.closed_cleanly, "{ws:?}");
            assert_eq!(ws.reconnect_time.count, ws.closed_cleanly, "{ws:?}");
        }
    }
    run.assert_no_process_left();
}
