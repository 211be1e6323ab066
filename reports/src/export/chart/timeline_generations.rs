//! The old-generations strip of a timeline panel (cases with a
//! [`GenerationSeries`]): how many old processes and old generations of the
//! server were alive over time, as steps on the panel's time axis with its
//! action markers, and the processes of the server's tree when they were
//! counted (the process tree, not the proxy's events). A pile-up of old
//! processes held by long-lived connections shows as a staircase.
//!
//! With more points than pixel columns, each column shows the most of each
//! count in it ([`super::dense::step_max`]).

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::generations::{GenerationSeries, GenerationSource};
use reloadbench_model::run::CaseReport;

use super::dense::{Columns, step_max};
use super::legend::Swatch;
use super::{DrawResult, count_tick, house_mesh, time_axis};

/// Height of the strip.
pub(super) const STRIP_HEIGHT: u32 = 160;
/// Colour of the old processes steps.
const OLD_PROCESSES: RGBColor = RGBColor(0xc4, 0x4e, 0x52);
/// Colour of the old generations steps.
const OLD_GENERATIONS: RGBColor = RGBColor(0x55, 0x2a, 0x7f);
/// Colour of the processes alive steps.
const PROCESSES: RGBColor = RGBColor(0x99, 0x99, 0x99);

/// True when the case's panel has an old-generations strip.
pub(super) fn has_strip(case: &CaseReport) -> bool {
    case.generations.is_some()
}

type Pick = fn(&reloadbench_model::generations::GenerationPoint) -> Option<u32>;

/// The counts the strip draws, with their colour and legend label.
fn series(s: &GenerationSeries) -> Vec<(Pick, RGBColor, &'static str)> {
    let mut out: Vec<(Pick, RGBColor, &'static str)> = Vec::new();
    if s.source == GenerationSource::ProcessTree {
        out.push((|p| p.processes, PROCESSES, "server processes"));
        out.push((|p| Some(p.old_processes), OLD_PROCESSES, "old processes"));
    }
    out.push((
        |p| Some(p.old_generations),
        OLD_GENERATIONS,
        "old generations",
    ));
    out
}

/// A step line of `pick` over `0..end_s`: per point, or per pixel column
/// (the most in it) when the points outnumber the columns.
fn steps(s: &GenerationSeries, pick: Pick, columns: Columns, end_s: f64) -> Vec<(f64, f64)> {
    let samples = s
        .points
        .iter()
        .filter_map(|p| pick(p).map(|v| (p.t_ns as f64 / 1e9, f64::from(v))));
    if s.points.len() > columns.width() as usize {
        let mut out = vec![None; columns.width() as usize];
        step_max(columns, samples, end_s, &mut out);
        return out
            .iter()
            .enumerate()
            .filter_map(|(c, v)| {
                let (a, b) = columns.span(c as u32);
                v.map(|v| [(a, v), (b, v)])
            })
            .flatten()
            .collect();
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (t, v) in samples {
        if let Some(&(_, prev)) = out.last() {
            out.push((t, prev));
        }
        out.push((t, v));
    }
    if let Some(&(t, v)) = out.last()
        && t < end_s
    {
        out.push((end_s, v));
    }
    out
}

/// Draws the strip on `area` over `0..t_max_s` (the series ends at
/// `end_s`); `markers` draws the action markers on the plotting area.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &GenerationSeries,
    (t_max_s, end_s): (f64, f64),
    columns: Columns,
    markers: impl FnOnce(&DrawingArea<DB, Shift>) -> DrawResult<DB>,
) -> DrawResult<DB> {
    let top = s
        .points
        .iter()
        .flat_map(|p| [p.processes.unwrap_or(0), p.old_processes, p.old_generations])
        .max()
        .unwrap_or(0);
    let mut chart = super::timeline::aligned(area)
        .margin_top(4)
        .x_label_area_size(24)
        .build_cartesian_2d(0.0..t_max_s, 0.0..(f64::from(top) * 1.25).max(4.0))?;
    let desc = match s.source {
        GenerationSource::Events => "old generations",
        GenerationSource::ProcessTree => "processes",
    };
    time_axis(house_mesh(&mut chart.configure_mesh()))
        .y_labels(4)
        .y_label_formatter(&count_tick)
        .y_desc(desc)
        .draw()?;
    for (pick, colour, _) in series(s) {
        chart.draw_series(LineSeries::new(
            steps(s, pick, columns, end_s),
            colour.stroke_width(2),
        ))?;
    }
    markers(&chart.plotting_area().strip_coord_spec())
}

/// The legend entries of the strip, with the maxima.
pub(super) fn legend(s: &GenerationSeries) -> Vec<(String, Swatch)> {
    series(s)
        .into_iter()
        .map(|(_, colour, label)| {
            let text = match label {
                "old processes" => format!("old processes (max {})", s.old_processes_max),
                "old generations" => format!("old generations (max {})", s.old_generations_max),
                other => other.to_owned(),
            };
            (text, Swatch::Line(colour))
        })
        .collect()
}
