//! Failed requests by case and class: one stacked bar per case (the seed's
//! table as a picture), the total written above each bar and each class's
//! count inside its segment where the segment is tall enough to hold it.

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordu64, RangedCoordusize};
use plotters::prelude::*;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::RunReport;

use super::legend::{self, Swatch};
use super::{
    CAPTION_SIZE, DrawResult, LABEL_SIZE, LEGEND_WIDTH, WIDTH, class_colour, font, house_mesh,
    titled,
};
use crate::summary::classes_present;

pub(super) fn size(_report: &RunReport) -> (u32, u32) {
    (WIDTH, 560)
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let body = titled(root, report, "failed requests by case and class")?;
    let (plot, legend_area) = body.split_horizontally(WIDTH - LEGEND_WIDTH);
    let n = report.cases.len();
    let top = report
        .cases
        .iter()
        .map(|c| c.load.failed)
        .max()
        .unwrap_or(0);
    let y_max = (top.max(4) as f64 * 1.15).ceil() as u64;
    let names: Vec<String> = report.cases.iter().map(|c| c.name.clone()).collect();
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        // An integer range is inclusive here: `0..n - 1` makes exactly n segments.
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0..y_max)?;
    house_mesh(&mut chart.configure_mesh())
        .disable_x_mesh()
        .y_labels(8)
        .x_labels(n.max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("failed requests")
        .x_desc("case")
        .draw()?;
    let classes = classes_present(report);
    for (i, case) in report.cases.iter().enumerate() {
        let mut y = 0;
        for &class in &classes {
            let count = case.failed_of(class);
            if count == 0 {
                continue;
            }
            draw_bar(chart.plotting_area(), (i, n), (y, y + count), class)?;
            draw_count(chart.plotting_area(), i, y, y + count)?;
            y += count;
        }
        let label = if case.load.failed == 0 {
            "0 failed".to_string()
        } else {
            format!("{} failed", case.load.failed)
        };
        let area = chart.plotting_area();
        let (px, py) = area.map_coordinate(&(SegmentValue::CenterOf(i), y));
        let style = font(CAPTION_SIZE)
            .color(&BLACK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Bottom,
            ));
        area.strip_coord_spec().draw(&Text::new(
            label,
            (
                px - area.get_base_pixel().0,
                py - area.get_base_pixel().1 - 4,
            ),
            style,
        ))?;
    }
    draw_legend(&legend_area, &classes)
}

/// The segment `lo..hi` of the bar of case `i` of `n`, in pixels: the
/// case's slot less 40 px on each side. (A rectangle from `Exact(i)` to
/// `Exact(i + 1)` reaches past the axis' last value: with one case its right
/// edge mapped onto its left one, and the SVG had a negative width, which a
/// browser does not draw.)
fn draw_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Cartesian2d<SegmentedCoord<RangedCoordusize>, RangedCoordu64>>,
    (i, n): (usize, usize),
    (lo, hi): (u64, u64),
    class: FailureClass,
) -> DrawResult<DB> {
    let (_, base_y) = area.get_base_pixel();
    let (width, _) = area.dim_in_pixel();
    let slot = f64::from(width) / n.max(1) as f64;
    let left = (slot * i as f64).round() as i32 + 40;
    let right = (slot * (i + 1) as f64).round() as i32 - 40;
    let (_, y_lo) = area.map_coordinate(&(SegmentValue::CenterOf(i), lo));
    let (_, y_hi) = area.map_coordinate(&(SegmentValue::CenterOf(i), hi));
    area.strip_coord_spec().draw(&Rectangle::new(
        [(left, y_hi - base_y), (right.max(left + 1), y_lo - base_y)],
        class_colour(class).filled(),
    ))
}

/// The count of one class, centred in its segment `lo..hi` of bar `i`, when
/// the segment is tall enough for a line of text.
fn draw_count<DB: DrawingBackend>(
    area: &DrawingArea<DB, Cartesian2d<SegmentedCoord<RangedCoordusize>, RangedCoordu64>>,
    i: usize,
    lo: u64,
    hi: u64,
) -> DrawResult<DB> {
    let (_, y_lo) = area.map_coordinate(&(SegmentValue::CenterOf(i), lo));
    let (x, y_hi) = area.map_coordinate(&(SegmentValue::CenterOf(i), hi));
    if y_lo - y_hi < i32::try_from(LABEL_SIZE + 4).unwrap_or(i32::MAX) {
        return Ok(());
    }
    let (bx, by) = area.get_base_pixel();
    let style = font(LABEL_SIZE)
        .color(&BLACK)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
    area.strip_coord_spec().draw(&Text::new(
        (hi - lo).to_string(),
        (x - bx, (y_lo + y_hi) / 2 - by),
        style,
    ))
}

fn draw_legend<DB: DrawingBackend>(
    legend_area: &DrawingArea<DB, Shift>,
    classes: &[reloadbench_model::outcome::FailureClass],
) -> DrawResult<DB> {
    let entries: Vec<(String, Swatch)> = classes
        .iter()
        .rev()
        .map(|&c| (c.label().to_string(), Swatch::Bar(class_colour(c))))
        .collect();
    if entries.is_empty() {
        legend_area.draw(&Text::new("no failures", (14, 40), font(LABEL_SIZE)))?;
        Ok(())
    } else {
        legend::draw(legend_area, 40, &entries)
    }
}
