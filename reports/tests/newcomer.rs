//! What a first-time reader needs: counted nouns, what each failure class
//! means next to its first use, what each case does, how many connections
//! the clients opened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_model::outcome::FailureClass;
use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::export::json::JsonExporter;
use reloadbench_reports::{parse_results, render_markdown};

fn html(run: &reloadbench_reports::RunReport) -> String {
    String::from_utf8(HtmlExporter.render(run).unwrap()).unwrap()
}

#[test]
fn one_expectation_is_singular() {
    let mut run = support::fixture();
    for case in &mut run.cases {
        case.expectations.truncate(0);
    }
    run.cases[0]
        .expectations
        .push(reloadbench_model::run::ExpectationResult {
            expr: "failed = 0".into(),
            actual: Some(0.0),
            passed: true,
        });
    let md = render_markdown(&run);
    assert!(
        md.contains("**Result: ✅ passed** (1 expectation held)"),
        "{md}"
    );
    assert!(!md.contains("1 expectations"), "{md}");
}

#[test]
fn every_failure_class_of_the_run_is_explained_right_after_the_failures_table() {
    let run = support::fixture();
    let md = render_markdown(&run);
    let classes: Vec<FailureClass> = FailureClass::ALL
        .into_iter()
        .filter(|&c| run.cases.iter().any(|case| case.failed_of(c) > 0))
        .collect();
    assert!(!classes.is_empty());
    let failures = md.find("## Failures and reloads").unwrap();
    let next = failures + md[failures..].find("\n## Expectations").unwrap();
    let section = &md[failures..next];
    for class in &classes {
        let line = format!("- **{}**: {}", class.label(), class.meaning());
        assert!(section.contains(&line), "{line} not in\n{section}");
    }
    // Classes that did not occur are not explained.
    let absent = FailureClass::ALL
        .into_iter()
        .find(|c| !classes.contains(c))
        .unwrap();
    assert!(!md.contains(absent.meaning()), "{absent:?}");
    let page = html(&run);
    for class in &classes {
        assert!(
            page.contains(class.meaning()),
            "{class:?} not in report.html"
        );
    }
}

#[test]
fn each_case_description_heads_its_section_in_markdown_and_html() {
    let run = support::fixture();
    let md = render_markdown(&run);
    let page = html(&run);
    for case in &run.cases {
        assert!(!case.description.is_empty(), "fixture has descriptions");
        let listed = format!("- **{}**: {}", case.name, case.description);
        assert!(md.contains(&listed), "{listed}");
        if !case.actions.is_empty() {
            let head = format!("### {}\n\n*{}*\n", case.name, case.description);
            assert!(md.contains(&head), "{head}");
        }
        assert!(page.contains(&case.description), "{}", case.name);
    }
}

#[test]
fn results_json_keeps_each_case_description() {
    let run = support::fixture();
    let json = String::from_utf8(JsonExporter.render(&run).unwrap()).unwrap();
    let back = parse_results(std::path::Path::new("results.json"), &json).unwrap();
    assert_eq!(back.cases[1].description, run.cases[1].description);
    assert!(json.contains("\"description\": \"stop the proxy, then start a new one"));
}

#[test]
fn the_summary_and_the_ab_text_say_how_many_connections_were_opened() {
    let mut run = support::fixture();
    run.cases[1].load.connections = 4321;
    let md = render_markdown(&run);
    let summary = &md[md.find("## Summary").unwrap()..md.find("## Failures").unwrap()];
    assert!(summary.contains("| connections |"), "{summary}");
    assert!(summary.contains("| 4321 |"), "{summary}");
    let ab = reloadbench_reports::ab_text(&run.cases[1]);
    assert!(
        ab.contains(
            "Connections opened:     4321 (reloadbench only: ab and wrk do not count them)"
        ),
        "{ab}"
    );
}
