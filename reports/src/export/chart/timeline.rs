//! The timeline: for every case a panel with ok requests/s and failures per
//! time bucket (top) and latency p50 / p99 / max per bucket (bottom, log
//! scale), all on one shared time axis, with a vertical marker at every action
//! trigger (labelled with the failures attributed to it) and at every "new
//! process ready". A case whose load spoke TLS gets a strip between the
//! halves with its handshakes per bucket, resumed and full stacked
//! ([`super::timeline_tls`]); a WebSocket case gets one with its open
//! connections, messages/s and its cuts and clean closes as marks
//! ([`super::timeline_ws`]); a case whose old generations were counted
//! over time gets one with them ([`super::timeline_generations`]); a
//! cleartext request run's chart is as it was.
//!
//! Long and busy runs keep the same picture readable and bounded (see
//! [`super::dense`]): when a panel's buckets outnumber its pixel columns they
//! are aggregated per column ([`aggregate`]: requests/s as its mean with a
//! min–max envelope, failures as the column's worst bucket, latency p99 and
//! max as the column's maximum, so a spike of one bucket keeps its height);
//! when actions are denser than [`super::dense::MAX_ACTIONS_PER_100PX`] they become
//! a rug under the latency half and a band counting them per time bin, and
//! only the actions that caused the most failures are labelled.
//!
//! Time, requests/s and latency axes are shared by all panels so the cases
//! compare at a glance. The failures axis is scaled per panel, so that a
//! handful of failures is as visible as hundreds; each panel's caption gives
//! its total and peak so the scales are not misread.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::load::{BucketLatency, LoadReport};
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::{CaseReport, RunReport};

use super::dense::Columns;
use super::legend::{self, Swatch};
use super::marks::{self, DenseActions};
use super::timeline_columns::{ColumnValue, aggregate, column_runs, envelope_outline, has_latency};
use super::{
    CAPTION_SIZE, DrawResult, LABEL_SIZE, LEGEND_WIDTH, READY, TRIGGER, WIDTH, class_colour,
    count_tick, fmt_ms_tick, font, house_mesh, latency_range, log_ticks, time_axis, titled,
};
use super::{timeline_generations, timeline_tls, timeline_ws};
use crate::summary::bucket_rps;

/// Height of one case's panel (both halves).
const PANEL_HEIGHT: u32 = 440;
/// Height of the figure title.
const TITLE_HEIGHT: u32 = 50;
/// Colours of the latency lines.
const P50: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const P99: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const MAX: RGBColor = RGBColor(0x99, 0x99, 0x99);
/// Colour of the requests/s line.
const RPS: RGBColor = RGBColor(0x2b, 0x2b, 0x6b);

/// Colour of the requests/s min–max envelope of aggregated buckets.
const RPS_ENVELOPE: RGBColor = RGBColor(0xc9, 0xc9, 0xe4);

/// Picks one latency figure of a bucket.
pub(super) type LatencyOf = fn(&BucketLatency) -> u64;

pub(super) fn size(report: &RunReport) -> (u32, u32) {
    let panels: u32 = report.cases.iter().map(panel_height).sum();
    (WIDTH, TITLE_HEIGHT + panels.max(PANEL_HEIGHT))
}

/// Height of a case's panel: both halves, and the TLS strip for a TLS case.
/// A chart on one of a case's stacked panels (requests, TLS handshakes,
/// latency), with the side margins and label areas they share so that their
/// time axes line up.
pub(super) fn aligned<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_left(8)
        .margin_right(8)
        .y_label_area_size(70)
        .right_y_label_area_size(70);
    builder
}

fn panel_height(case: &CaseReport) -> u32 {
    PANEL_HEIGHT + strips(case).iter().map(|s| s.height()).sum::<u32>()
}

/// A strip between a panel's halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strip {
    /// TLS handshakes ([`timeline_tls`]).
    Tls,
    /// WebSocket connections and messages ([`timeline_ws`]).
    Ws,
    /// Old generations over time ([`timeline_generations`]).
    Generations,
}

impl Strip {
    fn height(self) -> u32 {
        match self {
            Strip::Tls => timeline_tls::STRIP_HEIGHT,
            Strip::Ws => timeline_ws::STRIP_HEIGHT,
            Strip::Generations => timeline_generations::STRIP_HEIGHT,
        }
    }
}

/// The strips of `case`'s panel, top to bottom.
fn strips(case: &CaseReport) -> Vec<Strip> {
    [
        (timeline_tls::has_strip(case), Strip::Tls),
        (timeline_ws::has_strip(case), Strip::Ws),
        (timeline_generations::has_strip(case), Strip::Generations),
    ]
    .into_iter()
    .filter_map(|(has, s)| has.then_some(s))
    .collect()
}

/// Colour of the per-action failure counts.
const FAILED_TEXT: RGBColor = RGBColor(0xb0, 0x1c, 0x1c);

/// Axis ranges shared by all panels, so the cases compare at a glance.
struct Scales {
    t_max_s: f64,
    rps_max: f64,
    lat_min_ms: f64,
    lat_max_ms: f64,
    bucket_ms: u64,
}

impl Scales {
    fn of(report: &RunReport) -> Scales {
        let mut s = Scales {
            t_max_s: 1.0,
            rps_max: 10.0,
            lat_min_ms: f64::MAX,
            lat_max_ms: 1.0,
            bucket_ms: 100,
        };
        for case in &report.cases {
            let load = &case.load;
            s.bucket_ms = load.config.bucket_ns() / 1_000_000;
            let end = case
                .actions
                .iter()
                .flat_map(|a| [Some(a.trigger_ns), a.ready_ns])
                .flatten()
                .chain([load.elapsed_ns])
                .chain(load.ws.as_ref().map(timeline_ws::end_ns))
                .max()
                .unwrap_or(0);
            s.t_max_s = s.t_max_s.max(end as f64 / 1e9);
            for i in 0..rps_buckets(load) {
                s.rps_max = s.rps_max.max(bucket_rps(load, i));
            }
            for b in &load.buckets {
                if b.ok > 0 {
                    let l = &b.latency;
                    let lo = l.p50_us.min(l.p99_us).max(1) as f64 / 1000.0;
                    s.lat_min_ms = s.lat_min_ms.min(lo);
                }
                if has_latency(b) {
                    s.lat_max_ms = s.lat_max_ms.max(b.latency.max_us as f64 / 1000.0);
                }
            }
        }
        (s.lat_min_ms, s.lat_max_ms) = latency_range(s.lat_min_ms, s.lat_max_ms);
        s.rps_max *= 1.3;
        s
    }
}

/// How many buckets, from the first, the requests/s line shows: all but a
/// last bucket that the end of the load cut short. That bucket holds only the
/// requests still in flight when the load stopped starting new ones, so no
/// scaling by its length makes it a throughput (it was drawn as a collapse,
/// or scaled, as a spike); its failures and latency are still drawn.
pub(crate) fn rps_buckets(load: &LoadReport) -> usize {
    let n = load.buckets.len();
    match load.buckets.last() {
        Some(last) if load.elapsed_ns < last.start_ns.saturating_add(load.config.bucket_ns()) => {
            n - 1
        }
        _ => n,
    }
}

/// Most failures in one bucket of `case`.
fn peak_failed(case: &CaseReport) -> u64 {
    case.load
        .buckets
        .iter()
        .map(|b| b.failed_total())
        .max()
        .unwrap_or(0)
}

/// Top of the panel's own failures axis: room above the peak for the action
/// labels, at least 10 so a handful of failures does not fill the panel.
fn failed_axis_max(peak: u64) -> f64 {
    (peak as f64 * 1.8).max(10.0)
}

/// The panel's caption: case name, total failed and the `peak` per bucket.
fn panel_caption(case: &CaseReport, peak: u64, bucket_ms: u64) -> String {
    let failed = case.load.failed;
    if failed == 0 {
        format!("{}: no failed requests", case.name)
    } else {
        format!(
            "{}: {failed} failed requests, at most {peak} per {bucket_ms} ms (right axis, this panel's scale)",
            case.name,
        )
    }
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let scales = Scales::of(report);
    let body = titled(
        root,
        report,
        &format!(
            "ok requests/s, failures and latency per {} ms",
            scales.bucket_ms
        ),
    )?;
    if report.cases.is_empty() {
        return body.draw(&Text::new(
            "no cases in this run",
            (40, 40),
            font(CAPTION_SIZE),
        ));
    }
    if report.cases.iter().all(|c| strips(c).is_empty()) {
        let rows = body.split_evenly((report.cases.len(), 1));
        for (case, row) in report.cases.iter().zip(&rows) {
            draw_case(row, case, &scales)?;
        }
        return Ok(());
    }
    // Panels of different heights: each takes its own from the top.
    let mut rest = body;
    for case in &report.cases {
        let (row, below) = rest.split_vertically(panel_height(case));
        draw_case(&row, case, &scales)?;
        rest = below;
    }
    Ok(())
}

/// Where the time axis of a panel lies, for a page that maps a pointer on a
/// panel of [`super::render_timeline_panels`] back to a time: pixel columns `x0..x1` of
/// the figure's `width` are times `0..t_max_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanelAxis {
    /// Width of a panel in pixels.
    pub width: u32,
    /// First pixel column of the plot (time 0).
    pub x0: u32,
    /// Pixel column of `t_max_s`.
    pub x1: u32,
    /// Time at the right end of the axis, in seconds (shared by all panels).
    pub t_max_s: f64,
}

/// The time axis every panel of `report` is drawn on.
pub(super) fn panel_axis(report: &RunReport) -> PanelAxis {
    // The plot: the panel less the legend column, its margins and label
    // areas (8 + 70 on the left, 8 + 70 on the right, as [`aligned`] builds).
    let plot = WIDTH - LEGEND_WIDTH;
    PanelAxis {
        width: WIDTH,
        x0: 78,
        x1: plot - 78,
        t_max_s: Scales::of(report).t_max_s,
    }
}

/// Size of the panel of case `i` drawn alone by [`draw_panel`].
pub(super) fn panel_size(report: &RunReport, i: usize) -> (u32, u32) {
    (
        WIDTH,
        report.cases.get(i).map_or(PANEL_HEIGHT, panel_height),
    )
}

/// The panel of case `i` alone, on the scales of the whole run (the same
/// panel as in [`draw`], without the figure title), so a page can show and
/// hide cases one by one.
pub(super) fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
    i: usize,
) -> DrawResult<DB> {
    match report.cases.get(i) {
        Some(case) => draw_case(root, case, &Scales::of(report)),
        None => Ok(()),
    }
}

fn draw_case<DB: DrawingBackend>(
    row: &DrawingArea<DB, Shift>,
    case: &CaseReport,
    s: &Scales,
) -> DrawResult<DB> {
    let (plot, legend_area) = row.split_horizontally(WIDTH - LEGEND_WIDTH);
    let kinds = strips(case);
    let (top, bottom, strip_areas) = if kinds.is_empty() {
        let (top, bottom) = plot.split_vertically(50.percent());
        (top, bottom, Vec::new())
    } else {
        let (top, mut rest) = plot.split_vertically(PANEL_HEIGHT / 2);
        let mut areas = Vec::new();
        for k in &kinds {
            let (strip, below) = rest.split_vertically(k.height());
            areas.push((*k, strip));
            rest = below;
        }
        (top, rest, areas)
    };
    let bucket_s = case.load.config.bucket_ns() as f64 / 1e9;
    let mid = |start_ns: u64| start_ns as f64 / 1e9 + bucket_s / 2.0;

    let peak = peak_failed(case);
    // The plot's pixel width: the panel less its margins and label areas
    // (8 + 8 + 70 + 70, as built below).
    let w = top.dim_in_pixel().0.saturating_sub(156).max(1);
    let columns = Columns::new(s.t_max_s, w);
    // More buckets than pixel columns: one value (and envelope) per column.
    let aggregated = (case.load.buckets.len() > w as usize).then(|| aggregate(&case.load, columns));
    // A column stacks each class at its own largest count: the axis leaves
    // room for the highest stack, which may be above any one bucket.
    let stacked = aggregated
        .iter()
        .flatten()
        .map(|c| c.failed)
        .max()
        .unwrap_or(0)
        .max(peak);
    let mut chart = aligned(&top)
        .caption(panel_caption(case, peak, s.bucket_ms), font(CAPTION_SIZE))
        .margin_top(4)
        .x_label_area_size(24)
        .build_cartesian_2d(0.0..s.t_max_s, 0.0..s.rps_max)?
        .set_secondary_coord(0.0..s.t_max_s, 0.0..failed_axis_max(stacked));
    time_axis(house_mesh(&mut chart.configure_mesh()))
        .y_labels(5)
        .y_label_formatter(&count_tick)
        .y_desc("ok requests/s")
        .draw()?;
    // A panel without failures gets no failures axis: nothing to read on it.
    if peak > 0 {
        chart
            .configure_secondary_axes()
            .y_desc(format!("failed per {} ms", s.bucket_ms))
            .y_labels(5)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(LABEL_SIZE))
            .draw()?;
    }
    debug_assert_eq!(chart.plotting_area().dim_in_pixel().0, w);
    if let Some(cols) = &aggregated {
        // Failures: each class at its largest count in one bucket of the
        // column, stacked.
        for c in cols {
            let mut y = 0.0;
            for &(class, count) in &c.classes {
                let y1 = y + count as f64;
                chart.draw_secondary_series(std::iter::once(Rectangle::new(
                    [(c.from_s, y), (c.to_s, y1)],
                    class_colour(class).filled(),
                )))?;
                y = y1;
            }
        }
        chart.draw_series(std::iter::once(Polygon::new(
            envelope_outline(cols),
            RPS_ENVELOPE.filled(),
        )))?;
        for run in column_runs(cols, |c| c.rps.map(|e| e.mean)) {
            chart.draw_series(LineSeries::new(run, RPS.stroke_width(2)))?;
        }
    } else {
        // Failures: stacked bars per bucket, one colour per class.
        for b in &case.load.buckets {
            let x0 = b.start_ns as f64 / 1e9 + bucket_s * 0.1;
            let x1 = x0 + bucket_s * 0.8;
            let mut y = 0.0;
            for f in &b.failed {
                let y1 = y + f.count as f64;
                chart.draw_secondary_series(std::iter::once(Rectangle::new(
                    [(x0, y), (x1, y1)],
                    class_colour(f.class).filled(),
                )))?;
                y = y1;
            }
        }
        chart.draw_series(LineSeries::new(
            case.load.buckets[..rps_buckets(&case.load)]
                .iter()
                .enumerate()
                .map(|(i, b)| (mid(b.start_ns), bucket_rps(&case.load, i))),
            RPS.stroke_width(2),
        ))?;
    }
    let marks = ActionMarks::plan(&chart.plotting_area().strip_coord_spec(), case, s)?;
    match &marks {
        ActionMarks::Lines => {
            draw_markers(&chart.plotting_area().strip_coord_spec(), case, s, true)?;
        }
        ActionMarks::Dense(d) => d.draw_top(&chart.plotting_area().strip_coord_spec())?,
    }
    let strip_markers = |area: &DrawingArea<DB, Shift>| match &marks {
        ActionMarks::Lines => draw_markers(area, case, s, false),
        // Too dense for lines: the rug under the latency half shows them.
        ActionMarks::Dense(_) => Ok(()),
    };
    for (kind, strip) in &strip_areas {
        match kind {
            Strip::Tls => {
                let bars = timeline_tls::bars(case, columns, aggregated.is_some());
                timeline_tls::draw(strip, &bars, (s.t_max_s, s.bucket_ms), strip_markers)?;
            }
            Strip::Ws => {
                let points = timeline_ws::points(case, columns);
                timeline_ws::draw(strip, &points, s.t_max_s, strip_markers)?;
            }
            Strip::Generations => {
                if let Some(g) = &case.generations {
                    let ws_end = case.load.ws.as_ref().map_or(0, timeline_ws::end_ns);
                    let end_s = case.load.elapsed_ns.max(ws_end) as f64 / 1e9;
                    timeline_generations::draw(
                        strip,
                        g,
                        (s.t_max_s, end_s),
                        columns,
                        strip_markers,
                    )?;
                }
            }
        }
    }

    let mut lat = aligned(&bottom)
        .margin_bottom(6)
        .x_label_area_size(44)
        .build_cartesian_2d(
            0.0..s.t_max_s,
            (s.lat_min_ms..s.lat_max_ms)
                .log_scale()
                .with_key_points(log_ticks(s.lat_min_ms, s.lat_max_ms)),
        )?;
    time_axis(house_mesh(&mut lat.configure_mesh()))
        .y_labels(12)
        .y_label_formatter(&|v| fmt_ms_tick(*v))
        .x_desc("time since load start (s)")
        .y_desc("latency ms (log)")
        .draw()?;
    let series: [(RGBColor, LatencyOf); 3] = [
        (MAX, |l| l.max_us),
        (P99, |l| l.p99_us),
        (P50, |l| l.p50_us),
    ];
    if let Some(cols) = &aggregated {
        let picks: [(RGBColor, ColumnValue); 3] = [
            (MAX, |c| c.max_ms),
            (P99, |c| c.p99_ms),
            (P50, |c| c.p50_ms),
        ];
        for (colour, pick) in picks {
            for run in column_runs(cols, pick) {
                lat.draw_series(LineSeries::new(
                    run.into_iter().map(|(x, v)| (x, v.max(s.lat_min_ms))),
                    colour.stroke_width(2),
                ))?;
            }
        }
    } else {
        for (c, value) in series {
            // A bucket without successes breaks the line instead of dropping to zero.
            for run in case.load.buckets.split(|b| b.ok == 0) {
                lat.draw_series(LineSeries::new(
                    run.iter().map(|b| {
                        (
                            mid(b.start_ns),
                            (value(&b.latency) as f64 / 1000.0).max(s.lat_min_ms),
                        )
                    }),
                    c.stroke_width(2),
                ))?;
            }
        }
    }
    match &marks {
        ActionMarks::Lines => {
            draw_markers(&lat.plotting_area().strip_coord_spec(), case, s, false)?;
        }
        ActionMarks::Dense(d) => d.draw_bottom(&lat.plotting_area().strip_coord_spec())?,
    }

    let mut entries = vec![("ok requests/s".to_string(), Swatch::Line(RPS))];
    if aggregated.is_some() {
        entries.push((
            "min–max per px column".to_string(),
            Swatch::Bar(RPS_ENVELOPE),
        ));
    }
    entries.extend(
        FailureClass::ALL
            .into_iter()
            .filter(|&c| case.failed_of(c) > 0)
            .map(|c| (c.label().to_string(), Swatch::Bar(class_colour(c)))),
    );
    if let ActionMarks::Dense(d) = &marks {
        entries.extend(d.legend());
    } else if !case.actions.is_empty() {
        entries.push(("action triggered".to_string(), Swatch::Marker(TRIGGER)));
        if case.actions.iter().any(|a| a.ready_ns.is_some()) {
            entries.push(("new process ready".to_string(), Swatch::Marker(READY)));
        }
    }
    for kind in &kinds {
        match kind {
            Strip::Tls => entries.extend(timeline_tls::legend()),
            Strip::Ws => entries.extend(timeline_ws::legend()),
            Strip::Generations => {
                entries.extend(
                    case.generations
                        .iter()
                        .flat_map(timeline_generations::legend),
                );
            }
        }
    }
    entries.push(("latency max".to_string(), Swatch::Line(MAX)));
    entries.push(("latency p99".to_string(), Swatch::Line(P99)));
    entries.push(("latency p50".to_string(), Swatch::Line(P50)));
    legend::draw(&legend_area, 36, &entries)
}

/// How a panel draws its actions.
#[derive(Debug)]
enum ActionMarks {
    /// A line at every trigger and ready time, labels where they fit.
    Lines,
    /// Too dense for lines: a rug, a count band and the worst labelled.
    Dense(DenseActions),
}

impl ActionMarks {
    fn plan<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        case: &CaseReport,
        s: &Scales,
    ) -> Result<ActionMarks, DrawingAreaErrorKind<DB::ErrorType>> {
        let (w, _) = area.dim_in_pixel();
        if marks::actions_too_dense(&case.actions, s.t_max_s, w) {
            DenseActions::plan(area, &case.actions, s.t_max_s).map(ActionMarks::Dense)
        } else {
            Ok(ActionMarks::Lines)
        }
    }
}

/// Vertical lines at each action's trigger (and ready) time over a plotting
/// area in pixels; `labelled` adds the action's label next to the trigger.
fn draw_markers<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    case: &CaseReport,
    s: &Scales,
    labelled: bool,
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let x_of = |ns: u64| ((ns as f64 / 1e9) / s.t_max_s * f64::from(w)).round() as i32;
    let h = h as i32;
    let mut next_label_x = i32::MIN;
    let mut next_count_x = i32::MIN;
    // Ready lines first, 2 px wide, with a green flag at the bottom (the labels are at the top); the 1 px
    // trigger lines over them. A reload that is ready within a pixel or two
    // of its trigger (10 ms is 2 px on a 5 s axis) then still shows both: the
    // dark line with green beside it and the flag.
    for r in case.actions.iter().filter_map(|a| a.ready_ns) {
        let xr = x_of(r);
        area.draw(&PathElement::new(
            vec![(xr, 0), (xr, h)],
            READY.stroke_width(2),
        ))?;
        area.draw(&Polygon::new(
            vec![(xr, h), (xr + 7, h), (xr, h - 7)],
            READY.filled(),
        ))?;
    }
    for a in &case.actions {
        let x = x_of(a.trigger_ns);
        area.draw(&PathElement::new(
            vec![(x, 0), (x, h)],
            TRIGGER.stroke_width(1),
        ))?;
        // Labels that would overlap the previous one are left out; the
        // marker line is still drawn.
        if labelled && x >= next_label_x {
            let style = font(LABEL_SIZE - 1).color(&TRIGGER);
            let (tw, _) = area.estimate_text_size(&a.label, &style)?;
            area.draw(&Text::new(a.label.clone(), (x + 4, 4), style))?;
            next_label_x = x + tw as i32 + 12;
        }
        // The failures attributed to the action, under its label: the long
        // form when it fits before the next action, else just the number.
        let failed = a.failed_total();
        if labelled && failed > 0 && x >= next_count_x {
            let style = font(LABEL_SIZE - 1).color(&FAILED_TEXT);
            let room = case
                .actions
                .iter()
                .find(|b| b.trigger_ns > a.trigger_ns)
                .map_or(i32::MAX, |b| x_of(b.trigger_ns) - x - 8);
            let long = format!("{failed} failed");
            let (lw, _) = area.estimate_text_size(&long, &style)?;
            let text = if (lw as i32) < room {
                long
            } else {
                failed.to_string()
            };
            let (tw, _) = area.estimate_text_size(&text, &style)?;
            area.draw(&Text::new(text, (x + 4, 22), style))?;
            next_count_x = x + tw as i32 + 8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{self, SPIKE_FAILURES, SPIKE_MAX_US, Shape, spike_bucket};

    fn synthetic(buckets: usize, actions: usize) -> RunReport {
        synthetic::run(Shape {
            cases: 2,
            buckets,
            actions,
            failing_every: 7,
        })
    }

    #[test]
    fn a_spike_of_one_bucket_survives_aggregation_to_pixels() {
        let run = synthetic(36_000, 1_000);
        let case = &run.cases[1];
        let spike = spike_bucket(36_000);
        let spike_failed = case.load.buckets[spike].failed_total();
        assert!(spike_failed >= SPIKE_FAILURES);
        let s = Scales::of(&run);
        // The latency axis reaches the spike's maximum.
        assert!(s.lat_max_ms >= SPIKE_MAX_US as f64 / 1000.0);
        let cols = aggregate(&case.load, Columns::new(s.t_max_s, 834));
        assert!(cols.len() <= 834, "{} columns", cols.len());
        // Every bucket is in exactly one column, in order.
        assert_eq!(cols[0].buckets.start, 0);
        assert!(
            cols.windows(2)
                .all(|w| w[0].buckets.end == w[1].buckets.start)
        );
        assert_eq!(cols.last().map(|c| c.buckets.end), Some(36_000));
        let col = cols
            .iter()
            .find(|c| c.buckets.contains(&spike))
            .expect("a column holds the spike");
        assert!(col.buckets.len() > 1, "the spike shares its column");
        assert_eq!(col.failed, spike_failed);
        assert_eq!(col.max_ms, Some(SPIKE_MAX_US as f64 / 1000.0));
        // The drawn failures' peak is the spike's: nothing summed, nothing averaged.
        let peak = cols.iter().map(|c| c.failed).max();
        assert_eq!(peak, Some(peak_failed(case)));
        let rps = col.rps.expect("the column has requests/s");
        assert!(rps.min < rps.mean && rps.mean < rps.max);
        assert_eq!(rps.min, 0.0, "the spike bucket had no successes");
    }

    #[test]
    fn few_buckets_are_not_aggregated_and_few_actions_stay_lines() {
        let run = synthetic(300, 6);
        let svg = super::super::render_svg(super::super::Chart::Timeline, &run).unwrap();
        assert!(!svg.contains("min–max per px column"));
        assert!(!svg.contains("(rug)"));
        assert!(svg.contains("action triggered") && svg.contains("new process ready"));
    }

    #[test]
    fn dense_actions_become_a_rug_with_counts_and_the_worst_labelled() {
        let run = synthetic(36_000, 1_000);
        let svg = super::super::render_svg(super::super::Chart::Timeline, &run).unwrap();
        assert!(svg.contains("min–max per px column"));
        assert!(svg.contains("reloads (rug)") || svg.contains("restarts (rug)"));
        assert!(!svg.contains("new process ready"));
        // Case 1 (naive) fails at every 7th of its 1,000 actions.
        let failing = run.cases[1]
            .actions
            .iter()
            .filter(|a| a.failed_total() > 0)
            .count();
        assert_eq!(failing, 143);
        let legend = format!("of {failing} failing");
        assert!(svg.contains(&legend), "legend {legend:?}");
        let text = |t: &str| svg.lines().any(|l| l.trim() == t);
        let labelled = svg
            .lines()
            .map(str::trim)
            .filter(|l| l.ends_with(" failed") && l.starts_with(|c: char| c.is_ascii_digit()))
            .count();
        // Two lossy cases, at most MAX_LABELS labels each.
        assert!(
            (2..=2 * super::super::dense::MAX_LABELS).contains(&labelled),
            "{labelled}"
        );
        // The worst action of the naive case is labelled.
        let worst = run.cases[1]
            .actions
            .iter()
            .max_by_key(|a| (a.failed_total(), std::cmp::Reverse(a.index)))
            .unwrap();
        assert!(text(&format!("#{} {}", worst.index, worst.label)));
        assert!(text(&format!("{} failed", worst.failed_total())));
        // The counting band: 1,000 actions in bins of equal time.
        let bands = svg
            .lines()
            .map(str::trim)
            .filter(|l| l.ends_with(" reloads") || l.ends_with(" restarts"))
            .map(|l| l.split(' ').next().and_then(|n| n.parse::<usize>().ok()))
            .collect::<Option<Vec<usize>>>()
            .expect("counts");
        assert_eq!(bands.iter().sum::<usize>(), 2 * 1_000, "{bands:?}");
    }
}
