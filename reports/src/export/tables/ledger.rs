//! The "Ledger" section: per case, what the client, the proxy and the origin
//! counted, the failed requests that reached the origin (lost after forwarding),
//! and every equality that does not balance, flagged (see
//! `reloadbench_model::ledger`). Rendered to markdown and HTML from the same
//! [`Table`] and lines; per-action and per-generation lists stop at
//! [`LIST_MAX`] items.

use std::fmt::Write as _;

use reloadbench_model::ledger::{Ledger, thousands};
use reloadbench_model::run::{CaseReport, RunReport};

use crate::bounded::{LIST_MAX, capped_list};
use crate::export::grid::{Align, Table, escape_html};

/// What the section says under its table.
const LEGEND: &str = "Client: loadgen's outcomes. Proxy: refproxy's own counts, summed over its \
generations (other systems under test do not report them). Origin: what the built-in origin \
answered. `lost after forwarding`: failed requests whose request id the origin answered \
(the origin did its part; the answer was lost on the way back). A ledger balances when \
client ok = origin answered ids - lost after forwarding, every origin answer has an id and \
no id is answered twice but by a client's retry, and, for refproxy when every generation \
reported, proxy forwarded = origin received and proxy completed = client ok.";

/// One row per case that has a ledger.
fn table(report: &RunReport) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("client ok", Align::Right),
        ("client failed", Align::Right),
        ("proxy forwarded", Align::Right),
        ("proxy completed", Align::Right),
        ("origin received", Align::Right),
        ("origin answered", Align::Right),
        ("lost after forwarding", Align::Right),
        ("balanced", Align::Center),
    ]);
    for (case, l) in cases(report) {
        let proxy = |f: fn(&reloadbench_model::ledger::ProxyCounters) -> u64| match &l.proxy {
            None => "not reported".to_owned(),
            Some(p) if !p.missing.is_empty() => format!("{} (incomplete)", thousands(f(&p.total))),
            Some(p) => thousands(f(&p.total)),
        };
        let origin = |f: fn(&reloadbench_model::ledger::OriginSide) -> u64| {
            l.origin
                .as_ref()
                .map_or_else(|| "unavailable".to_owned(), |o| thousands(f(o)))
        };
        t.push(vec![
            case.name.clone(),
            thousands(l.client.ok),
            thousands(l.client.failed),
            proxy(|p| p.forwarded),
            proxy(|p| p.completed),
            origin(|o| o.received),
            origin(|o| o.answered),
            l.lost_after_forwarding
                .map_or_else(|| "unknown".to_owned(), thousands),
            balanced(l).to_owned(),
        ]);
    }
    t
}

fn cases(report: &RunReport) -> impl Iterator<Item = (&CaseReport, &Ledger)> {
    report
        .cases
        .iter()
        .filter_map(|c| c.ledger.as_ref().map(|l| (c, l)))
}

fn balanced(l: &Ledger) -> &'static str {
    match (l.balanced, l.origin.is_some()) {
        (false, _) => "❌ no",
        (true, true) => "✅ yes",
        (true, false) => "unchecked",
    }
}

/// The lines under the table, per case: its one-line ledger, each broken equality
/// (flagged, with both sides and the difference), what could not be checked, and the
/// actions that lost forwarded requests.
fn lines(report: &RunReport) -> Vec<String> {
    let mut out = Vec::new();
    for (case, l) in cases(report) {
        out.push(format!("{}: {}", case.label(), l.summary()));
        for c in l.broken() {
            out.push(format!(
                "⚠ {}: the ledger does not balance: {} ({} vs {}, off by {})",
                case.label(),
                c.equality,
                thousands(c.left),
                thousands(c.right),
                c.difference()
            ));
        }
        for u in &l.unchecked {
            out.push(format!(
                "{}: not checked: {}",
                case.label(),
                unchecked(l, u)
            ));
        }
        let per_action: Vec<(u64, String)> = case
            .actions
            .iter()
            .filter_map(|a| {
                let n = a.lost_after_forwarding.filter(|n| *n > 0)?;
                Some((n, format!("#{} {} {}", a.index, a.label, thousands(n))))
            })
            .collect();
        if !per_action.is_empty() {
            let long = per_action.len() > LIST_MAX;
            out.push(format!(
                "{}: lost after forwarding per action: {}{}",
                case.name,
                capped_list(per_action, "actions"),
                if long {
                    " (the most listed; every action's count is in actions.csv)"
                } else {
                    ""
                }
            ));
        }
    }
    out
}

/// An unchecked equality as the run wrote it, except the list of proxy
/// generations that never reported, which is cut to the first [`LIST_MAX`]
/// (a restart soak can leave thousands).
fn unchecked(l: &Ledger, text: &str) -> String {
    match &l.proxy {
        Some(p) if p.missing.len() > LIST_MAX && text.starts_with("proxy: generation(s) ") => {
            let first: Vec<String> = p.missing[..LIST_MAX].iter().map(u64::to_string).collect();
            format!(
                "proxy: {} generations never reported (killed or crashed): {}, and {} more",
                thousands(p.missing.len() as u64),
                first.join(", "),
                thousands((p.missing.len() - LIST_MAX) as u64)
            )
        }
        _ => text.to_owned(),
    }
}

/// The section in markdown (empty when no case has a ledger).
pub fn ledger_markdown(report: &RunReport) -> String {
    if cases(report).next().is_none() {
        return String::new();
    }
    let mut w = String::from("## Ledger\n\n");
    w.push_str(&table(report).to_markdown());
    let _ = writeln!(w, "\n{LEGEND}\n");
    // Names and labels in the lines come from the run: escaped for markdown.
    for line in lines(report) {
        let _ = writeln!(w, "- {}", crate::export::grid::markdown_cell(&line));
    }
    w.push('\n');
    w
}

/// The section in HTML (empty when no case has a ledger).
pub fn ledger_html(report: &RunReport) -> String {
    if cases(report).next().is_none() {
        return String::new();
    }
    let mut h = String::from("<h2>Ledger</h2>\n");
    h.push_str(&table(report).to_html());
    let _ = writeln!(
        h,
        "<p class=\"note\">{}</p>\n<ul>",
        escape_html(&LEGEND.replace('`', ""))
    );
    for line in lines(report) {
        let _ = writeln!(h, "<li>{}</li>", escape_html(&line));
    }
    h.push_str("</ul>\n");
    h
}
