//! Tests of scenario parsing and validation: the shipped files and each error kind.

mod command;
mod errors;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reloadbench_model::event::ReloadMode;

use super::*;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_shipped_scenario_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(&path) {
                panic!("{} does not validate:\n{e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(
        seen >= 1,
        "no scenarios found in {}",
        scenarios_dir().display()
    );
}

#[test]
fn seed_has_the_four_seed_cases_and_master_worker() {
    let s = load(&scenarios_dir().join("seed.toml")).unwrap();
    assert_eq!(s.id, "seed");
    let names: Vec<&str> = s.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "normal",
            "restart",
            "reload without socket",
            "reload with socket",
            "master-worker reload"
        ]
    );
    let c = &s.cases[3];
    assert_eq!(c.load.concurrency, 100);
    assert_eq!(c.load.requests, Some(100_000));
    assert!(!c.load.keep_alive);
    assert_eq!(
        c.actions[0].trigger,
        Trigger::Every {
            start: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            count: None
        }
    );
    assert_eq!(
        c.actions[0].what,
        ActionSpec::Reload(ReloadSpec::Reference(ReloadMode::FdPass))
    );
    assert!(!c.master);
    assert!(s.cases[4].master);
    assert_eq!(s.cases[0].expect[0].expr, "failed = 0");
    assert_eq!(s.cases[1].expect[0].expr, "failed > 0");
    assert!(matches!(
        s.origin,
        OriginSpec::BuiltIn {
            body_bytes: 32987,
            ..
        }
    ));
    assert!(matches!(s.proxy, ProxySpec::Reference(_)));
}
