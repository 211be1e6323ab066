//! The WebSocket strip of a timeline panel (cases whose load held
//! WebSocket connections only): connections open at each bucket's end
//! (left axis) and messages echoed per second (right axis), on the panel's
//! time axis with its action markers; connections cut and closed cleanly
//! by the server are marks on the time axis (ticks rising from it, red for
//! cuts, blue for clean closes, with their count where it fits).
//!
//! When the buckets outnumber the pixel columns, each column shows the
//! fewest open connections of its buckets (a dip keeps its depth), the mean
//! messages/s, and the sum of its cuts and closes.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::run::CaseReport;

use super::dense::Columns;
use super::legend::Swatch;
use super::{DrawResult, LABEL_SIZE, count_tick, font, house_mesh, time_axis};
use crate::ws_buckets::{WsRow, rows};

/// Height of the strip under a WebSocket case's requests half.
pub(super) const STRIP_HEIGHT: u32 = 200;
/// Colour of the open connections line.
const OPEN: RGBColor = RGBColor(0x1b, 0x6e, 0x5a);
/// Colour of the messages/s line.
const MESSAGES: RGBColor = RGBColor(0x8e, 0x5c, 0xb8);
/// Colour of the cut marks.
const CUT: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// Colour of the clean-close marks.
const CLOSED: RGBColor = RGBColor(0x1f, 0x77, 0xb4);

/// True when the case's panel has a WebSocket strip.
pub(super) fn has_strip(case: &CaseReport) -> bool {
    case.load.ws.is_some()
}

/// The end of the last bucket with a WebSocket count, ns.
pub(super) fn end_ns(ws: &reloadbench_model::ws::WsReport) -> u64 {
    let b = &ws.buckets;
    let last = [
        &b.opened,
        &b.failed,
        &b.closed_cleanly,
        &b.cut,
        &b.sent,
        &b.echoed,
        &b.lost,
        &b.late,
    ]
    .iter()
    .flat_map(|c| c.last().map(|&(i, _)| i + 1))
    .max()
    .unwrap_or(0);
    (last as u64).saturating_mul(b.width_ns)
}

/// One point of the strip: `[from_s, to_s)` with its figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Point {
    pub(super) from_s: f64,
    pub(super) to_s: f64,
    /// Open connections (the fewest of an aggregated column).
    pub(super) open: u64,
    /// Messages echoed per second (the mean of an aggregated column).
    pub(super) echoed_per_s: f64,
    /// Connections cut, closed cleanly (summed over a column).
    pub(super) cut: u64,
    pub(super) closed: u64,
}

/// The points of `case`: one per bucket, or per pixel column of `columns`
/// when the buckets outnumber them.
pub(super) fn points(case: &CaseReport, columns: Columns) -> Vec<Point> {
    let Some(ws) = &case.load.ws else {
        return Vec::new();
    };
    let width_ns = ws.buckets.width_ns.max(1);
    let bucket_s = width_ns as f64 / 1e9;
    let rows = rows(&ws.buckets);
    let per_s = |r: &WsRow| r.echoed as f64 / bucket_s;
    if rows.len() <= columns.width() as usize {
        return rows
            .iter()
            .enumerate()
            .map(|(i, r)| Point {
                from_s: i as f64 * bucket_s,
                to_s: (i + 1) as f64 * bucket_s,
                open: r.open,
                echoed_per_s: per_s(r),
                cut: r.cut,
                closed: r.closed,
            })
            .collect();
    }
    columns
        .group((0..rows.len()).map(|i| (i as f64 + 0.5) * bucket_s))
        .into_iter()
        .map(|(c, range)| {
            let (from_s, to_s) = columns.span(c);
            let of = &rows[range];
            Point {
                from_s,
                to_s,
                open: of.iter().map(|r| r.open).min().unwrap_or(0),
                echoed_per_s: of.iter().map(per_s).sum::<f64>() / of.len().max(1) as f64,
                cut: of.iter().map(|r| r.cut).sum(),
                closed: of.iter().map(|r| r.closed).sum(),
            }
        })
        .collect()
}

/// Draws the strip on `area` over `0..t_max_s`; `markers` draws the
/// action markers on the plotting area (in pixels).
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[Point],
    t_max_s: f64,
    markers: impl FnOnce(&DrawingArea<DB, Shift>) -> DrawResult<DB>,
) -> DrawResult<DB> {
    let open_max = points.iter().map(|p| p.open).max().unwrap_or(0);
    let msg_max = points.iter().map(|p| p.echoed_per_s).fold(0.0, f64::max);
    let mut chart = super::timeline::aligned(area)
        .margin_top(4)
        .x_label_area_size(24)
        .build_cartesian_2d(0.0..t_max_s, 0.0..(open_max as f64 * 1.3).max(10.0))?
        .set_secondary_coord(0.0..t_max_s, 0.0..(msg_max * 1.3).max(10.0));
    time_axis(house_mesh(&mut chart.configure_mesh()))
        .y_labels(4)
        .y_label_formatter(&count_tick)
        .y_desc("open WebSockets")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("messages echoed/s")
        .y_labels(4)
        .y_label_formatter(&count_tick)
        .label_style(font(LABEL_SIZE))
        .axis_desc_style(font(LABEL_SIZE))
        .draw()?;
    // Open connections: a step per bucket (the count at its end).
    chart.draw_series(LineSeries::new(
        points
            .iter()
            .flat_map(|p| [(p.from_s, p.open as f64), (p.to_s, p.open as f64)]),
        OPEN.stroke_width(2),
    ))?;
    chart.draw_secondary_series(LineSeries::new(
        points
            .iter()
            .map(|p| ((p.from_s + p.to_s) / 2.0, p.echoed_per_s)),
        MESSAGES.stroke_width(2),
    ))?;
    let plot = chart.plotting_area().strip_coord_spec();
    markers(&plot)?;
    draw_ends(&plot, points, t_max_s)
}

/// The cut and clean-close marks: ticks rising from the time axis at the
/// buckets where connections ended, their count next to them where it fits.
fn draw_ends<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[Point],
    t_max_s: f64,
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let h = h as i32;
    let x_of = |s: f64| (s / t_max_s * f64::from(w)).round() as i32;
    let mut next_label = [i32::MIN, i32::MIN];
    for p in points {
        let x = x_of((p.from_s + p.to_s) / 2.0);
        for (k, (n, colour, tall)) in [(p.cut, CUT, 34), (p.closed, CLOSED, 22)]
            .into_iter()
            .enumerate()
        {
            if n == 0 {
                continue;
            }
            area.draw(&PathElement::new(
                vec![(x, h), (x, h - tall)],
                colour.stroke_width(3),
            ))?;
            if x >= next_label[k] {
                let style = font(LABEL_SIZE - 2).color(&colour);
                let text = n.to_string();
                let (tw, th) = area.estimate_text_size(&text, &style)?;
                area.draw(&Text::new(text, (x + 3, h - tall - th as i32), style))?;
                next_label[k] = x + tw as i32 + 6;
            }
        }
    }
    Ok(())
}

/// The legend entries of the strip.
pub(super) fn legend() -> [(String, Swatch); 4] {
    [
        ("open WebSockets".to_owned(), Swatch::Line(OPEN)),
        ("messages echoed/s".to_owned(), Swatch::Line(MESSAGES)),
        ("WebSockets cut".to_owned(), Swatch::Marker(CUT)),
        ("closed cleanly".to_owned(), Swatch::Marker(CLOSED)),
    ]
}
