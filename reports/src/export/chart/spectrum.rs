//! The latency percentile spectrum of every case on one chart, HdrHistogram
//! style: the x axis is log₁₀(1 / (1 − p)), so 90 %, 99 %, 99.9 % and 99.99 %
//! are equally spaced and the tail is visible; the y axis is latency in ms on
//! a logarithmic scale. Each case's overall percentiles of successful
//! requests are drawn, with its maximum as a marker at the right edge.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::run::RunReport;

use super::legend::{self, Swatch};
use super::{
    CAPTION_SIZE, DrawResult, LABEL_SIZE, LEGEND_WIDTH, WIDTH, case_colour, fmt_ms_tick, font,
    house_mesh, latency_range, log_ticks, titled,
};

/// Rightmost tick: 99.99 % (four nines).
const MAX_NINES: f64 = 4.0;
/// Where each case's maximum is drawn, right of the last tick, in x units.
const MAX_X: i32 = 4400;
/// x units per "nine": the axis is integer (milli-nines) so it takes fixed key points.
const UNIT: f64 = 1000.0;

pub(super) fn size(_report: &RunReport) -> (u32, u32) {
    (WIDTH, 620)
}

/// log₁₀(1 / (1 − p/100)): 0 at the 0th percentile, 1 at 90 %, 2 at 99 %, ...
fn nines(p: f64) -> f64 {
    -(1.0 - p / 100.0).max(1e-9).log10()
}

/// The x position of percentile `p`.
fn x_of(p: f64) -> i32 {
    (nines(p) * UNIT).round() as i32
}

/// The plotted points of one case: (x, ms) for each percentile below 100 %.
fn points(case: &reloadbench_model::run::CaseReport) -> Vec<(i32, f64)> {
    let lat = &case.load.latency;
    if lat.count == 0 {
        return Vec::new();
    }
    lat.percentiles
        .iter()
        .filter(|q| q.p > 0.0 && q.p < 100.0 && nines(q.p) <= MAX_NINES + 1e-9)
        .map(|q| (x_of(q.p), (q.us.max(1) as f64) / 1000.0))
        .collect()
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let body = titled(root, report, "latency by percentile (successful requests)")?;
    let (plot, legend_area) = body.split_horizontally(WIDTH - LEGEND_WIDTH);
    let mut lo = f64::MAX;
    let mut hi: f64 = 1.0;
    for case in &report.cases {
        for (_, ms) in points(case) {
            lo = lo.min(ms);
            hi = hi.max(ms);
        }
        if case.load.latency.count > 0 {
            hi = hi.max(case.load.latency.max_us as f64 / 1000.0);
        }
    }
    let (lo, hi) = latency_range(lo, hi);
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0..MAX_X + 100).with_key_points(vec![x_of(50.0), 1000, 2000, 3000, 4000, MAX_X]),
            (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
        )?;
    house_mesh(&mut chart.configure_mesh())
        .x_label_formatter(&|x| x_label(*x))
        .y_label_formatter(&|v| fmt_ms_tick(*v))
        .x_desc("percentile (log scale of 1 / (1 − p))")
        .y_desc("latency ms (log)")
        .draw()?;
    let mut entries = Vec::new();
    for (i, case) in report.cases.iter().enumerate() {
        let c = case_colour(i);
        let pts = points(case);
        if pts.is_empty() {
            continue;
        }
        chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(3)))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        let max_ms = case.load.latency.max_us.max(1) as f64 / 1000.0;
        chart.draw_series(std::iter::once(TriangleMarker::new(
            (MAX_X, max_ms),
            7,
            c.filled(),
        )))?;
        entries.push((case.name.clone(), Swatch::Line(c)));
    }
    if entries.is_empty() {
        plot.draw(&Text::new(
            "no successful requests: no latency to show",
            (120, 120),
            font(CAPTION_SIZE),
        ))?;
    }
    legend::draw(&legend_area, 40, &entries)?;
    let note = font(LABEL_SIZE - 1).color(&BLACK);
    let y = 50 + 22 * entries.len() as i32;
    legend_area.draw(&Text::new("▲ = maximum", (14, y), note.clone()))?;
    legend_area.draw(&Text::new(
        "overall percentiles",
        (14, y + 20),
        note.clone(),
    ))?;
    legend_area.draw(&Text::new("of each case", (14, y + 38), note))?;
    Ok(())
}

/// `50%`, `90%`, ... `99.99%`, and `max` at the right edge.
fn x_label(x: i32) -> String {
    if x == MAX_X {
        return "max".to_string();
    }
    let p = 100.0 * (1.0 - 10f64.powf(-f64::from(x) / UNIT));
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels_read_as_nines() {
        assert_eq!(x_label(x_of(50.0)), "50%");
        assert_eq!(x_label(1000), "90%");
        assert_eq!(x_label(3000), "99.9%");
        assert_eq!(x_label(4000), "99.99%");
        assert_eq!(x_label(MAX_X), "max");
    }
}
