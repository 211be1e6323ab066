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

mod charts {
    use reloadbench_reports::export::chart::{Chart, render_svg};

    use super::support;

    /// `points` of every `<polyline>` with `stroke`, in document order.
    fn polylines<'a>(svg: &'a str, stroke: &str) -> Vec<(usize, &'a str)> {
        let needle = format!("stroke=\"{stroke}\"");
        svg.match_indices("<polyline")
            .filter_map(|(at, _)| {
                let tag = &svg[at..at + svg[at..].find('>').unwrap()];
                tag.contains(&needle).then(|| {
                    let p = tag.find("points=\"").unwrap() + 8;
                    (at, &tag[p..p + tag[p..].find('"').unwrap()])
                })
            })
            .collect()
    }

    #[test]
    fn the_last_partial_bucket_is_not_drawn_as_a_collapse_of_throughput() {
        let run = support::fixture();
        let normal = &run.cases[0].load;
        let last = normal.buckets.last().unwrap();
        assert!(
            normal.elapsed_ns < last.start_ns + normal.config.bucket_ns(),
            "the fixture's last bucket is partial"
        );
        let svg = render_svg(Chart::Timeline, &run).unwrap();
        let rps = polylines(&svg, "#2B2B6B");
        let first = rps
            .first()
            .expect("the requests/s line of the first panel")
            .1;
        assert_eq!(
            first.split_whitespace().count(),
            normal.buckets.len() - 1,
            "one point per full bucket"
        );
    }

    #[test]
    fn ready_lines_are_drawn_under_the_trigger_lines_and_wider() {
        let run = support::fixture();
        let svg = render_svg(Chart::Timeline, &run).unwrap();
        let ready = polylines(&svg, "#2CA02C");
        let trigger = polylines(&svg, "#303030");
        assert!(!ready.is_empty() && !trigger.is_empty());
        // Per panel the ready lines come first (drawn under), so the thin dark
        // trigger line stays visible on top of a wide green one a pixel away.
        assert!(
            ready[0].0 < trigger[0].0,
            "first ready line before first trigger"
        );
        let ready_tag = &svg[ready[0].0..ready[0].0 + 200];
        assert!(ready_tag.contains("stroke-width=\"2\""), "{ready_tag}");
        assert!(
            svg.contains("<polygon opacity=\"1\" fill=\"#2CA02C\""),
            "a green flag marks each ready line"
        );
    }
}
