//! `report.html`: one self-contained page (inline CSS, inline SVG charts, the
//! same tables as `report.md`) that opens from disk without a network.

use std::fmt::Write as _;

use reloadbench_model::run::RunReport;

use super::Exporter;
use super::ab_text::ab_text;
use super::chart::{Chart, render_svg};
use super::glossary;
use super::grid::escape_html;
use super::markdown::{AB_LEGEND, EXPECTATIONS_LEGEND, FAILURES_LEGEND, SUMMARY_LEGEND, load_line};
use super::tables;
use crate::error::ExportError;

const STYLE: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
margin:2em auto;max-width:1280px;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}\
th,td{border:1px solid #ccc;padding:4px 8px}th{background:#f4f4f4}\
td.r,th.r{text-align:right}td.c,th.c{text-align:center}td.l,th.l{text-align:left}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}\
pre{background:#f7f7f7;padding:1em;overflow-x:auto}.note{color:#555;font-size:14px}\
table.all td,table.all th{text-align:right}table.all .l{text-align:left}table.all .c{text-align:center}";

/// The HTML page exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        let title = format!("reloadbench: {}", report.scenario.name);
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape_html(&title),
            escape_html(&title)
        );
        if !report.scenario.description.is_empty() {
            let _ = writeln!(h, "<p>{}</p>", escape_html(&report.scenario.description));
        }
        let _ = writeln!(
            h,
            "<p><strong>{}</strong></p>",
            escape_html(&verdict_line(report))
        );
        let load = load_line(report);
        if let Some(load) = &load {
            let _ = writeln!(h, "<p>{}</p>", escape_html(load));
        }
        let _ = writeln!(h, "<h2>Summary</h2>");
        if let Some(cases) = glossary::cases_html(report) {
            let _ = writeln!(h, "{cases}");
        }
        let _ = writeln!(h, "{}", tables::summary(report).to_html());
        let _ = writeln!(h, "{}", note(SUMMARY_LEGEND));
        if let Some(t) = tables::trials(report) {
            let _ = writeln!(
                h,
                "<h2>Trials</h2>\n{}\n{}",
                t.to_html(),
                note(tables::TRIALS_LEGEND)
            );
        }
        let _ = writeln!(
            h,
            "<h2>Failures and reloads</h2>\n{}",
            tables::failures(report).to_html()
        );
        let _ = writeln!(h, "{}", note(FAILURES_LEGEND));
        if tables::methods::retry_split(report) {
            let _ = writeln!(h, "{}", note(tables::methods::RETRY_LEGEND));
        }
        if tables::methods::any_stale_check(report) {
            let _ = writeln!(h, "{}", note(tables::methods::STALE_LEGEND));
        }
        if let Some(t) = tables::methods::methods(report) {
            let _ = writeln!(
                h,
                "<h3>Failures by method</h3>\n{}\n{}",
                t.to_html(),
                note(tables::methods::METHODS_LEGEND)
            );
        }
        if let Some(t) = tables::tls::tls(report) {
            let _ = writeln!(
                h,
                "<h3>TLS handshakes</h3>\n{}\n{}",
                t.to_html(),
                note(tables::tls::TLS_LEGEND)
            );
        }
        if let Some(classes) = glossary::classes_html(report) {
            let _ = writeln!(h, "{classes}");
        }
        h.push_str(&tables::diagnosis::html(report));
        for case in report.cases.iter().filter(|c| c.error.is_some()) {
            let _ = writeln!(
                h,
                "<p class=\"note\"><strong>{}</strong> did not run to its end: {}</p>",
                escape_html(&case.label()),
                escape_html(case.error.as_deref().unwrap_or_default())
            );
        }
        let expectations = tables::expectations(report);
        if !expectations.rows.is_empty() {
            let _ = writeln!(h, "<h2>Expectations</h2>\n{}", expectations.to_html());
            let _ = writeln!(h, "{}", note(EXPECTATIONS_LEGEND));
        }
        h.push_str(&tables::ledger_html(report));
        let _ = writeln!(h, "<h2>Charts</h2>");
        for chart in Chart::ALL {
            let svg = render_svg(chart, report)?;
            let _ = writeln!(
                h,
                "<figure id=\"{}\" aria-label=\"{}\">\n{svg}\n<figcaption class=\"note\">{}</figcaption>\n</figure>",
                chart.stem(),
                escape_html(chart.title()),
                escape_html(chart.how_to_read())
            );
        }
        h.push_str(&tables::action_summary::html(report));
        h.push_str(&tables::kernel::html(report));
        h.push_str(&tables::evidence::html(report));
        let _ = writeln!(
            h,
            "<h2>ab view</h2>\n{}\n{}",
            note(AB_LEGEND),
            tables::ab_view(report).to_html()
        );
        for case in &report.cases {
            let _ = writeln!(
                h,
                "<details><summary>ab-style output: {}</summary>\n<pre>{}</pre>\n</details>",
                escape_html(&case.label()),
                escape_html(&ab_text(case))
            );
        }
        let _ = writeln!(
            h,
            "<h2>Environment</h2>\n{}",
            tables::environment(report).to_html()
        );
        if load.is_none() && !report.cases.is_empty() {
            let _ = writeln!(
                h,
                "<p>Load of each case:</p>\n{}",
                tables::load(report).to_html()
            );
        }
        let _ = writeln!(
            h,
            "<p>CPU time used during each case:</p>\n{}",
            tables::cpu(report).to_html()
        );
        h.push_str("</body>\n</html>\n");
        Ok(h.into_bytes())
    }
}

/// A note paragraph from one of the markdown legends (plain text, with
/// `code` spans).
fn note(text: &str) -> String {
    format!(
        "<p class=\"note\">{}</p>",
        escape_html(&text.replace('`', ""))
    )
}

/// The headline without markdown emphasis.
fn verdict_line(report: &RunReport) -> String {
    super::markdown::headline(report)
        .replace("**", "")
        .replace('`', "")
}
