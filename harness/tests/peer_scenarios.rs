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
