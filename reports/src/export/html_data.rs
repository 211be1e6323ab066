//! The data `report.html`'s script explores, embedded in the page as JSON
//! (`<script type="application/json" id="rb-data">`): per case its time
//! buckets (ok requests/s, latency p50 / p99 / max, failures by class) and
//! its actions, and the time axis of the timeline panels.
//!
//! Every number is taken from the run report through the same helpers and
//! formatting the tables use ([`bucket_rps`], [`fmt_ms`], [`fmt_s`]), and
//! written as the number the markdown shows (a latency of `1.25` ms is
//! `1.25`), so the page and `report.md` agree to the digit.

use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{CaseReport, RunReport};
use serde_json::{Value, json};

use super::chart::PanelAxis;
use crate::summary::{bucket_rps, fmt_ms, fmt_s};

/// The page's data as JSON text, safe inside a `<script>` element.
pub fn page_data(report: &RunReport, axis: &PanelAxis) -> String {
    let cases: Vec<Value> = report.cases.iter().map(case_data).collect();
    let data = json!({
        "axis": {
            "width": axis.width,
            "x0": axis.x0,
            "x1": axis.x1,
            "t_max_s": axis.t_max_s,
        },
        "classes": FailureClass::ALL.iter().map(|c| c.label()).collect::<Vec<_>>(),
        "cases": cases,
    });
    // `</` would end the script element: JSON allows `\/` for `/`.
    data.to_string().replace("</", "<\\/")
}

/// One case: `b` holds a row per bucket `[start ms, ok/s or null, p50 ms,
/// p99 ms, max ms (null without a success), [class, count, …]]` (class as
/// its position in `classes`), `a` a row per action `[#, at s, label]`; a
/// WebSocket case has `w` a row per WebSocket bucket of `w_ms` ms `[open,
/// opened, failed, closed cleanly, cut, sent, echoed, lost, late]`, a case
/// with old generations counted `g` a row per change `[at ms, processes or
/// null, old processes, old generations]`.
fn case_data(case: &CaseReport) -> Value {
    let load = &case.load;
    let shown = super::chart::rps_buckets(load);
    let buckets: Vec<Value> = load
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let ms = |us: u64| (b.ok > 0).then(|| number(&fmt_ms(us)));
            let failed: Vec<u64> = b
                .failed
                .iter()
                .flat_map(|f| [class_index(f.class), f.count])
                .collect();
            json!([
                b.start_ns / 1_000_000,
                (i < shown).then(|| number(&format!("{:.1}", bucket_rps(load, i)))),
                ms(b.latency.p50_us),
                ms(b.latency.p99_us),
                ms(b.latency.max_us),
                failed,
            ])
        })
        .collect();
    let actions: Vec<Value> = case
        .actions
        .iter()
        .map(|a| json!([a.index, number(&fmt_s(a.trigger_ns)), a.label]))
        .collect();
    let mut data = json!({
        "name": case.label(),
        "bucket_ms": load.config.bucket_ns() / 1_000_000,
        "b": buckets,
        "a": actions,
    });
    if let Some(ws) = &load.ws {
        let rows: Vec<Value> = crate::ws_buckets::rows(&ws.buckets)
            .iter()
            .map(|r| {
                json!([
                    r.open, r.opened, r.failed, r.closed, r.cut, r.sent, r.echoed, r.lost, r.late
                ])
            })
            .collect();
        data["w_ms"] = json!(number(&format!("{:.3}", ws.buckets.width_ns as f64 / 1e6)));
        data["w"] = json!(rows);
    }
    if let Some(g) = &case.generations {
        let points: Vec<Value> = g
            .points
            .iter()
            .map(|p| {
                json!([
                    number(&format!("{:.3}", p.t_ns as f64 / 1e6)),
                    p.processes,
                    p.old_processes,
                    p.old_generations
                ])
            })
            .collect();
        data["g"] = json!(points);
    }
    data
}

/// Position of `class` in [`FailureClass::ALL`].
fn class_index(class: FailureClass) -> u64 {
    FailureClass::ALL
        .iter()
        .position(|&c| c == class)
        .unwrap_or_default() as u64
}

/// A formatted decimal as a JSON number (it reads back as the same digits).
fn number(text: &str) -> Value {
    text.parse::<f64>().map_or(Value::Null, |v| json!(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_cannot_end_its_script_element() {
        let mut run = crate::synthetic::run(crate::synthetic::Shape {
            cases: 1,
            buckets: 3,
            actions: 1,
            failing_every: 1,
        });
        run.cases[0].name = "x</script><b>".into();
        let text = page_data(
            &run,
            &PanelAxis {
                width: 1200,
                x0: 78,
                x1: 912,
                t_max_s: 1.0,
            },
        );
        assert!(!text.contains("</"), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["cases"][0]["name"], "x</script><b>");
    }
}
