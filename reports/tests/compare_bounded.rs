//! `compare` of long runs stays short: a case with thousands of actions
//! lists at most `bounded::LIST_MAX` action rows, the most severe first, and
//! folds the rest into one row that keeps their worst verdict, so a
//! regression at any action still fails the gate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{ClassTotal, RunReport};
use reloadbench_reports::bounded::LIST_MAX;
use reloadbench_reports::synthetic::{Shape, run};
use reloadbench_reports::{CompareOptions, GateVerdict, compare_with};

/// Two naive-reload cases of 1,000 actions, every action losing requests.
fn long_run() -> RunReport {
    let mut r = run(Shape {
        cases: 2,
        buckets: 600,
        actions: 1_000,
        failing_every: 1,
    });
    r.cases.remove(0); // keep the naive case (index 1 of the synthetic modes)
    r.cases[0].expectations.clear();
    r
}

fn action_rows(md: &str) -> Vec<&str> {
    md.lines()
        .filter(|l| l.contains("| failed: action "))
        .collect()
}

#[test]
fn the_same_long_run_lists_at_most_ten_action_rows_and_folds_the_rest() {
    let base = long_run();
    let c = compare_with(&base, &base, &CompareOptions::default()).unwrap();
    assert_eq!(action_rows(&c.markdown).len(), LIST_MAX, "{}", c.markdown);
    let folded: Vec<&str> = c
        .markdown
        .lines()
        .filter(|l| l.contains("| failed: 990 more actions |"))
        .collect();
    assert_eq!(folded.len(), 1, "{}", c.markdown);
    assert!(folded[0].contains("each tested as above"), "{}", folded[0]);
    assert_eq!(c.verdict, GateVerdict::Ok, "{}", c.markdown);
    assert!(c.markdown.len() < 20_000, "{} bytes", c.markdown.len());
}

#[test]
fn a_regression_at_one_action_of_a_thousand_is_listed_first_and_fails_the_gate() {
    let base = long_run();
    let mut new = base.clone();
    let worst = 733;
    let a = &mut new.cases[0].actions[worst];
    a.failures = vec![ClassTotal {
        class: FailureClass::Reset,
        count: 100_000,
    }];
    let c = compare_with(&base, &new, &CompareOptions::default()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed, "{}", c.markdown);
    let rows = action_rows(&c.markdown);
    assert_eq!(rows.len(), LIST_MAX);
    assert!(
        rows[0].contains(&format!("failed: action {worst} ")) && rows[0].contains("regressed"),
        "{}",
        rows[0]
    );
}

#[test]
fn regressions_beyond_the_listed_rows_are_carried_by_the_folded_row() {
    let base = long_run();
    let mut new = base.clone();
    for i in 0..LIST_MAX + 2 {
        new.cases[0].actions[i * 50].failures = vec![ClassTotal {
            class: FailureClass::Reset,
            count: 100_000,
        }];
    }
    let c = compare_with(&base, &new, &CompareOptions::default()).unwrap();
    assert_eq!(c.verdict, GateVerdict::Regressed);
    assert!(
        action_rows(&c.markdown)
            .iter()
            .all(|r| r.contains("regressed")),
        "{}",
        c.markdown
    );
    let folded = c
        .markdown
        .lines()
        .find(|l| l.contains("| failed: 990 more actions |"))
        .unwrap();
    assert!(
        folded.contains("❌ regressed") && folded.contains("2 ❌ regressed, "),
        "{folded}"
    );
    // The headline counts every regressed action, folded or not.
    assert!(
        c.markdown
            .contains(&format!("**❌ regressed** in {} row(s).", LIST_MAX + 2)),
        "{}",
        c.markdown
    );
}
