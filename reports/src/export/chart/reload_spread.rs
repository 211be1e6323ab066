//! Reload time of many actions (more than [`DENSE_ABOVE`] timed actions in
//! the run): instead of one bar per action, one block per case with one row
//! per phase (trigger → ready, → drained, → old exited). A row is a strip of
//! the actions' times binned per [`BIN_PX`] pixels (shaded by how many fell
//! in a bin), a box from p50 to p90 with a whisker to p99 and a triangle at
//! the maximum, and the numbers next to it. Actions that failed or had failed
//! requests are ticked above the strip; each block names its case's slowest
//! actions and those that failed. The figure's height depends on the number
//! of cases only, its shape count on the pixel width, never on the actions.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::run::{ActionReport, CaseReport, RunReport};

use super::spread::{Spread, bin_runs};
use super::{
    CAPTION_SIZE, DrawResult, LABEL_SIZE, WIDTH, fmt_ms_tick, font, house_mesh, latency_range,
    log_ticks, titled,
};

/// Above this many timed actions in the whole run (actions with a ready,
/// drained or exited time), the chart draws distributions: at 34 px per bar,
/// 40 bars already make a figure 1,500 px high.
pub(super) const DENSE_ABOVE: usize = 40;

/// Rows of one case's block: a heading, the three phases, the slowest actions.
const ROWS_PER_CASE: u32 = 5;
/// Height of one row.
const ROW: u32 = 26;
/// Title, legend, margins and the x axis.
const FRAME: u32 = 180;
/// Height of the legend line under the title.
const LEGEND_HEIGHT: u32 = 34;
/// Width of the numbers column at the right.
const STATS_WIDTH: u32 = 300;
/// Width of the row labels at the left.
const LABEL_WIDTH: u32 = 170;
/// Width of one bin of the strip of dots, pixels.
const BIN_PX: i32 = 2;
/// Shades of a bin, by how many actions fell in it.
const LEVELS: u32 = 4;
/// Slowest actions named per case.
const SLOWEST: usize = 3;
/// Failed actions named per case.
const FAILED_NAMED: usize = 3;
/// Ticks of actions that failed or had failed requests.
const FAILED: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// One phase: its label, the colour of its dots and its end time.
struct Phase {
    label: &'static str,
    colour: RGBColor,
    end: fn(&ActionReport) -> Option<u64>,
}

const PHASES: [Phase; 3] = [
    Phase {
        label: "trigger → ready",
        colour: RGBColor(0x4e, 0x79, 0xa7),
        end: |a| a.ready_ns,
    },
    Phase {
        label: "trigger → drained",
        colour: RGBColor(0x5b, 0x9b, 0xd5),
        end: |a| a.drained_ns,
    },
    Phase {
        label: "trigger → old exited",
        colour: RGBColor(0xd6, 0x27, 0x28),
        end: |a| a.exited_ns,
    },
];

/// Whether `report` has too many timed actions for one bar each.
pub(super) fn is_dense(timed_actions: usize) -> bool {
    timed_actions > DENSE_ABOVE
}

/// Whether an action has a time to draw.
fn timed(a: &ActionReport) -> bool {
    a.ready_ns.is_some() || a.drained_ns.is_some() || a.exited_ns.is_some()
}

/// Whether an action failed or lost requests (ticked, and named).
fn failing(a: &ActionReport) -> bool {
    !a.ok || a.failed_total() > 0
}

/// The cases drawn: those with at least one timed action.
fn cases(report: &RunReport) -> Vec<&CaseReport> {
    report
        .cases
        .iter()
        .filter(|c| c.actions.iter().any(timed))
        .collect()
}

pub(super) fn size(report: &RunReport) -> (u32, u32) {
    let n = cases(report).len() as u32;
    (WIDTH, FRAME + n * ROWS_PER_CASE * ROW)
}

/// ms from the trigger of `a` to `t`.
fn since(a: &ActionReport, t: Option<u64>) -> Option<f64> {
    t.map(|t| t.saturating_sub(a.trigger_ns) as f64 / 1e6)
}

/// A duration in ms as written in the chart.
fn fmt_ms(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The slowest actions of a case by trigger → ready, slowest first (ties:
/// the earlier action), as `#4711 at 123.4 s, 812 ms`.
pub(super) fn slowest(case: &CaseReport, n: usize) -> Vec<String> {
    let mut timed: Vec<(&ActionReport, f64)> = case
        .actions
        .iter()
        .filter_map(|a| since(a, a.ready_ns).map(|ms| (a, ms)))
        .collect();
    timed.sort_by(|(a, x), (b, y)| y.total_cmp(x).then(a.index.cmp(&b.index)));
    timed
        .into_iter()
        .take(n)
        .map(|(a, ms)| {
            format!(
                "#{} at {:.1} s, {}",
                a.index,
                a.trigger_ns as f64 / 1e9,
                fmt_ms(ms)
            )
        })
        .collect()
}

/// The heading of a case's block: its actions and those that failed.
fn heading(case: &CaseReport) -> String {
    let n = case.actions.len();
    let mut text = format!("{}: {n} actions", case.name);
    let not_ok: Vec<&ActionReport> = case.actions.iter().filter(|a| !a.ok).collect();
    if !not_ok.is_empty() {
        text.push_str(&format!(
            " · {} failed: {}",
            not_ok.len(),
            named(&not_ok, |a| format!("#{}", a.index))
        ));
    }
    let mut lossy: Vec<&ActionReport> = case
        .actions
        .iter()
        .filter(|a| a.failed_total() > 0)
        .collect();
    if lossy.is_empty() {
        text.push_str(" · no failed requests at an action");
    } else {
        let requests: u64 = lossy.iter().map(|a| a.failed_total()).sum();
        lossy.sort_by(|a, b| {
            b.failed_total()
                .cmp(&a.failed_total())
                .then(a.index.cmp(&b.index))
        });
        text.push_str(&format!(
            " · {} with failed requests ({requests} in all; most: {})",
            lossy.len(),
            named(&lossy, |a| format!("#{} ({})", a.index, a.failed_total()))
        ));
    }
    text
}

/// The first [`FAILED_NAMED`] of `actions`, and how many more.
fn named(actions: &[&ActionReport], name: impl Fn(&ActionReport) -> String) -> String {
    let mut text = actions
        .iter()
        .take(FAILED_NAMED)
        .map(|a| name(a))
        .collect::<Vec<_>>()
        .join(", ");
    if actions.len() > FAILED_NAMED {
        text.push_str(&format!(" (+{} more)", actions.len() - FAILED_NAMED));
    }
    text
}

/// The numbers of one phase row.
fn stats_text(spread: Option<Spread>, phase: &Phase) -> String {
    let Some(s) = spread else {
        return format!("none reported {}", short(phase));
    };
    format!(
        "p50 {} · p90 {} · p99 {} · max {}",
        fmt_ms_tick(s.p50),
        fmt_ms_tick(s.p90),
        fmt_ms_tick(s.p99),
        fmt_ms(s.max)
    )
}

/// `ready`, `drained`, `old exited`.
fn short(phase: &Phase) -> &'static str {
    phase.label.trim_start_matches("trigger → ")
}

/// The last line of a case's block: its slowest actions, and how many
/// actions have no time for a phase (left out of that row).
fn footer(case: &CaseReport) -> String {
    let slow = slowest(case, SLOWEST);
    let mut line = if slow.is_empty() {
        "no action reported ready".to_string()
    } else {
        format!("slowest to ready: {}", slow.join(" · "))
    };
    let missing: Vec<String> = PHASES
        .iter()
        .filter_map(|phase| {
            let n = case
                .actions
                .iter()
                .filter(|a| (phase.end)(a).is_none())
                .count();
            (n > 0).then(|| format!("{n} without {}", short(phase)))
        })
        .collect();
    if !missing.is_empty() {
        line.push_str(&format!(" · {}", missing.join(", ")));
    }
    line
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    let body = titled(
        root,
        report,
        "reload time per case and phase (from the trigger)",
    )?;
    let cases = cases(report);
    let (legend_area, rest) = body.split_vertically(LEGEND_HEIGHT);
    draw_legend(&legend_area)?;
    let (plot, stats) = rest.split_horizontally(WIDTH - STATS_WIDTH);
    let mut lo = f64::MAX;
    let mut hi = 1.0f64;
    for case in &cases {
        for a in &case.actions {
            for phase in &PHASES {
                if let Some(ms) = since(a, (phase.end)(a)) {
                    lo = lo.min(ms.max(0.01));
                    hi = hi.max(ms);
                }
            }
        }
    }
    let (lo, hi) = latency_range(lo, hi);
    let rows = (cases.len() as u32 * ROWS_PER_CASE) as f64;
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(LABEL_WIDTH)
        .build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
            0.0..rows,
        )?;
    house_mesh(&mut chart.configure_mesh())
        .disable_y_mesh()
        .disable_y_axis()
        .y_labels(0)
        .x_label_formatter(&|v| fmt_ms_tick(*v))
        .x_desc("ms since the action was triggered (log)")
        .draw()?;
    let area = chart.plotting_area();
    let base = area.get_base_pixel();
    let rest_base = rest.get_base_pixel();
    let stats_base = stats.get_base_pixel();
    // Pixel y (absolute) of the middle of row `r` from the top.
    let row_y = |r: u32| area.map_coordinate(&(lo, rows - f64::from(r) - 0.5)).1;
    let x_px = |ms: f64| area.map_coordinate(&(ms.max(lo), 0.0)).0 - base.0;
    let text = font(LABEL_SIZE).color(&BLACK);
    for (c, case) in cases.iter().enumerate() {
        let first = c as u32 * ROWS_PER_CASE;
        rest.draw(&Text::new(
            heading(case),
            (12, row_y(first) - rest_base.1 - 9),
            font(LABEL_SIZE + 1).color(&BLACK),
        ))?;
        for (p, phase) in PHASES.iter().enumerate() {
            let y = row_y(first + 1 + p as u32) - base.1;
            rest.draw(&Text::new(
                phase.label,
                (20, y + base.1 - rest_base.1 - 8),
                text.clone(),
            ))?;
            let times: Vec<(f64, bool)> = case
                .actions
                .iter()
                .filter_map(|a| since(a, (phase.end)(a)).map(|ms| (ms, failing(a))))
                .collect();
            let values: Vec<f64> = times.iter().map(|(ms, _)| *ms).collect();
            let spread = Spread::of(&values);
            draw_row(area, y, &times, spread, phase.colour, &x_px)?;
            stats.draw(&Text::new(
                stats_text(spread, phase),
                (8, y + base.1 - stats_base.1 - 8),
                text.clone(),
            ))?;
        }
        let line = footer(case);
        rest.draw(&Text::new(
            line,
            (20, row_y(first + ROWS_PER_CASE - 1) - rest_base.1 - 8),
            font(LABEL_SIZE).color(&RGBColor(0x40, 0x40, 0x40)),
        ))?;
    }
    if cases.is_empty() {
        rest.draw(&Text::new(
            "no action reported ready, drained or exited: nothing to time",
            (40, 40),
            font(CAPTION_SIZE),
        ))?;
    }
    Ok(())
}

/// One phase row at pixel height `y` (relative to `area`): the binned strip,
/// the failing actions' ticks above it, the box, whisker and maximum.
fn draw_row<DB: DrawingBackend, C: plotters::coord::CoordTranslate>(
    area: &DrawingArea<DB, C>,
    y: i32,
    times: &[(f64, bool)],
    spread: Option<Spread>,
    colour: RGBColor,
    x_px: &impl Fn(f64) -> i32,
) -> DrawResult<DB> {
    let px = area.strip_coord_spec();
    for run in bin_runs(times.iter().map(|(ms, _)| x_px(*ms)), BIN_PX, LEVELS) {
        let shade = colour.mix(f64::from(run.level) / f64::from(LEVELS) * 0.75 + 0.25);
        px.draw(&Rectangle::new(
            [(run.from, y - 5), (run.to, y + 5)],
            shade.filled(),
        ))?;
    }
    let failing = times.iter().filter(|(_, f)| *f).map(|(ms, _)| x_px(*ms));
    for run in bin_runs(failing, BIN_PX, 1) {
        px.draw(&Rectangle::new(
            [(run.from, y - 11), (run.to.max(run.from + 3), y - 6)],
            FAILED.filled(),
        ))?;
    }
    let Some(s) = spread else {
        return Ok(());
    };
    let (p50, p90, p99, max) = (x_px(s.p50), x_px(s.p90), x_px(s.p99), x_px(s.max));
    px.draw(&Rectangle::new(
        [(p50, y - 7), (p90.max(p50 + 1), y + 7)],
        BLACK.stroke_width(1),
    ))?;
    px.draw(&PathElement::new(
        vec![(p50, y - 9), (p50, y + 9)],
        BLACK.stroke_width(3),
    ))?;
    px.draw(&PathElement::new(
        vec![(p90, y), (p99, y)],
        BLACK.stroke_width(1),
    ))?;
    px.draw(&PathElement::new(
        vec![(p99, y - 5), (p99, y + 5)],
        BLACK.stroke_width(1),
    ))?;
    px.draw(&Polygon::new(
        vec![(max - 5, y - 12), (max + 5, y - 12), (max, y - 4)],
        BLACK.filled(),
    ))
}

/// The legend, in one line under the title.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let text = font(LABEL_SIZE).color(&BLACK);
    let y = 10;
    let mut x = 20;
    // Writes `label` at x and moves x past it.
    let write = |x: &mut i32, label: &str| -> DrawResult<DB> {
        area.draw(&Text::new(label.to_string(), (*x, y), text.clone()))?;
        *x += area.estimate_text_size(label, &text)?.0 as i32 + 22;
        Ok(())
    };
    for phase in &PHASES {
        area.draw(&Rectangle::new(
            [(x, y + 2), (x + 14, y + 12)],
            phase.colour.filled(),
        ))?;
        x += 20;
        write(&mut x, short(phase))?;
    }
    write(&mut x, "(darker: more actions)")?;
    area.draw(&Rectangle::new(
        [(x, y - 1), (x + 4, y + 4)],
        FAILED.filled(),
    ))?;
    x += 10;
    write(&mut x, "failed or lost requests")?;
    area.draw(&Rectangle::new(
        [(x, y), (x + 24, y + 14)],
        BLACK.stroke_width(1),
    ))?;
    area.draw(&PathElement::new(
        vec![(x, y - 2), (x, y + 16)],
        BLACK.stroke_width(3),
    ))?;
    x += 32;
    write(&mut x, "p50–p90, whisker to p99, ▼ max")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Shape, run};

    #[test]
    fn the_caption_states_the_threshold() {
        let caption = super::super::Chart::ReloadTime.how_to_read();
        assert!(caption.contains(&format!("Above {DENSE_ABOVE} timed actions")));
    }

    #[test]
    fn the_slowest_are_ranked_by_ready_time_then_by_order() {
        let mut r = run(Shape {
            cases: 1,
            buckets: 10,
            actions: 5,
            failing_every: 0,
        });
        let case = &mut r.cases[0];
        for (a, ms) in case.actions.iter_mut().zip([20u64, 812, 5, 812, 7]) {
            a.ready_ns = Some(a.trigger_ns + ms * 1_000_000);
        }
        case.actions[4].ready_ns = None;
        let s = slowest(case, 3);
        let at = |i: usize| case.actions[i].trigger_ns as f64 / 1e9;
        assert_eq!(
            s,
            vec![
                format!("#1 at {:.1} s, 812 ms", at(1)),
                format!("#3 at {:.1} s, 812 ms", at(3)),
                format!("#0 at {:.1} s, 20 ms", at(0)),
            ]
        );
        assert_eq!(fmt_ms(5.25), "5.2 ms");
        case.actions[2].drained_ns = None;
        let f = footer(case);
        assert!(f.starts_with("slowest to ready: #1 at "), "{f}");
        assert!(f.ends_with(" · 1 without ready, 1 without drained"), "{f}");
    }

    #[test]
    fn the_heading_names_failed_actions_and_those_that_lost_requests() {
        let mut r = run(Shape {
            cases: 2,
            buckets: 10,
            actions: 12,
            failing_every: 5,
        });
        let case = &mut r.cases[1];
        case.actions[7].ok = false;
        let h = heading(case);
        let lossy: Vec<_> = case
            .actions
            .iter()
            .filter(|a| a.failed_total() > 0)
            .collect();
        assert_eq!(lossy.len(), 3, "actions 0, 5 and 10 lose requests");
        assert!(h.contains("12 actions · 1 failed: #7"), "{h}");
        assert!(h.contains("3 with failed requests"), "{h}");
    }
}
