//! The "Kernel counters and machine load" section: each case's nstat-style
//! TCP counter deltas (and each action's, where they moved), whose traffic
//! they count, and what else used the machine's CPU (a busy machine is
//! flagged). Rendered to markdown and HTML from the same parts. Per-action
//! counters list at most [`WORST_SHOWN`] actions when they moved in more
//! than [`FULL_TABLE_MAX`].

use std::fmt::Write as _;

use reloadbench_model::kernel::{BUSY_OTHER_CORES, BUSY_STEAL_CORES, CounterScope, LISTED};
use reloadbench_model::run::{CaseReport, RunReport};

use std::cmp::Reverse;

use reloadbench_model::ledger::thousands;

use crate::bounded::{FULL_TABLE_MAX, WORST_SHOWN, counted, is_long};
use crate::export::grid::{Align, Table, escape_html, markdown_cell};
use crate::summary::fmt_s;

/// How to read the section.
const LEGEND: &str = "Deltas of the kernel's TCP counters (as `nstat` names them) from the load's \
start to its end; an action's from its trigger to the next action's trigger (or the load end). \
ListenOverflows/ListenDrops: connections dropped because an accept queue was full; \
TCPAbortOnClose/OnData: resets sent when a socket was closed with unread data or data still \
arriving; AttemptFails: connects that failed (refused); EstabResets: established connections \
reset; OutRsts: resets sent. A counter this kernel does not have is shown as –.";

/// One piece of the section.
enum Part {
    Heading(String),
    Text(String),
    Table(Table),
}

/// The section as markdown (empty when no case has counters or machine data).
pub fn markdown(report: &RunReport) -> String {
    let mut out = String::new();
    for p in parts(report) {
        let _ = match p {
            // Case names come from the run: escaped for markdown.
            Part::Heading(h) => writeln!(out, "{}\n", markdown_cell(&h)),
            Part::Text(t) => writeln!(out, "{}\n", markdown_cell(&t)),
            Part::Table(t) => writeln!(out, "{}", t.to_markdown()),
        };
    }
    out
}

/// The section as HTML (empty when no case has counters or machine data).
pub fn html(report: &RunReport) -> String {
    let mut out = String::new();
    for p in parts(report) {
        let _ = match p {
            Part::Heading(h) => {
                let level = h.chars().take_while(|c| *c == '#').count();
                let text = h.trim_start_matches('#').trim();
                writeln!(out, "<h{level}>{}</h{level}>", escape_html(text))
            }
            Part::Text(t) => writeln!(
                out,
                "<p class=\"note\">{}</p>",
                escape_html(&t.replace(['`', '*'], "").replace("> ", ""))
            ),
            Part::Table(t) => writeln!(out, "{}", t.to_html()),
        };
    }
    out
}

fn parts(report: &RunReport) -> Vec<Part> {
    let cases = &report.cases;
    if !cases
        .iter()
        .any(|c| c.kernel.is_some() || c.machine.is_some())
    {
        return Vec::new();
    }
    let mut p = vec![Part::Heading("## Kernel counters and machine load".into())];
    for c in cases {
        if let Some(why) = c.machine.as_ref().and_then(|m| m.busy.as_deref()) {
            p.push(Part::Text(format!(
                "> ⚠ **{}**: the machine was busy: {why}. Its timings may be off.",
                c.label()
            )));
        }
    }
    if cases.iter().any(|c| c.kernel.is_some()) {
        p.push(Part::Text(scope_line(cases)));
        p.push(Part::Text(LEGEND.into()));
        p.push(Part::Table(counters(cases)));
        for c in cases {
            if let Some((t, note)) = action_counters(c) {
                p.push(Part::Heading(format!(
                    "### Counters per action: {}",
                    c.label()
                )));
                p.push(Part::Table(t));
                if let Some(note) = note {
                    p.push(Part::Text(note));
                }
            }
        }
    }
    if cases.iter().any(|c| c.machine.is_some()) {
        p.push(Part::Text(format!(
            "What else used the CPU while each load ran: per-second machine totals \
             (`/proc/stat`: user + nice + system + irq + softirq) minus the run's own processes. \
             A case is flagged busy when other processes used more than {BUSY_OTHER_CORES} cores \
             or the hypervisor stole more than {BUSY_STEAL_CORES} cores on average."
        )));
        p.push(Part::Table(machine(cases)));
    }
    p
}

fn scope_line(cases: &[CaseReport]) -> String {
    let scopes: Vec<CounterScope> = cases
        .iter()
        .filter_map(|c| c.kernel.as_ref().map(|k| k.scope))
        .collect();
    if scopes.iter().all(|s| *s == CounterScope::CaseNetns) {
        "Each case ran in its own network namespace: the counters are exactly its own traffic."
            .into()
    } else if scopes.iter().all(|s| *s == CounterScope::HostWide) {
        "Kernel counters are host-wide: other traffic on this machine is counted too \
         (run as root for a network namespace per case)."
            .into()
    } else {
        let host: Vec<&str> = cases
            .iter()
            .filter(|c| c.kernel.as_ref().map(|k| k.scope) == Some(CounterScope::HostWide))
            .map(|c| c.name.as_str())
            .collect();
        format!(
            "Counters are each case's own (its network namespace), except host-wide for: {}.",
            host.join(", ")
        )
    }
}

fn short(name: &str) -> &str {
    name.strip_prefix("TcpExt")
        .or_else(|| name.strip_prefix("Tcp"))
        .unwrap_or(name)
}

/// Rows: the listed counters; columns: the cases.
fn counters(cases: &[CaseReport]) -> Table {
    let mut t = Table::new(&[("counter", Align::Left)]);
    let with: Vec<&CaseReport> = cases.iter().filter(|c| c.kernel.is_some()).collect();
    for c in &with {
        t.push_column(&c.name, Align::Right);
    }
    for name in LISTED {
        let cells: Vec<String> = with
            .iter()
            .map(|c| match c.kernel.as_ref().and_then(|k| k.get(name)) {
                Some(v) => v.to_string(),
                None => "–".into(),
            })
            .collect();
        if cells.iter().all(|c| c == "–") {
            continue;
        }
        let mut row = vec![name.to_string()];
        row.extend(cells);
        t.push(row);
    }
    t
}

/// One row per action whose listed counters moved; `None` when none did.
/// Above [`FULL_TABLE_MAX`] such actions, only the [`WORST_SHOWN`] where the
/// counters moved most (the sum of their deltas' sizes) are kept, in their
/// order, with a sentence stating the cut-off.
fn action_counters(case: &CaseReport) -> Option<(Table, Option<String>)> {
    let moved: Vec<&str> = LISTED
        .into_iter()
        .filter(|n| {
            case.actions
                .iter()
                .any(|a| a.kernel.as_ref().and_then(|k| k.get(n)).unwrap_or(0) != 0)
        })
        .collect();
    if moved.is_empty() {
        return None;
    }
    let mut t = Table::new(&[
        ("#", Align::Right),
        ("window s", Align::Right),
        ("action", Align::Left),
    ]);
    for n in &moved {
        t.push_column(short(n), Align::Right);
    }
    let mut rows: Vec<(u64, usize)> = Vec::new();
    for (i, a) in case.actions.iter().enumerate() {
        let Some(k) = &a.kernel else { continue };
        let size: u64 = moved
            .iter()
            .map(|n| k.get(n).unwrap_or(0).unsigned_abs())
            .sum();
        if size > 0 {
            rows.push((size, i));
        }
    }
    let total = rows.len();
    let note = is_long(total).then(|| {
        rows.sort_by_key(|&(size, i)| (Reverse(size), i));
        rows.truncate(WORST_SHOWN);
        rows.sort_by_key(|&(_, i)| i);
        format!(
            "The counters moved in {} of {}; more than {FULL_TABLE_MAX} are not listed \
             here: these are the {WORST_SHOWN} where they moved most. Every action's \
             counters are in actions.csv (column kernel).",
            thousands(total as u64),
            counted(case.actions.len() as u64, "action")
        )
    });
    for a in rows.iter().map(|&(_, i)| &case.actions[i]) {
        let Some(k) = &a.kernel else { continue };
        let mut row = vec![
            a.index.to_string(),
            format!("{}–{}", fmt_s(k.from_ns), fmt_s(k.to_ns)),
            a.label.clone(),
        ];
        row.extend(
            moved
                .iter()
                .map(|n| k.get(n).map_or_else(|| "–".into(), |v| v.to_string())),
        );
        t.push(row);
    }
    Some((t, note))
}

fn machine(cases: &[CaseReport]) -> Table {
    let mut t = Table::new(&[
        ("case", Align::Left),
        ("other CPU mean (cores)", Align::Right),
        ("other CPU max", Align::Right),
        ("steal", Align::Right),
        ("load avg (1 min) start → end", Align::Right),
        ("machine", Align::Center),
    ]);
    for c in cases {
        let Some(m) = &c.machine else { continue };
        t.push(vec![
            c.label(),
            format!("{:.2}", m.other_cores_mean),
            format!("{:.2}", m.other_cores_max),
            format!("{:.2}", m.steal_cores_mean),
            format!("{:.2} → {:.2}", m.loadavg_start[0], m.loadavg_end[0]),
            if m.busy.is_some() {
                "⚠ busy"
            } else {
                "quiet"
            }
            .into(),
        ]);
    }
    t
}
