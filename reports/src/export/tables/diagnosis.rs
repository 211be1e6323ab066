//! The "Diagnosis" section: per case, its description and the sentences of
//! its diagnosis ([`crate::diagnose`]), as markdown and HTML.

use std::fmt::Write as _;

use reloadbench_model::diagnosis::Finding;
use reloadbench_model::run::{CaseReport, RunReport};

use crate::export::grid::{escape_html, markdown_cell};

/// The findings shown for a case: computed from its evidence each time the
/// report is rendered (so `reloadbench report DIR` reads old runs with the
/// current rules); the run also keeps them in `results.json`.
fn findings(case: &CaseReport) -> Vec<Finding> {
    crate::diagnose(case)
}

/// The cases that have something to say.
fn cases(report: &RunReport) -> Vec<(&CaseReport, Vec<Finding>)> {
    report
        .cases
        .iter()
        .map(|c| (c, findings(c)))
        .filter(|(_, f)| !f.is_empty())
        .collect()
}

const INTRO: &str = "Why requests failed, or why none did, written from this run's evidence \
    (failures attributed to actions, the listening sockets seen from the kernel, kernel \
    counters, the ledger); what the evidence does not explain is said to be unexplained.";

/// The section in markdown (empty when no case has findings).
pub fn markdown(report: &RunReport) -> String {
    let cases = cases(report);
    if cases.is_empty() {
        return String::new();
    }
    let mut w = format!("## Diagnosis\n\n{INTRO}\n\n");
    for (case, findings) in cases {
        let _ = writeln!(w, "**{}**", markdown_cell(&case.label()));
        if !case.description.is_empty() {
            let _ = writeln!(w, "*{}*", markdown_cell(&case.description));
        }
        w.push('\n');
        for f in findings {
            let _ = writeln!(w, "- {}", markdown_cell(&f.text));
        }
        w.push('\n');
    }
    w
}

/// The section in HTML (empty when no case has findings).
pub fn html(report: &RunReport) -> String {
    let cases = cases(report);
    if cases.is_empty() {
        return String::new();
    }
    let mut h = format!(
        "<h2>Diagnosis</h2>\n<p class=\"note\">{}</p>\n",
        escape_html(INTRO)
    );
    for (case, findings) in cases {
        let _ = writeln!(h, "<h3>{}</h3>", escape_html(&case.label()));
        if !case.description.is_empty() {
            let _ = writeln!(h, "<p><em>{}</em></p>", escape_html(&case.description));
        }
        h.push_str("<ul>\n");
        for f in findings {
            let _ = writeln!(h, "<li>{}</li>", escape_html(&f.text));
        }
        h.push_str("</ul>\n");
    }
    h
}
