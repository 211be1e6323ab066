//! `actions.csv`: every action of every case, one row each: the full
//! per-action table that `report.md` summarises above
//! [`FULL_TABLE_MAX`](crate::bounded::FULL_TABLE_MAX) actions per case.
//!
//! Columns (an empty field is a value that was not reported or observed):
//! - `case`, `trial` (empty when the case ran once), `index` (position on the
//!   case's timeline from 0, the `#` of report.md), `kind` (`restart`,
//!   `reload`, `signal`, `exec`, `kill`, `sysctl`), `mode` (reload mode),
//!   `label`;
//! - `trigger_ms`: ms since the load start; `ready_ms`, `drained_ms`,
//!   `exited_ms`: the phases the system under test reported, ms after the
//!   trigger;
//! - `ok` (`true`/`false`), `error`;
//! - `failed`: failures attributed to the action, then one `failed_<class>`
//!   column per failure class attributed to any action of the run;
//! - `disruption_start_ms`, `disruption_end_ms`: first and last attributed
//!   failure, ms since the load start; `recovery_ms`: ms after the trigger;
//! - `lost_after_forwarding`: failed requests the origin had answered;
//! - `observed_new_listening_ms`, `observed_old_stopped_accepting_ms`,
//!   `observed_old_drained_ms`, `observed_old_exited_ms`: the phases seen in
//!   the kernel, ms after the trigger; `observed_resolution_ms`: the sampling
//!   interval around the action; `old_pids`, `new_pids`: space-separated;
//! - `kernel`: the action's deltas of the kernel counters the report lists
//!   (`reloadbench_model::kernel::LISTED`, those this kernel has) as
//!   `Name=delta` pairs separated by `;` (every other counter that moved is
//!   in `results.json`);
//! - in a run where a case sends more than one method, one `failed_<METHOD>`
//!   column per method (`failed_GET`, `failed_POST`): failures of that method
//!   attributed to the action (empty when the failure list was capped).
//!
//! Fields are quoted as in `timeline.csv` (RFC 4180).

use reloadbench_model::kernel::LISTED;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{ActionKind, ActionReport, RunReport};

use super::Exporter;
use super::csv::{finish, writer};
use super::tables::count_of;
use crate::error::ExportError;

/// Every action of the run as CSV.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActionsCsvExporter;

impl Exporter for ActionsCsvExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        let classes: Vec<FailureClass> = FailureClass::ALL
            .into_iter()
            .filter(|&c| {
                report
                    .cases
                    .iter()
                    .flat_map(|case| &case.actions)
                    .any(|a| count_of(a, c) > 0)
            })
            .collect();
        let mut head: Vec<String> =
            "case,trial,index,kind,mode,label,trigger_ms,ready_ms,drained_ms,exited_ms,ok,error,failed"
                .split(',')
                .map(String::from)
                .collect();
        head.extend(classes.iter().map(|c| format!("failed_{}", c.key())));
        head.extend(
            "disruption_start_ms,disruption_end_ms,recovery_ms,lost_after_forwarding,\
             observed_new_listening_ms,observed_old_stopped_accepting_ms,observed_old_drained_ms,\
             observed_old_exited_ms,observed_resolution_ms,old_pids,new_pids,kernel"
                .split(',')
                .map(String::from),
        );
        // Per method, for runs that send several: appended, so the columns
        // before keep their places.
        let mut methods: Vec<&str> = Vec::new();
        for case in report.cases.iter().filter(|c| c.load.methods.len() > 1) {
            for m in &case.load.methods {
                if !methods.contains(&m.method.as_str()) {
                    methods.push(&m.method);
                }
            }
        }
        head.extend(methods.iter().map(|m| format!("failed_{m}")));
        let mut out = writer();
        out.write_record(&head)?;
        for case in &report.cases {
            let trial = case.trial.map(|t| t.to_string()).unwrap_or_default();
            for a in &case.actions {
                let mut rec = row(&case.name, &trial, a, &classes);
                rec.extend(methods.iter().map(|m| {
                    a.failed_of_method(&case.load, m)
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                }));
                out.write_record(rec)?;
            }
        }
        finish(out)
    }
}

/// The fields of one action's row.
fn row(case: &str, trial: &str, a: &ActionReport, classes: &[FailureClass]) -> Vec<String> {
    let after = |ns: Option<u64>| ms(ns.map(|n| n.saturating_sub(a.trigger_ns)));
    let mut rec = vec![
        case.to_string(),
        trial.to_string(),
        a.index.to_string(),
        kind(&a.kind).to_string(),
        a.mode.map(|m| m.as_str()).unwrap_or_default().to_string(),
        a.label.clone(),
        ms(Some(a.trigger_ns)),
        after(a.ready_ns),
        after(a.drained_ns),
        after(a.exited_ns),
        a.ok.to_string(),
        a.error.clone().unwrap_or_default(),
        a.failed_total().to_string(),
    ];
    rec.extend(classes.iter().map(|&c| count_of(a, c).to_string()));
    let o = a.observed.as_ref();
    rec.extend([
        ms(a.disruption_start_ns),
        ms(a.disruption_end_ns),
        ms(a.recovery_ns),
        a.lost_after_forwarding
            .map(|n| n.to_string())
            .unwrap_or_default(),
        after(o.and_then(|o| o.new_listening_ns)),
        after(o.and_then(|o| o.old_stopped_accepting_ns)),
        after(o.and_then(|o| o.old_drained_ns)),
        after(o.and_then(|o| o.old_exited_ns)),
        ms(o.map(|o| o.resolution_ns)),
        pids(o.map(|o| o.old_pids.as_slice())),
        pids(o.map(|o| o.new_pids.as_slice())),
    ]);
    let kernel = a.kernel.as_ref().map(|k| {
        LISTED
            .iter()
            .filter_map(|n| Some(format!("{n}={}", k.get(n)?)))
            .collect::<Vec<_>>()
            .join(";")
    });
    rec.push(kernel.unwrap_or_default());
    rec
}

/// ns as ms with three decimals; empty when absent.
fn ms(ns: Option<u64>) -> String {
    ns.map(|n| format!("{:.3}", n as f64 / 1e6))
        .unwrap_or_default()
}

fn pids(p: Option<&[u32]>) -> String {
    p.unwrap_or_default()
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The kind as `results.json` names it.
fn kind(k: &ActionKind) -> &'static str {
    match k {
        ActionKind::Restart => "restart",
        ActionKind::Reload => "reload",
        ActionKind::Signal => "signal",
        ActionKind::Exec => "exec",
        ActionKind::Kill => "kill",
        ActionKind::Sysctl => "sysctl",
    }
}

#[cfg(test)]
mod tests {
    use super::kind;
    use reloadbench_model::run::ActionKind;

    #[test]
    fn kinds_are_named_as_in_results_json() {
        for k in [
            ActionKind::Restart,
            ActionKind::Reload,
            ActionKind::Signal,
            ActionKind::Exec,
            ActionKind::Kill,
            ActionKind::Sysctl,
        ] {
            let json = serde_json::to_string(&k).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind(&k)));
        }
    }
}
