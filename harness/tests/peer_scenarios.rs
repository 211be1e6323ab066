//! The peer matrix's scenarios (`scenarios/peers/*.toml`): each validates,
//! and each case puts the server through the same load: c=100, 100,000
//! requests, at least 10 restarts or reloads, and every replacement both
//! without and with keep-alive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/peers")
}

fn peer_scenarios() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(peers_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_peer_scenario_validates() {
    let files = peer_scenarios();
    // refproxy and the nine servers of the table.
    assert_eq!(files.len(), 10, "{files:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_reloadbench"))
        .arg("validate")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_peer_case_runs_the_matrix_load_with_ten_replacements() {
    for file in peer_scenarios() {
        let doc: toml::Table = std::fs::read_to_string(&file).unwrap().parse().unwrap();
        let load = doc["load"].as_table().unwrap();
        assert_eq!(load["concurrency"].as_integer(), Some(100), "{file:?}");
        assert_eq!(load["requests"].as_integer(), Some(100_000), "{file:?}");
        assert_eq!(load["keep_alive"].as_bool(), Some(false), "{file:?}");
        let cases = doc["case"].as_array().unwrap();
        let mut plain = Vec::new();
        let mut kept = Vec::new();
        for case in cases {
            let case = case.as_table().unwrap();
            let name = case["name"].as_str().unwrap();
            let replacements = case["actions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| {
                    matches!(
                        a.get("do").and_then(|d| d.as_str()),
                        Some("restart" | "reload")
                    )
                })
                .count();
            assert!(replacements >= 10, "{file:?} {name}: {replacements}");
            let keep_alive = case
                .get("load")
                .and_then(|l| l.get("keep_alive"))
                .and_then(|k| k.as_bool())
                .unwrap_or(false);
            if keep_alive {
                kept.push(name.trim_end_matches(", keep-alive").to_owned());
            } else {
                plain.push(name.to_owned());
            }
        }
        assert_eq!(
            plain, kept,
            "{file:?}: every replacement without and with keep-alive"
        );
    }
}

/// One made-up case: name, keep-alive, ok, failed, failure classes with
/// counts, and actions as (trigger ns, failures attributed to it).
type FakeCase<'a> = (
    &'a str,
    bool,
    u64,
    u64,
    &'a [(&'a str, u64)],
    &'a [(u64, u64)],
);

/// A results.json with the fields scripts/lib/peer_matrix.py reads.
fn fake_results(cases: &[FakeCase<'_>]) -> String {
    let cases: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, keep_alive, ok, failed, classes, actions)| {
            serde_json::json!({
                "name": name,
                "error": null,
                "load": {
                    "ok": ok,
                    "failed": failed,
                    "elapsed_ns": 2_000_000_000u64,
                    "config": { "keep_alive": keep_alive },
                    "classes": classes.iter().map(|(c, n)| serde_json::json!({"class": c, "count": n})).collect::<Vec<_>>(),
                },
                "actions": actions.iter().map(|(trigger, attributed)| serde_json::json!({
                    "kind": "reload",
                    "ok": true,
                    "trigger_ns": trigger,
                    "failures": [{"class": "reset", "count": attributed}],
                    "observed": {
                        "new_listening_ns": trigger + 10_000_000,
                        "old_stopped_accepting_ns": trigger + 30_000_000,
                        "old_exited_ns": null,
                    },
                })).collect::<Vec<_>>(),
                "expectations": [{"expr": "failed = 0", "actual": *failed as f64, "passed": *failed == 0}],
            })
        })
        .collect();
    serde_json::json!({
        "started_at": "2026-01-01T00:00:00Z",
        "environment": {
            "kernel": "Linux test", "hostname": "h", "cpus": 2, "fd_limit": 1024,
            "sysctls": {}, "versions": {"srv": "srv 1.0\nmore"}, "git_sha": "abc",
        },
        "cases": cases,
    })
    .to_string()
}

#[test]
fn peer_matrix_page_counts_per_100k_and_per_reload_and_keeps_the_notes() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(runs.join("nginx")).unwrap();
    std::fs::write(
        runs.join("nginx/results.json"),
        fake_results(&[
            // 50 failed of 200,000 done, 2 reloads: 25 per 100k, 25 per reload,
            // 30 of them attributed; new listening 10 ms, old stopped 30 ms.
            (
                "HUP",
                false,
                199_950,
                50,
                &[("reset", 40), ("closed", 10)],
                &[(1_000_000_000, 10), (2_000_000_000, 20)],
            ),
            (
                "HUP, keep-alive",
                true,
                100_000,
                0,
                &[],
                &[(1_000_000_000, 0)],
            ),
        ]),
    )
    .unwrap();
    std::fs::write(runs.join("nginx.wall_s"), "42\n").unwrap();
    let page = dir.path().join("peers.md");
    std::fs::write(
        &page,
        "old\n<!-- notes:nginx -->\nKept by hand.\n<!-- /notes:nginx -->\n",
    )
    .unwrap();
    let readme = dir.path().join("README.md");
    std::fs::write(
        &readme,
        "a\n<!-- peer-summary -->\nstale\n<!-- /peer-summary -->\nb\n",
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("python3")
        .arg(root.join("scripts/lib/peer_matrix.py"))
        .arg("--runs")
        .arg(&runs)
        .arg("--out")
        .arg(&page)
        .arg("--readme")
        .arg(&readme)
        .args(["nginx", "h2o"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&page).unwrap();
    // server | replacement | keep-alive | actions | per 100k | per reload | attributed | classes | phases
    assert!(
        text.contains(
            "| nginx | HUP | no | 2 | 25 | 25 | 30 of 50 | reset 40, closed 10 | 10 / 30 / – |"
        ),
        "{text}"
    );
    assert!(
        text.contains("|  | HUP | yes | 1 | 0 | 0 | 0 of 0 | – |"),
        "{text}"
    );
    assert!(text.contains("| h2o | not run |"), "{text}");
    assert!(text.contains("| Envoy | not measured"), "{text}");
    assert!(
        text.contains("<!-- notes:nginx -->\nKept by hand.\n<!-- /notes:nginx -->"),
        "{text}"
    );
    assert!(
        text.contains("<!-- notes:h2o -->\n_(to be written"),
        "{text}"
    );
    assert!(text.contains("the run took 42 s"), "{text}");
    let readme = std::fs::read_to_string(&readme).unwrap();
    assert!(
        readme.starts_with("a\n<!-- peer-summary -->\n| server |"),
        "{readme}"
    );
    assert!(readme.contains("| nginx | HUP | 25 | 0 |"), "{readme}");
    assert!(!readme.contains("stale"), "{readme}");
    assert!(readme.ends_with("<!-- /peer-summary -->\nb\n"), "{readme}");
}
