//! Tests of scenario parsing and validation: the shipped files and each error kind.

mod command;
mod errors;
mod external;
mod requests;
mod websocket;

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

const REPEAT_CASES: &str = "[load]\nconcurrency = 1\nrequests = 10\n\
                            [[case]]\nname = \"a\"\n[[case]]\nname = \"b\"\nrepeat = 4\n";

#[test]
fn repeat_is_read_at_the_top_in_run_and_per_case() {
    let p = Path::new("s.toml");
    let reps = |text: &str| -> Vec<u32> {
        parse_str(p, text)
            .unwrap()
            .cases
            .iter()
            .map(|c| c.repeat)
            .collect()
    };
    assert_eq!(reps(REPEAT_CASES), [1, 4], "default 1, the case's own");
    assert_eq!(reps(&format!("repeat = 3\n{REPEAT_CASES}")), [3, 4]);
    assert_eq!(reps(&format!("[run]\nrepeat = 2\n{REPEAT_CASES}")), [2, 4]);
}

#[test]
fn repeat_out_of_range_or_set_twice_is_an_error_with_its_place() {
    let p = Path::new("s.toml");
    for (text, field) in [
        (format!("repeat = 0\n{REPEAT_CASES}"), "repeat"),
        (format!("[run]\nrepeat = 101\n{REPEAT_CASES}"), "run.repeat"),
        (
            REPEAT_CASES.replace("repeat = 4", "repeat = -1"),
            "case[1].repeat",
        ),
    ] {
        let e = parse_str(p, &text).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "{field}: must be a whole number of trials from 1 to 100"
            )),
            "{e}"
        );
    }
    let e = parse_str(p, &format!("repeat = 2\n[run]\nrepeat = 2\n{REPEAT_CASES}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("set it once"), "{e}");
}
