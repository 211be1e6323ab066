//! `report.html` and `report.md` show the same values: every table of the
//! markdown is in the page, cell for cell and in the same order (a verdict
//! emoji of the markdown reads as its word in the page), and the data the
//! page's script explores agrees with the tables (actions, buckets).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::html::HtmlExporter;
use reloadbench_reports::summary::{bucket_rps, fmt_ms};
use reloadbench_reports::synthetic::{Shape, run};
use reloadbench_reports::{RunReport, render_markdown};
use serde_json::Value;

type Grid = Vec<Vec<String>>;

/// A markdown cell as the reader sees it: escapes undone, a verdict emoji
/// as the word the page writes for it.
fn md_cell(raw: &str) -> String {
    let c = raw.trim().replace("\\|", "|").replace("&lt;", "<");
    let c = match c.as_str() {
        "✅" => "passed".to_string(),
        "❌" => "failed".to_string(),
        _ => c,
    };
    c.replace(['✅', '❌', '⚠', '⏹'], "").trim().to_string()
}

/// The tables of a markdown document, header row first.
fn md_tables(md: &str) -> Vec<Grid> {
    let mut out = Vec::new();
    let mut cur: Grid = Vec::new();
    for line in md.lines().chain(std::iter::once("")) {
        if let Some(inner) = line.strip_prefix("| ").and_then(|l| l.strip_suffix(" |")) {
            // Split on ` | ` that is not an escaped `\|`.
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut chars = inner.chars().peekable();
            while let Some(ch) = chars.next() {
                if ch == '\\' && chars.peek() == Some(&'|') {
                    cell.push_str("\\|");
                    chars.next();
                } else if ch == '|' {
                    cells.push(md_cell(cell.trim_end()));
                    cell.clear();
                } else {
                    cell.push(ch);
                }
            }
            cells.push(md_cell(&cell));
            cur.push(cells);
        } else if line.starts_with("|:") || line.starts_with("|-") {
            continue;
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// Text of an HTML fragment: tags dropped, entities undone.
fn html_text(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in s.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

/// The tables of the page, header row first.
fn html_tables(html: &str) -> Vec<Grid> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<table") {
        let end = start + rest[start..].find("</table>").unwrap();
        let table = &rest[start..end];
        let mut grid = Vec::new();
        for row in table.split("<tr>").skip(1) {
            let row = row.split("</tr>").next().unwrap();
            let cells: Vec<String> = row
                .split("</t")
                .filter_map(|c| c.find('>').map(|i| html_text(&c[i + 1..])))
                .collect();
            // `split("</t")` leaves the text after the last cell: drop it.
            let n = row.matches("</t").count();
            grid.push(cells.into_iter().take(n).collect());
        }
        out.push(grid);
        rest = &rest[end..];
    }
    out
}

fn check(report: &RunReport) {
    let md = render_markdown(report);
    let html = String::from_utf8(HtmlExporter.render(report).unwrap()).unwrap();
    let mds = md_tables(&md);
    let htmls = html_tables(&html);
    assert!(!mds.is_empty());
    // Every markdown table, in order, is one of the page's tables.
    let mut at = 0;
    for t in &mds {
        let found = htmls[at..].iter().position(|h| h == t);
        let Some(i) = found else {
            panic!(
                "markdown table not in the page (from table {at} on):\n{t:#?}\npage tables:\n{:#?}",
                &htmls[at..]
            );
        };
        at += i + 1;
    }

    // The explorer's data: each action as its table row shows it, each
    // bucket's numbers as the markdown's formatting writes them.
    let start = html.find("id=\"rb-data\">").unwrap() + "id=\"rb-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&html[start..end]).unwrap();
    for (ci, case) in report.cases.iter().enumerate() {
        let d = &data["cases"][ci];
        assert_eq!(d["name"], case.label());
        if let Some(t) = reloadbench_reports::export::tables::actions(case) {
            let rows = d["a"].as_array().unwrap();
            assert_eq!(rows.len(), t.rows.len());
            for (a, row) in rows.iter().zip(&t.rows) {
                assert_eq!(a[0].to_string(), row[0]);
                assert_eq!(format!("{:.3}", a[1].as_f64().unwrap()), row[1]);
                assert_eq!(a[2], row[2].as_str());
            }
        }
        let shown = case
            .load
            .buckets
            .len()
            .min(d["b"].as_array().unwrap().len());
        assert_eq!(shown, case.load.buckets.len());
        for (i, (b, row)) in case
            .load
            .buckets
            .iter()
            .zip(d["b"].as_array().unwrap())
            .enumerate()
        {
            assert_eq!(row[0].as_u64().unwrap(), b.start_ns / 1_000_000);
            if let Some(rps) = row[1].as_f64() {
                assert_eq!(
                    format!("{rps:.1}"),
                    format!("{:.1}", bucket_rps(&case.load, i))
                );
            }
            if b.ok > 0 {
                assert_eq!(
                    format!("{:.2}", row[3].as_f64().unwrap()),
                    fmt_ms(b.latency.p99_us)
                );
                assert_eq!(
                    format!("{:.2}", row[4].as_f64().unwrap()),
                    fmt_ms(b.latency.max_us)
                );
            }
            let failed: u64 = row[5]
                .as_array()
                .unwrap()
                .chunks(2)
                .map(|p| p[1].as_u64().unwrap())
                .sum();
            assert_eq!(failed, b.failed_total());
        }
    }
}

#[test]
fn the_fixture_run_shows_the_same_values_in_html_and_markdown() {
    check(&support::fixture());
}

#[test]
fn a_run_with_long_cases_shows_the_same_values_in_html_and_markdown() {
    check(&run(Shape {
        cases: 3,
        buckets: 300,
        actions: 40,
        failing_every: 3,
    }));
}
