//! Reload time per action: one horizontal bar per action of every case,
//! from the trigger (0 ms) until the new process was ready, continued until
//! the old process had drained, with a tick where the old process exited.
//! Above [`reload_spread::DENSE_ABOVE`] timed actions in the run the figure
//! is drawn by [`reload_spread`] instead: distributions per case and phase.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::run::{ActionReport, RunReport};

use super::legend::{self, Swatch};
use super::reload_spread;
use super::{
    CAPTION_SIZE, DrawResult, LABEL_SIZE, LEGEND_WIDTH, WIDTH, count_tick, font, house_mesh, titled,
};

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
    let n = rows(report).len();
    if reload_spread::is_dense(n) {
        return reload_spread::size(report);
    }
    let n = n as u32;
    (WIDTH, (140 + n * ROW).max(320))
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let rows = rows(report);
    if reload_spread::is_dense(rows.len()) {
        return reload_spread::draw(root, report);
    }
    let body = titled(root, report, "reload time per action (from its trigger)")?;
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
    // Room for the longest row label (they were cut at 300 px), within half the plot.
    let mut label_width = 300u32;
    for l in &labels {
        let (w, _) = plot.estimate_text_size(l, &font(LABEL_SIZE).into())?;
        label_width = label_width.max(w + 16);
    }
    let label_width = label_width.min(plot.dim_in_pixel().0 / 2);
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..x_max, (0..n.saturating_sub(1)).into_segmented())?;
    house_mesh(&mut chart.configure_mesh())
        .disable_y_mesh()
        .x_labels(12)
        .y_labels(n)
        .x_label_formatter(&count_tick)
        .y_label_formatter(&|v| match v {
            // Top row first: row i is drawn at segment n - 1 - i.
            SegmentValue::CenterOf(i) => labels.get(n - 1 - *i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("ms since the action was triggered")
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
        let exited = since(a, a.exited_ns);
        let px = |ms: f64| area.map_coordinate(&(ms, SegmentValue::CenterOf(seg)));
        let base = area.get_base_pixel();
        let inside_style = font(LABEL_SIZE).color(&WHITE);
        let fits_inside = |text: &str, ready_ms: f64| {
            let width = area
                .estimate_text_size(text, &inside_style)
                .map_or(u32::MAX, |(w, _)| w);
            let (x0, _) = px(0.0);
            let (x1, _) = px(ready_ms);
            i64::from(width) + 8 <= i64::from(x1 - x0)
        };
        let labels = row_labels(ready, drained, exited, a.ok, fits_inside);
        if let Some((text, at)) = labels.inside {
            let (w, _) = area.estimate_text_size(&text, &inside_style)?;
            let (x, y) = px(at);
            area.strip_coord_spec().draw(&Text::new(
                text,
                (x - base.0 - w as i32 - 4, y - base.1 - 7),
                inside_style,
            ))?;
        }
        let (text, at) = labels.after;
        let (x, y) = px(at);
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

/// The labels of one row: each number written where its phase ends, so a
/// reader does not take the end of the drained bar for the ready time.
#[derive(Debug, PartialEq)]
struct RowLabels {
    /// `ready N ms` inside the dark bar, right-aligned at the ready point
    /// (x in ms), when it fits there.
    inside: Option<(String, f64)>,
    /// The text after the end of the whole row (x in ms): the drained time,
    /// and the ready time too when it did not fit inside its bar.
    after: (String, f64),
}

fn row_labels(
    ready: Option<f64>,
    drained: Option<f64>,
    exited: Option<f64>,
    ok: bool,
    fits_inside: impl Fn(&str, f64) -> bool,
) -> RowLabels {
    let end = [ready, drained, exited]
        .into_iter()
        .flatten()
        .fold(0.0f64, f64::max);
    let drained_after_ready = drained.filter(|d| ready.is_none_or(|r| *d > r));
    let Some(r) = ready else {
        let text = match (ok, drained) {
            (true, Some(d)) => format!("no ready event; drained {d:.0} ms"),
            (true, None) => "no ready event".to_string(),
            (false, _) => "reload failed".to_string(),
        };
        return RowLabels {
            inside: None,
            after: (text, end),
        };
    };
    let ready_text = format!("ready {r:.0} ms");
    match drained_after_ready {
        None => RowLabels {
            inside: None,
            after: (ready_text, end),
        },
        Some(d) if fits_inside(&ready_text, r) => RowLabels {
            inside: Some((ready_text, r)),
            after: (format!("drained {d:.0} ms"), end),
        },
        Some(d) => RowLabels {
            inside: None,
            after: (format!("ready {r:.0} ms, drained {d:.0} ms"), end),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_time_is_not_written_at_the_end_of_the_drained_bar_alone() {
        // Fits in its bar: at the ready point; the drained time at the end.
        let l = row_labels(Some(40.0), Some(61.0), Some(64.0), true, |_, _| true);
        assert_eq!(l.inside, Some(("ready 40 ms".to_string(), 40.0)));
        assert_eq!(l.after, ("drained 61 ms".to_string(), 64.0));
        // Too narrow: both named after the row, so neither reads as the other.
        let l = row_labels(Some(10.0), Some(21.0), Some(21.5), true, |_, _| false);
        assert_eq!(l.inside, None);
        assert_eq!(l.after, ("ready 10 ms, drained 21 ms".to_string(), 21.5));
    }

    #[test]
    fn rows_without_a_drain_bar_are_labelled_at_their_end() {
        // A restart: exited before ready, no drain.
        let l = row_labels(Some(182.0), None, Some(6.0), true, |_, _| true);
        assert_eq!(l.inside, None);
        assert_eq!(l.after, ("ready 182 ms".to_string(), 182.0));
        let l = row_labels(None, None, Some(3.0), false, |_, _| true);
        assert_eq!(l.after, ("reload failed".to_string(), 3.0));
        let l = row_labels(None, Some(20.0), None, true, |_, _| true);
        assert_eq!(l.after, ("no ready event; drained 20 ms".to_string(), 20.0));
    }
}
