//! The "Actions" section, bounded: a case with up to
//! [`FULL_TABLE_MAX`] actions gets its full
//! per-action table (as it always did); a longer one gets a summary (how many
//! actions, ok or failed, failures attributed, percentiles of each phase) and
//! its [`WORST_SHOWN`] worst actions, and says
//! where the full table is (`actions.csv`, and a collapsed section of
//! `report.html`). Rendered by [`markdown`] and [`html`], one call each from
//! the exporters.

use std::fmt::Write as _;

use reloadbench_model::ledger::thousands;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{CaseReport, RunReport};
use reloadbench_model::words::noun;

use super::actions::{actions, actions_rows, count_of};
use crate::bounded::{FULL_TABLE_MAX, WORST_ORDER, WORST_SHOWN, counted, is_long, worst};
use crate::export::glossary;
use crate::export::grid::{Align, Table, escape_html, markdown_cell as md};
use crate::export::markdown::ACTIONS_LEGEND;
use crate::summary::{fmt_opt_ns_ms, nearest_rank};

/// The section in markdown; empty when no case has actions.
pub fn markdown(report: &RunReport) -> String {
    let mut w = String::new();
    if report.cases.iter().all(|c| c.actions.is_empty()) {
        return w;
    }
    let _ = writeln!(w, "## Actions\n");
    let _ = writeln!(w, "{ACTIONS_LEGEND}\n");
    if super::methods::any_post(report) {
        let _ = writeln!(w, "{}\n", super::methods::POST_LEGEND);
    }
    for case in report.cases.iter().filter(|c| !c.actions.is_empty()) {
        let _ = writeln!(w, "### {}\n", md(&case.label()));
        if let Some(head) = glossary::case_head_markdown(case) {
            let _ = writeln!(w, "{head}");
        }
        if !is_long(case.actions.len()) {
            if let Some(t) = actions(case) {
                let _ = writeln!(w, "{}", t.to_markdown());
            }
            continue;
        }
        let _ = writeln!(w, "{}\n", summary_line(case));
        let _ = writeln!(w, "{}", phases(case).to_markdown());
        let _ = writeln!(w, "{}\n", worst_heading(case));
        let _ = writeln!(w, "{}", actions_rows(case, &worst(case)).to_markdown());
        let _ = writeln!(w, "{}\n", where_full(case, "actions.csv and report.html"));
    }
    w
}

/// The section in HTML; empty when no case has actions. A long case has the
/// same summary as in markdown, then its full table in a collapsed
/// `<details>` element.
pub fn html(report: &RunReport) -> String {
    let mut h = String::new();
    if report.cases.iter().all(|c| c.actions.is_empty()) {
        return h;
    }
    let _ = writeln!(
        h,
        "<h2>Actions</h2>\n<p class=\"note\">{}</p>",
        escape_html(&ACTIONS_LEGEND.replace('`', ""))
    );
    if super::methods::any_post(report) {
        let _ = writeln!(
            h,
            "<p class=\"note\">{}</p>",
            escape_html(super::methods::POST_LEGEND)
        );
    }
    // Each case in a block the page's script finds it by (`data-actions-case`:
    // the case's position in the run).
    for (i, case) in report.cases.iter().enumerate() {
        let Some(full) = actions(case) else { continue };
        let head = glossary::case_head_html(case).unwrap_or_default();
        let _ = writeln!(
            h,
            "<div data-actions-case=\"{i}\">\n<h3>{}</h3>\n{head}",
            escape_html(&case.label())
        );
        if !is_long(case.actions.len()) {
            let _ = writeln!(h, "{}</div>", full.to_html());
            continue;
        }
        let _ = writeln!(
            h,
            "<p>{}</p>\n{}<p>{}</p>\n{}<p class=\"note\">{}</p>",
            escape_html(&summary_line(case)),
            phases(case).to_html(),
            escape_html(&worst_heading(case)),
            actions_rows(case, &worst(case)).to_html(),
            escape_html(&where_full(case, "actions.csv and below"))
        );
        let _ = writeln!(
            h,
            "<details><summary>All {} of {}</summary>\n{}</details>\n</div>",
            counted(case.actions.len() as u64, "action"),
            escape_html(&case.label()),
            compact_html(&full)
        );
    }
    h
}

/// [`Table::to_html`] for thousands of rows: the table has class `all`, whose
/// cells are right-aligned by the page's style, so only a cell of another
/// alignment carries a class (a third of the bytes of a row).
fn compact_html(t: &Table) -> String {
    let class = |a: Align| match a {
        Align::Left => " class=\"l\"",
        Align::Right => "",
        Align::Center => " class=\"c\"",
    };
    let mut out = String::from("<table class=\"all\">\n<thead><tr>");
    for (h, &a) in t.header.iter().zip(&t.align) {
        let _ = write!(out, "<th{}>{}</th>", class(a), escape_html(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (c, &a) in row.iter().zip(&t.align) {
            let _ = write!(out, "<td{}>{}</td>", class(a), escape_html(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// `1,000 actions: 998 ok, 2 failed; 1,234 failures attributed to 20 of
/// them (connect refused 1,200, reset 34).`
pub fn summary_line(case: &CaseReport) -> String {
    let n = case.actions.len() as u64;
    let ok = case.actions.iter().filter(|a| a.ok).count() as u64;
    let attributed: u64 = case.actions.iter().map(|a| a.failed_total()).sum();
    let with = case.actions.iter().filter(|a| a.failed_total() > 0).count() as u64;
    let mut s = format!(
        "{} {}: {} ok, {} failed; ",
        thousands(n),
        noun(n, "action"),
        thousands(ok),
        thousands(n - ok)
    );
    if attributed == 0 {
        s.push_str("no failure attributed to any of them.");
        return s;
    }
    let classes: Vec<String> = FailureClass::ALL
        .into_iter()
        .filter_map(|c| {
            let k: u64 = case.actions.iter().map(|a| count_of(a, c)).sum();
            (k > 0).then(|| format!("{} {}", c.label(), thousands(k)))
        })
        .collect();
    let _ = write!(
        s,
        "{} {} attributed to {} of them ({}).",
        thousands(attributed),
        noun(attributed, "failure"),
        thousands(with),
        classes.join(", ")
    );
    s
}

/// Percentiles of the reported phases over the actions that have them.
pub fn phases(case: &CaseReport) -> Table {
    let since = |f: fn(&reloadbench_model::run::ActionReport) -> Option<u64>| -> Vec<u64> {
        case.actions
            .iter()
            .filter_map(|a| f(a).map(|t| t.saturating_sub(a.trigger_ns)))
            .collect()
    };
    percentile_table(
        "phase (ms after the trigger)",
        "actions",
        vec![
            ("trigger → ready", since(|a| a.ready_ns)),
            ("trigger → drained", since(|a| a.drained_ns)),
            ("trigger → exited", since(|a| a.exited_ns)),
        ],
    )
}

/// One row per phase: how many actions have it, then p50, p90, p99 and max
/// of its durations (ns, shown as ms), `–` when none has it.
pub fn percentile_table(first: &str, with: &str, rows: Vec<(&str, Vec<u64>)>) -> Table {
    let mut t = Table::new(&[
        (first, Align::Left),
        (with, Align::Right),
        ("p50", Align::Right),
        ("p90", Align::Right),
        ("p99", Align::Right),
        ("max", Align::Right),
    ]);
    for (name, mut v) in rows {
        v.sort_unstable();
        t.push(vec![
            name.to_owned(),
            thousands(v.len() as u64),
            fmt_opt_ns_ms(nearest_rank(&v, 50.0)),
            fmt_opt_ns_ms(nearest_rank(&v, 90.0)),
            fmt_opt_ns_ms(nearest_rank(&v, 99.0)),
            fmt_opt_ns_ms(v.last().copied()),
        ]);
    }
    t
}

/// The line above the worst actions' table.
pub fn worst_heading(case: &CaseReport) -> String {
    format!(
        "The worst {} of {} actions ({WORST_ORDER}):",
        WORST_SHOWN.min(case.actions.len()),
        thousands(case.actions.len() as u64)
    )
}

/// The sentence that states the cut-off and where the full table is.
fn where_full(case: &CaseReport, place: &str) -> String {
    let n = thousands(case.actions.len() as u64);
    format!(
        "A case with more than {FULL_TABLE_MAX} actions is summarised here and only its \
         {WORST_SHOWN} worst are listed; the full table of all {n} actions is in {place}."
    )
}
