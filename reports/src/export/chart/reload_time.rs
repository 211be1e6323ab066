//! Reload time per action: one horizontal bar per action of every case,
//! from the trigger (0 ms) until the new process was ready, continued until
//! the old process had drained, with a tick where the old process exited.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::run::{ActionReport, RunReport};

use super::legend::{self, Swatch};
use super::{CAPTION_SIZE, DrawResult, GRID, LABEL_SIZE, LEGEND_WIDTH, WIDTH, font, titled};

/// Trigger until the new process was ready.
const STARTING: RGBColor = RGBColor(0x4e, 0x79, 0xa7);
/// New process ready until the old one drained.
const DRAINING: RGBColor = RGBColor(0xa0, 0xcb, 0xe8);
/// Old process exited.
const EXITED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// Height of one action's row.
const ROW: u32 = 34;

/// The actions drawn: those with at least one of ready, drained or exited.
fn rows(report: &RunReport) -> Vec<(String, &ActionReport)> {
    report
        .cases
        .iter()
        .flat_map(|c| {
            c.actions
                .iter()
                .filter(|a| a.ready_ns.is_some() || a.drained_ns.is_some() || a.exited_ns.is_some())
                .map(move |a| (format!("{} #{}: {}", c.name, a.index, a.label), a))
        })
        .collect()
}

pub(super) fn size(report: &RunReport) -> (u32, u32) {
    let n = rows(report).len() as u32;
    (WIDTH, (140 + n * ROW).max(320))
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let body = titled(root, report, "reload time per action (from its trigger)")?;
    let rows = rows(report);
    if rows.is_empty() {
        return body.draw(&Text::new(
            "no action reported ready, drained or exited: nothing to time",
            (40, 60),
            font(CAPTION_SIZE),
        ));
    }
    let (plot, legend_area) = body.split_horizontally(WIDTH - LEGEND_WIDTH);
    let since = |a: &ActionReport, t: Option<u64>| t.map(|t| ms(t.saturating_sub(a.trigger_ns)));
    let x_max = rows
        .iter()
        .flat_map(|(_, a)| {
            [
                since(a, a.ready_ns),
                since(a, a.drained_ns),
                since(a, a.exited_ns),
            ]
        })
        .flatten()
        .fold(1.0f64, f64::max)
        * 1.2;
    let labels: Vec<String> = rows.iter().map(|(l, _)| l.clone()).collect();
    let n = rows.len();
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(300)
        .build_cartesian_2d(0.0..x_max, (0..n.saturating_sub(1)).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .x_labels(12)
        .y_labels(n)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| match v {
            // Top row first: row i is drawn at segment n - 1 - i.
            SegmentValue::CenterOf(i) => labels.get(n - 1 - *i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("ms since the action was triggered")
        .label_style(font(LABEL_SIZE))
        .axis_desc_style(font(LABEL_SIZE))
        .draw()?;
    let area = chart.plotting_area().clone();
    for (i, (_, a)) in rows.iter().enumerate() {
        let seg = n - 1 - i;
        let bar = |from: f64, to: f64, c: RGBColor| {
            let mut r = Rectangle::new(
                [
                    (from, SegmentValue::Exact(seg)),
                    (to, SegmentValue::Exact(seg + 1)),
                ],
                c.filled(),
            );
            r.set_margin(7, 7, 0, 0);
            r
        };
        let ready = since(a, a.ready_ns);
        let drained = since(a, a.drained_ns);
        if let Some(r) = ready {
            area.draw(&bar(0.0, r, STARTING))?;
            if let Some(d) = drained.filter(|d| *d > r) {
                area.draw(&bar(r, d, DRAINING))?;
            }
        } else if let Some(d) = drained {
            area.draw(&bar(0.0, d, DRAINING))?;
        }
        if let Some(e) = since(a, a.exited_ns) {
            let (x, y0) = area.map_coordinate(&(e, SegmentValue::Exact(seg + 1)));
            let (_, y1) = area.map_coordinate(&(e, SegmentValue::Exact(seg)));
            let base = area.get_base_pixel();
            area.strip_coord_spec().draw(&PathElement::new(
                vec![(x - base.0, y0 - base.1 + 4), (x - base.0, y1 - base.1 - 4)],
                EXITED.stroke_width(3),
            ))?;
        }
        let end = [ready, drained, since(a, a.exited_ns)]
            .into_iter()
            .flatten()
            .fold(0.0f64, f64::max);
        let text = match ready {
            Some(r) => format!("ready {r:.0} ms"),
            None if a.ok => "no ready event".to_string(),
            None => "reload failed".to_string(),
        };
        let (x, y) = area.map_coordinate(&(end, SegmentValue::CenterOf(seg)));
        let base = area.get_base_pixel();
        area.strip_coord_spec().draw(&Text::new(
            text,
            (x - base.0 + 6, y - base.1 - 7),
            font(LABEL_SIZE).color(&BLACK),
        ))?;
    }
    legend::draw(
        &legend_area,
        40,
        &[
            ("trigger → new ready".to_string(), Swatch::Bar(STARTING)),
            ("ready → old drained".to_string(), Swatch::Bar(DRAINING)),
            ("old process exited".to_string(), Swatch::Marker(EXITED)),
        ],
    )
}
