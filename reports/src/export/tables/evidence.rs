//! "Observed reload phases": per case, each action's phases as the kernel
//! showed them (listening sockets, their owners, connections, exits) next
//! to the ones the system under test reported itself, and a line on the
//! accept queues sampled. Rendered as a whole section by [`markdown`] and
//! [`html`], one call each from the exporters. A case with more than
//! [`FULL_TABLE_MAX`] actions with observed phases gets percentiles per
//! observed phase and the rows of its worst actions instead of every row.

use std::fmt::Write as _;

use reloadbench_model::evidence::{CaseEvidence, ObservedPhases};
use reloadbench_model::ledger::thousands;
use reloadbench_model::run::{ActionReport, CaseReport, RunReport};
use reloadbench_model::words::count;

use super::action_summary::percentile_table;
use crate::bounded::{FULL_TABLE_MAX, WORST_SHOWN, counted, is_long, worst};
use crate::export::grid::{Align, Table, escape_html};
use crate::summary::fmt_s;

/// The section's heading.
const HEADING: &str = "Observed reload phases";

/// What the columns mean (the definitions are in harness/README.md).
pub const OBSERVED_LEGEND: &str = "Phases observed in the kernel, the same for every system under \
test, in ms after the trigger: new listening = a process that was not listening at the trigger \
holds a listening socket on the address (a new socket, or the old one passed to it); old stopped \
accepting = the processes that listened at the trigger and were replaced hold no listening socket \
on it any more (a process that keeps its listening socket open until it exits is seen stopping \
when it exits); old drained = they hold no established connection on it; old exited = they have \
all exited. \"not observed\" = the kernel did not show it (nothing was replaced, or it came after \
sampling ended); it is never filled in from another phase. Reported = what the server said about \
itself (ready, drained, exited events), \"not reported\" when it said nothing. ± = the sampling \
interval around the action: an observed phase happened at most that long before its time.";

/// One row per action with observed phases; `None` when no action has any.
pub fn observed_phases(case: &CaseReport) -> Option<Table> {
    if case.actions.iter().all(|a| a.observed.is_none()) {
        return None;
    }
    let all: Vec<usize> = (0..case.actions.len()).collect();
    Some(observed_rows(case, &all))
}

/// The rows of the actions at positions `rows` of `case.actions` that have
/// observed phases, in that order.
fn observed_rows(case: &CaseReport, rows: &[usize]) -> Table {
    let mut t = Table::new(&[
        ("#", Align::Right),
        ("at s", Align::Right),
        ("action", Align::Left),
        ("new listening", Align::Right),
        ("old stopped accepting", Align::Right),
        ("old drained", Align::Right),
        ("old exited", Align::Right),
        ("±", Align::Right),
        ("reported ready", Align::Right),
        ("reported drained", Align::Right),
        ("reported exited", Align::Right),
        ("old → new pids", Align::Left),
    ]);
    for a in rows.iter().filter_map(|&i| case.actions.get(i)) {
        let Some(o) = &a.observed else {
            continue;
        };
        let seen = |ns: Option<u64>| since(a, ns).unwrap_or_else(|| "not observed".into());
        let said = |ns: Option<u64>| since(a, ns).unwrap_or_else(|| "not reported".into());
        t.push(vec![
            a.index.to_string(),
            fmt_s(a.trigger_ns),
            a.label.clone(),
            seen(o.new_listening_ns),
            seen(o.old_stopped_accepting_ns),
            seen(o.old_drained_ns),
            seen(o.old_exited_ns),
            format!("{:.0}", o.resolution_ns as f64 / 1e6),
            said(a.ready_ns),
            said(a.drained_ns),
            said(a.exited_ns),
            format!("{} → {}", pids(&o.old_pids), pids(&o.new_pids)),
        ]);
    }
    t
}

/// The observed phases of a case, bounded: every action's row up to
/// [`FULL_TABLE_MAX`] actions with observed phases; above, percentiles of each
/// observed phase, the rows of the case's worst actions (the same as in the
/// Actions section) and a sentence stating the cut-off. `None` when no
/// action has observed phases.
fn observed_parts(case: &CaseReport) -> Option<Vec<Part>> {
    let with = case.actions.iter().filter(|a| a.observed.is_some()).count();
    if with == 0 {
        return None;
    }
    if !is_long(with) {
        return observed_phases(case).map(|t| vec![Part::Table(t)]);
    }
    let since = |f: fn(&ObservedPhases) -> Option<u64>| -> Vec<u64> {
        case.actions
            .iter()
            .filter_map(|a| {
                let t = f(a.observed.as_ref()?)?;
                Some(t.saturating_sub(a.trigger_ns))
            })
            .collect()
    };
    let phases = percentile_table(
        "observed phase (ms after the trigger)",
        "observed in",
        vec![
            ("new listening", since(|o| o.new_listening_ns)),
            (
                "old stopped accepting",
                since(|o| o.old_stopped_accepting_ns),
            ),
            ("old drained", since(|o| o.old_drained_ns)),
            ("old exited", since(|o| o.old_exited_ns)),
        ],
    );
    Some(vec![
        Part::Text(format!(
            "{} of {} have observed phases; an action not counted in a row did not \
             show that phase.",
            thousands(with as u64),
            counted(case.actions.len() as u64, "action")
        )),
        Part::Table(phases),
        Part::Text(format!(
            "Observed phases of the worst {} actions of the Actions section:",
            WORST_SHOWN.min(case.actions.len())
        )),
        Part::Table(observed_rows(case, &worst(case))),
        Part::Text(format!(
            "A case with more than {FULL_TABLE_MAX} actions is summarised here; every \
             action's observed phases are in actions.csv (columns observed_*)."
        )),
    ])
}

/// One piece of a case's observed phases.
enum Part {
    Text(String),
    Table(Table),
}

/// ms from the action's trigger, one decimal.
fn since(a: &ActionReport, ns: Option<u64>) -> Option<String> {
    ns.map(|n| format!("{:.1}", n.saturating_sub(a.trigger_ns) as f64 / 1e6))
}

fn pids(p: &[u32]) -> String {
    if p.is_empty() {
        "–".into()
    } else {
        p.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// How the case's address was sampled and the deepest accept queue seen.
pub fn evidence_line(e: &CaseEvidence) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut s = format!(
        "{}: {} samples, every {:.0} ms around actions and {:.0} ms otherwise; {}, deepest accept queue {}",
        e.address,
        e.samples,
        ms(e.fast_interval_ns),
        ms(e.slow_interval_ns),
        count(e.queues.len() as u64, "listening socket"),
        e.max_depth(),
    );
    if let Some(q) = e.queues.iter().max_by_key(|q| q.max_depth) {
        let _ = write!(s, " (backlog {})", q.backlog);
    }
    let _ = write!(s, "; sampler CPU {:.3} s", e.sampler_cpu_s);
    if e.failed_samples > 0 {
        let _ = write!(
            s,
            "; {} samples failed: {}",
            e.failed_samples,
            e.first_error.as_deref().unwrap_or("?")
        );
    }
    s.push('.');
    if e.queues.is_empty() && e.samples > e.failed_samples {
        s.push_str(
            " ⚠ No listening socket was ever seen on this address: the server under test \
             listens on another address or family, or in another network namespace; no \
             phase of this case could be observed.",
        );
    }
    s
}

fn cases(
    report: &RunReport,
) -> impl Iterator<Item = (&CaseReport, Option<Vec<Part>>, &CaseEvidence)> {
    report
        .cases
        .iter()
        .filter_map(|c| c.evidence.as_ref().map(|e| (c, observed_parts(c), e)))
}

/// The section in markdown; empty when no case has evidence.
pub fn markdown(report: &RunReport) -> String {
    let mut w = String::new();
    if cases(report).next().is_none() {
        return w;
    }
    let _ = writeln!(w, "## {HEADING}\n\n{OBSERVED_LEGEND}\n");
    for (case, table, e) in cases(report) {
        let _ = writeln!(
            w,
            "### {}\n\n{}\n",
            crate::export::grid::markdown_cell(&case.label()),
            evidence_line(e)
        );
        for p in table.into_iter().flatten() {
            let _ = match p {
                Part::Text(t) => writeln!(w, "{t}\n"),
                Part::Table(t) => writeln!(w, "{}", t.to_markdown()),
            };
        }
    }
    w
}

/// The section in HTML; empty when no case has evidence.
pub fn html(report: &RunReport) -> String {
    let mut h = String::new();
    if cases(report).next().is_none() {
        return h;
    }
    let _ = writeln!(
        h,
        "<h2>{HEADING}</h2>\n<p class=\"note\">{}</p>",
        escape_html(OBSERVED_LEGEND)
    );
    for (case, table, e) in cases(report) {
        let _ = writeln!(
            h,
            "<h3>{}</h3>\n<p class=\"note\">{}</p>",
            escape_html(&case.label()),
            escape_html(&evidence_line(e))
        );
        for p in table.into_iter().flatten() {
            let _ = match p {
                Part::Text(t) => writeln!(h, "<p class=\"note\">{}</p>", escape_html(&t)),
                Part::Table(t) => writeln!(h, "{}", t.to_html()),
            };
        }
    }
    h
}
