//! Accept-queue depth per listening socket over time: one panel per case,
//! one step line per listening socket seen on the system under test's
//! address (from the kernel, see `reloadbench_model::evidence`), with a
//! vertical marker at every action trigger and where the old processes were
//! observed to stop accepting. The depth axis is shared by all panels.
//!
//! This is where a naive reload's resets show: connections queued on the
//! old socket when it closed.
//!
//! Long and busy runs stay readable and bounded (see [`super::dense`]): a
//! socket with more steps than the plot has pixel columns is drawn as its
//! deepest queue per column; a case with more than [`MAX_SOCKET_LINES`]
//! sockets (one per naive reload) as one area, the deepest queue of any of
//! its sockets per column; actions denser than
//! [`super::dense::MAX_ACTIONS_PER_100PX`] as two rugs at the top edge.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use reloadbench_model::evidence::{CaseEvidence, QueueSeries};
use reloadbench_model::run::{CaseReport, RunReport};
use reloadbench_model::words::count;

use super::dense::{self, Columns, step_max};
use super::legend::{self, Swatch};
use super::marks::{self, RUG_HEIGHT};
use super::{
    CAPTION_SIZE, DrawResult, GRID, LABEL_SIZE, LEGEND_WIDTH, TRIGGER, WIDTH, case_colour,
    count_tick, font, house_mesh, time_axis, titled,
};

/// Height of one case's panel.
const PANEL_HEIGHT: u32 = 260;
/// Height of the figure title.
const TITLE_HEIGHT: u32 = 50;
/// Colour of "old stopped accepting" markers.
const STOPPED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// Legend entries per panel at most (sockets beyond are summed up in one line).
const MAX_LEGEND: usize = 6;
/// Most sockets drawn as a line each; a case with more is drawn as the
/// deepest queue of any socket per pixel column.
pub(super) const MAX_SOCKET_LINES: usize = 12;

pub(super) fn size(report: &RunReport) -> (u32, u32) {
    let n = report.cases.len().max(1) as u32;
    (WIDTH, TITLE_HEIGHT + n * PANEL_HEIGHT)
}

/// Shared axes: time to the longest case, depth to the deepest queue.
fn scales(report: &RunReport) -> (f64, f64) {
    let mut t_max = 1.0f64;
    let mut d_max = 0u32;
    for c in &report.cases {
        t_max = t_max.max(c.load.elapsed_ns as f64 / 1e9);
        if let Some(e) = &c.evidence {
            d_max = d_max.max(e.max_depth());
            for q in &e.queues {
                t_max = t_max.max(q.last_seen_ns as f64 / 1e9);
            }
        }
    }
    (t_max, (f64::from(d_max) * 1.2).max(5.0))
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let body = titled(root, report, "accept-queue depth per listening socket")?;
    if report.cases.is_empty() {
        return body.draw(&Text::new(
            "no cases in this run",
            (40, 40),
            font(CAPTION_SIZE),
        ));
    }
    let s = scales(report);
    let rows = body.split_evenly((report.cases.len(), 1));
    for (case, row) in report.cases.iter().zip(&rows) {
        match &case.evidence {
            Some(e) => draw_case(row, case, e, s)?,
            None => row.draw(&Text::new(
                format!("{}: no kernel evidence recorded", case.name),
                (40, 30),
                font(CAPTION_SIZE),
            ))?,
        }
    }
    Ok(())
}

/// The step line of one socket: each depth holds until the next point, the
/// last one until the socket was last seen.
fn steps(q: &QueueSeries) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(q.depth.len() * 2 + 1);
    let mut last: Option<f64> = None;
    for &(t, d) in &q.depth {
        let x = t as f64 / 1e9;
        if let Some(prev) = last {
            pts.push((x, prev));
        }
        pts.push((x, f64::from(d)));
        last = Some(f64::from(d));
    }
    if let Some(prev) = last {
        pts.push((q.last_seen_ns as f64 / 1e9, prev));
    }
    pts
}

/// Legend text of socket number `i` (from 0): its deepest queue and backlog
/// (its owners are in the report's phase table).
fn socket_label(i: usize, q: &QueueSeries) -> String {
    format!("socket {}: max {} of {}", i + 1, q.max_depth, q.backlog)
}

fn draw_case<DB: DrawingBackend>(
    row: &DrawingArea<DB, Shift>,
    case: &CaseReport,
    e: &CaseEvidence,
    (t_max, d_max): (f64, f64),
) -> DrawResult<DB> {
    let (plot, legend_area) = row.split_horizontally(WIDTH - LEGEND_WIDTH);
    let caption = format!(
        "{}: {}, deepest queue {} (sampled every {:.0} ms around actions, {:.0} ms otherwise)",
        case.name,
        count(e.queues.len() as u64, "listening socket"),
        e.max_depth(),
        e.fast_interval_ns as f64 / 1e6,
        e.slow_interval_ns as f64 / 1e6,
    );
    let mut chart = ChartBuilder::on(&plot)
        .caption(caption, font(LABEL_SIZE + 1))
        .margin_left(8)
        .margin_right(8)
        .margin_top(4)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..d_max)?;
    time_axis(house_mesh(&mut chart.configure_mesh()))
        .y_labels(5)
        .y_label_formatter(&count_tick)
        .x_desc("s since load start")
        .y_desc("connections queued")
        .draw()?;
    let (w, _) = chart.plotting_area().dim_in_pixel();
    let columns = Columns::new(t_max, w);
    let dense_actions = marks::actions_too_dense(&case.actions, t_max, w);
    if dense_actions {
        draw_action_rugs(&chart.plotting_area().strip_coord_spec(), case, columns)?;
    } else {
        draw_action_lines(&mut chart, case, d_max)?;
    }
    let mut entries = Vec::new();
    if e.queues.len() > MAX_SOCKET_LINES {
        let colour = case_colour(0);
        let mut deepest = vec![None; w as usize];
        for q in &e.queues {
            step_max(
                columns,
                samples(q),
                q.last_seen_ns as f64 / 1e9,
                &mut deepest,
            );
        }
        chart.draw_series(std::iter::once(Polygon::new(
            area_outline(columns, &deepest),
            colour.filled(),
        )))?;
        entries.push((
            format!("max of {}", count(e.queues.len() as u64, "socket")),
            Swatch::Bar(colour),
        ));
    } else {
        for (i, q) in e.queues.iter().enumerate() {
            let colour = case_colour(i);
            let line = steps(q);
            if line.len() <= w as usize {
                chart.draw_series(LineSeries::new(line, colour.stroke_width(2)))?;
            } else {
                let mut deepest = vec![None; w as usize];
                step_max(
                    columns,
                    samples(q),
                    q.last_seen_ns as f64 / 1e9,
                    &mut deepest,
                );
                for run in column_runs(columns, &deepest) {
                    chart.draw_series(LineSeries::new(run, colour.stroke_width(2)))?;
                }
            }
            if i < MAX_LEGEND {
                entries.push((socket_label(i, q), Swatch::Line(colour)));
            }
        }
        if e.queues.len() > MAX_LEGEND {
            entries.push((
                format!("and {} more sockets", e.queues.len() - MAX_LEGEND),
                Swatch::Line(GRID),
            ));
        }
    }
    let (trigger, stopped) = if dense_actions {
        ("actions (rug)", "old stopped (rug)")
    } else {
        ("action triggered", "old stopped accepting")
    };
    entries.push((trigger.into(), Swatch::Marker(TRIGGER)));
    entries.push((stopped.into(), Swatch::Marker(STOPPED)));
    legend::draw(&legend_area, 30, &entries)
}

/// A trigger line at every action and a "stopped accepting" line where the
/// old processes were observed to stop.
fn draw_action_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    case: &CaseReport,
    d_max: f64,
) -> DrawResult<DB> {
    for a in &case.actions {
        let x = a.trigger_ns as f64 / 1e9;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, d_max)],
            TRIGGER.stroke_width(1),
        )))?;
        if let Some(t) = a.observed.as_ref().and_then(|o| o.old_stopped_accepting_ns) {
            let x = t as f64 / 1e9;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, d_max * 0.5)],
                STOPPED.stroke_width(2),
            )))?;
        }
    }
    Ok(())
}

/// Dense actions: a rug of triggers at the top edge of the plotting area
/// and under it a rug of "old stopped accepting".
fn draw_action_rugs<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    case: &CaseReport,
    columns: Columns,
) -> DrawResult<DB> {
    let secs = |ns: u64| ns as f64 / 1e9;
    let triggers = dense::rug(columns, case.actions.iter().map(|a| secs(a.trigger_ns)));
    let stopped = dense::rug(
        columns,
        case.actions
            .iter()
            .filter_map(|a| a.observed.as_ref()?.old_stopped_accepting_ns)
            .map(secs),
    );
    marks::draw_rug(area, &triggers, (0, RUG_HEIGHT), TRIGGER)?;
    marks::draw_rug(
        area,
        &stopped,
        (RUG_HEIGHT + 1, 2 * RUG_HEIGHT + 1),
        STOPPED,
    )
}

/// A socket's depth samples in seconds.
fn samples(q: &QueueSeries) -> impl Iterator<Item = (f64, f64)> + '_ {
    q.depth.iter().map(|&(t, d)| (t as f64 / 1e9, f64::from(d)))
}

/// Runs of columns with a value, as points at the columns' middles.
fn column_runs(columns: Columns, values: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
    dense::runs(
        values
            .iter()
            .enumerate()
            .map(|(c, v)| v.map(|v| (columns.mid(c as u32), v))),
    )
}

/// Outline of the area under per-column `values` (steps, from depth 0),
/// with one corner per change of value.
fn area_outline(columns: Columns, values: &[Option<f64>]) -> Vec<(f64, f64)> {
    let mut pts = vec![(0.0, 0.0)];
    let mut last = 0.0;
    for (c, v) in values.iter().enumerate() {
        let v = v.unwrap_or(0.0);
        if v != last {
            let (from, _) = columns.span(c as u32);
            pts.push((from, last));
            pts.push((from, v));
            last = v;
        }
    }
    let (_, end) = columns.span(columns.width() - 1);
    pts.push((end, last));
    pts.push((end, 0.0));
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_hold_each_depth_until_the_next_change() {
        let q = QueueSeries {
            depth: vec![(0, 0), (1_000_000_000, 3)],
            last_seen_ns: 2_000_000_000,
            ..QueueSeries::default()
        };
        assert_eq!(
            steps(&q),
            vec![(0.0, 0.0), (1.0, 0.0), (1.0, 3.0), (2.0, 3.0)]
        );
    }

    #[test]
    fn a_socket_sampled_more_often_than_there_are_pixels_is_drawn_per_column() {
        let mut run = crate::synthetic::run(crate::synthetic::Shape {
            cases: 1,
            buckets: 600,
            actions: 2,
            failing_every: 0,
        });
        let e = run.cases[0].evidence.as_mut().unwrap();
        // 20,000 samples of one socket, one of them 50 deep.
        let mut q = e.queues[0].clone();
        q.depth = (0..20_000u64)
            .map(|i| (i * 3_000_000, if i == 12_345 { 50 } else { (i % 3) as u32 }))
            .collect();
        q.last_seen_ns = 60_000_000_000;
        q.max_depth = 50;
        e.queues = vec![q.clone()];
        let mut cols = vec![None; 834];
        let columns = Columns::new(60.0, 834);
        step_max(columns, samples(&q), 60.0, &mut cols);
        assert_eq!(cols.iter().flatten().copied().reduce(f64::max), Some(50.0));
        let svg = super::super::render_svg(super::super::Chart::AcceptQueue, &run).unwrap();
        // One line of at most a point per column, not 40,000 steps.
        assert!(svg.len() < 40_000, "{} bytes", svg.len());
        assert!(svg.contains("socket 1: max 50 of 4096"));
    }
}
