//! Words a newcomer needs next to the tables: what each case does (its
//! `description` from the scenario) and what each failure class means (one
//! sentence from [`FailureClass::meaning`]), in markdown and HTML.

use std::fmt::Write as _;

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{CaseReport, RunReport};

use super::grid::{escape_html, markdown_cell as md};
use crate::summary::classes_present;

/// `- **case**: description` for every case that has a description; `None`
/// when none has.
pub fn cases_markdown(report: &RunReport) -> Option<String> {
    let mut s = String::new();
    for case in report.cases.iter().filter(|c| !c.description.is_empty()) {
        let _ = writeln!(s, "- **{}**: {}", md(&case.name), md(&case.description));
    }
    (!s.is_empty()).then_some(s)
}

/// [`cases_markdown`] as an HTML list.
pub fn cases_html(report: &RunReport) -> Option<String> {
    let items: Vec<String> = report
        .cases
        .iter()
        .filter(|c| !c.description.is_empty())
        .map(|c| {
            format!(
                "<li><strong>{}</strong>: {}</li>",
                escape_html(&c.name),
                escape_html(&c.description)
            )
        })
        .collect();
    (!items.is_empty()).then(|| format!("<ul class=\"note\">\n{}\n</ul>", items.join("\n")))
}

/// The case's description as an italic line for the head of its section.
pub fn case_head_markdown(case: &CaseReport) -> Option<String> {
    (!case.description.is_empty()).then(|| format!("*{}*\n", md(&case.description)))
}

/// [`case_head_markdown`] as an HTML paragraph.
pub fn case_head_html(case: &CaseReport) -> Option<String> {
    (!case.description.is_empty()).then(|| {
        format!(
            "<p class=\"note\"><em>{}</em></p>",
            escape_html(&case.description)
        )
    })
}

/// The failure classes that occur in the run, each with its meaning, as a
/// markdown list; `None` when nothing failed.
pub fn classes_markdown(report: &RunReport) -> Option<String> {
    let classes = classes_present(report);
    if classes.is_empty() {
        return None;
    }
    let mut s = String::from("Failure classes in this run:\n\n");
    for class in classes {
        let _ = writeln!(s, "- **{}**: {}", class.label(), class.meaning());
    }
    Some(s)
}

/// [`classes_markdown`] as an HTML list.
pub fn classes_html(report: &RunReport) -> Option<String> {
    let classes: Vec<FailureClass> = classes_present(report);
    if classes.is_empty() {
        return None;
    }
    let items: Vec<String> = classes
        .iter()
        .map(|c| {
            format!(
                "<li><strong>{}</strong>: {}</li>",
                escape_html(c.label()),
                escape_html(c.meaning())
            )
        })
        .collect();
    Some(format!(
        "<p class=\"note\">Failure classes in this run:</p>\n<ul class=\"note\">\n{}\n</ul>",
        items.join("\n")
    ))
}
