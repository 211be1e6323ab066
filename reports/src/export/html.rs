//! `report.html`: one self-contained page (inline CSS, inline SVG charts, the
//! same tables as `report.md`) that opens from disk without a network.

use std::fmt::Write as _;

use reloadbench_model::run::RunReport;

use super::Exporter;
use super::ab_text::ab_text;
use super::chart::{Chart, render_svg, render_timeline_panels};
use super::glossary;
use super::grid::{escape_html, marks_html};
use super::html_data::page_data;
use super::markdown::{AB_LEGEND, EXPECTATIONS_LEGEND, FAILURES_LEGEND, SUMMARY_LEGEND, load_line};
use super::tables;
use crate::error::ExportError;

/// The page's style sheet (inline).
const STYLE: &str = include_str!("../../assets/report.css");
/// The page's script (inline): explores the data of [`page_data`].
const SCRIPT: &str = include_str!("../../assets/report.js");
/// The page loads nothing: styles, scripts and images are all inline, and
/// this policy blocks (and reports in the console) any request it would make.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data:";

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
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
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
        let _ = writeln!(h, "<div id=\"rb-cases\" hidden></div>\n<h2>Summary</h2>");
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
        if report.cases.iter().any(tables::ws_rows::is_ws) {
            let _ = writeln!(h, "{}", note(tables::ws_rows::WS_ROWS_LEGEND));
        }
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
        if let Some(t) = tables::h2::h2(report) {
            let _ = writeln!(
                h,
                "<h3>HTTP/2 streams</h3>\n{}\n{}",
                t.to_html(),
                note(tables::h2::H2_LEGEND)
            );
        }
        if let Some(t) = tables::ws::ws(report) {
            let _ = writeln!(
                h,
                "<h3>WebSocket connections</h3>\n{}\n{}",
                t.to_html(),
                note(tables::ws::WS_LEGEND)
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
        let (axis, panels) = render_timeline_panels(report)?;
        h.push_str(&timeline_figure(report, &panels));
        for chart in Chart::ALL.into_iter().filter(|&c| c != Chart::Timeline) {
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
        let mut page = marks_html(&h);
        let _ = write!(
            page,
            "<script type=\"application/json\" id=\"rb-data\">{}</script>\n\
             <script>{SCRIPT}</script>\n</body>\n</html>\n",
            page_data(report, &axis)
        );
        Ok(page.into_bytes())
    }
}

/// The timeline figure: one panel per case (each its own SVG, so a case can
/// be hidden), under a heading that says what the panels show.
fn timeline_figure(report: &RunReport, panels: &[String]) -> String {
    let chart = Chart::Timeline;
    let bucket_ms = report
        .cases
        .first()
        .map_or(100, |c| c.load.config.bucket_ns() / 1_000_000);
    let mut h = format!(
        "<figure id=\"{}\" aria-label=\"{}\">\n<h3>{}: ok requests/s, failures and latency per {bucket_ms} ms</h3>\n\
         <p class=\"note\">Point at a panel for the numbers of a time bucket; click an action's line for its row of the actions table.</p>\n",
        chart.stem(),
        escape_html(chart.title()),
        escape_html(&report.scenario.name)
    );
    for (i, svg) in panels.iter().enumerate() {
        let _ = writeln!(h, "<div class=\"rb-panel\" data-case=\"{i}\">{svg}</div>");
    }
    let mut caption = chart.how_to_read().to_owned();
    if let Some(note) = super::chart::timeline_strips_note(report) {
        caption.push(' ');
        caption.push_str(&note);
    }
    let _ = writeln!(
        h,
        "<figcaption class=\"note\">{}</figcaption>\n</figure>",
        escape_html(&caption)
    );
    h
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
