//! Case names in the report's sentences (ledger and kernel lines, the
//! action sections) are escaped for markdown, and the trials of a repeated
//! case are told apart by their label.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::render_markdown;

#[test]
fn a_hostile_case_name_does_not_break_the_ledger_lines() {
    let mut run = support::fixture();
    run.cases[2].name = "naive <script>x</script>\n## injected | cell".into();
    let md = render_markdown(&run);
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.contains("\n## injected"), "{md}");
    let ledger = md.split("## Ledger").nth(1).unwrap();
    assert!(
        ledger.contains("- naive &lt;script>x&lt;/script> ## injected \\| cell: "),
        "{ledger}"
    );
}

#[test]
fn trials_of_a_repeated_case_are_named_with_their_trial() {
    let mut run = support::fixture();
    for (i, c) in run.cases.iter_mut().enumerate() {
        c.name = "same".into();
        c.trial = Some(i as u32 + 1);
    }
    let md = render_markdown(&run);
    let ledger = md.split("## Ledger").nth(1).unwrap();
    let with_ledger: Vec<u32> = run
        .cases
        .iter()
        .filter(|c| c.ledger.is_some())
        .filter_map(|c| c.trial)
        .collect();
    assert!(with_ledger.len() >= 2);
    for t in with_ledger {
        assert!(
            ledger.contains(&format!("- same · trial {t}: ")),
            "{ledger}"
        );
    }
    let html = String::from_utf8(HtmlExporter.render(&run).unwrap()).unwrap();
    assert!(html.contains("same · trial 2"), "trial labels in the page");
}
