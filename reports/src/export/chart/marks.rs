//! Actions drawn in their dense form (when [`dense::too_dense`]): a shaded
//! band counting them per equal time bin ("27 reloads"), a rug of their
//! triggers (short ticks, merged per pixel column), and a line and a label
//! only for the few actions that caused the most failures.
//!
//! Works on plotting areas in pixels, like the charts' own marker lines.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::run::{ActionKind, ActionReport};
use reloadbench_model::words::{count, noun};

use super::dense::{self, BIN_PX, Candidate, Columns, MAX_LABELS};
use super::legend::Swatch;
use super::{DrawResult, LABEL_SIZE, TRIGGER, font};

/// Colour of the failure count under a labelled action.
const FAILED_TEXT: RGBColor = RGBColor(0xb0, 0x1c, 0x1c);
/// Colour of the counts in the band.
const BAND_TEXT: RGBColor = RGBColor(0x40, 0x40, 0x40);
/// Shades of the count band, alternating per bin.
const BAND: [RGBColor; 2] = [RGBColor(0xf0, 0xf0, 0xf0), RGBColor(0xdc, 0xdc, 0xdc)];
/// Height of the count band, px.
pub(super) const BAND_HEIGHT: i32 = 18;
/// Height of a rug, px.
pub(super) const RUG_HEIGHT: i32 = 7;

/// Pixel column of time `ns` on an axis of `t_max_s` over `width` pixels,
/// rounded as the charts' marker lines are.
pub(super) fn x_of(ns: u64, t_max_s: f64, width: u32) -> i32 {
    ((ns as f64 / 1e9) / t_max_s * f64::from(width)).round() as i32
}

/// Whether the triggers of `actions` are too dense for lines on an axis of
/// `t_max_s` over `width` pixels.
pub(super) fn actions_too_dense(actions: &[ActionReport], t_max_s: f64, width: u32) -> bool {
    let mut px: Vec<i32> = actions
        .iter()
        .map(|a| x_of(a.trigger_ns, t_max_s, width))
        .collect();
    px.sort_unstable();
    dense::too_dense(&px)
}

/// Filled rectangles over the `runs` of pixel columns, from `y0` to `y1`.
pub(super) fn draw_rug<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[(u32, u32)],
    (y0, y1): (i32, i32),
    colour: RGBColor,
) -> DrawResult<DB> {
    for &(a, b) in runs {
        area.draw(&Rectangle::new(
            [(a as i32, y0), (b as i32 + 1, y1)],
            colour.filled(),
        ))?;
    }
    Ok(())
}

/// One labelled action.
#[derive(Debug, Clone, PartialEq)]
struct Label {
    /// Pixel column of the action's line.
    x: i32,
    /// Left edge of its label.
    left: i32,
    /// Width of the action's name, px.
    name_width: i32,
    name: String,
    /// Its red text: the failures attributed to it, or that it failed itself.
    outcome: String,
}

/// How a panel of dense actions draws them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DenseActions {
    rug: Vec<(u32, u32)>,
    bins: Vec<u64>,
    noun: &'static str,
    labels: Vec<Label>,
    failing: usize,
}

impl DenseActions {
    /// Lays out `actions` on `area` (the plotting area, time `0..t_max_s`).
    pub(super) fn plan<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        actions: &[ActionReport],
        t_max_s: f64,
    ) -> Result<DenseActions, DrawingAreaErrorKind<DB::ErrorType>> {
        let (w, _) = area.dim_in_pixel();
        let columns = Columns::new(t_max_s, w);
        let secs = || actions.iter().map(|a| a.trigger_ns as f64 / 1e9);
        // Actions that lost requests, and actions that failed themselves (a
        // reload rolled back): both are worth a line and a label.
        let failing: Vec<&ActionReport> = actions
            .iter()
            .filter(|a| a.failed_total() > 0 || !a.ok)
            .collect();
        let mut labels = Vec::with_capacity(failing.len());
        let mut candidates = Vec::with_capacity(failing.len());
        for a in &failing {
            let name = format!("#{} {}", a.index, a.label);
            let failed = a.failed_total();
            let outcome = outcome_text(failed, a.ok);
            let (nw, _) = area.estimate_text_size(&name, &label_style())?;
            let (fw, _) = area.estimate_text_size(&outcome, &failed_style())?;
            let x = x_of(a.trigger_ns, t_max_s, w);
            let width = nw as i32 + 6 + fw as i32;
            // Right of the line, or left of it where the plot ends first.
            let left = if x + 4 + width > w as i32 {
                x - 4 - width
            } else {
                x + 4
            };
            candidates.push(Candidate {
                x: left,
                width,
                weight: failed,
            });
            labels.push(Label {
                x,
                left,
                name_width: nw as i32,
                name,
                outcome,
            });
        }
        let chosen = dense::pick_labels(&candidates, MAX_LABELS, 8);
        let noun = if actions.iter().all(|a| a.kind == ActionKind::Reload) {
            "reload"
        } else if actions.iter().all(|a| a.kind == ActionKind::Restart) {
            "restart"
        } else {
            "action"
        };
        Ok(DenseActions {
            rug: dense::rug(columns, secs()),
            bins: dense::bin_counts(t_max_s, (w / BIN_PX).max(1) as usize, secs()),
            noun,
            labels: chosen.into_iter().map(|i| labels[i].clone()).collect(),
            failing: failing.len(),
        })
    }

    /// The count band at the top of `area`, and the labelled actions'
    /// lines and labels under it.
    pub(super) fn draw_top<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let (w, _) = area.dim_in_pixel();
        let n = self.bins.len() as u32;
        let text = font(LABEL_SIZE - 2).color(&BAND_TEXT);
        for (k, &c) in self.bins.iter().enumerate() {
            let k = k as u32;
            // A bin without actions (after a short case's end, say) is left blank.
            if c == 0 {
                continue;
            }
            let (x0, x1) = ((k * w / n) as i32, ((k + 1) * w / n) as i32);
            area.draw(&Rectangle::new(
                [(x0, 0), (x1, BAND_HEIGHT)],
                BAND[k as usize % 2].filled(),
            ))?;
            let t = count(c, self.noun);
            let (tw, _) = area.estimate_text_size(&t, &text)?;
            area.draw(&Text::new(t, ((x0 + x1 - tw as i32) / 2, 3), text.clone()))?;
        }
        self.draw_lines(area, BAND_HEIGHT)?;
        // One line per label, just under the band: above the requests/s
        // line, which the shared axis keeps under 1/1.3 of the height.
        for l in &self.labels {
            area.draw(&Text::new(
                l.name.clone(),
                (l.left, BAND_HEIGHT + 2),
                label_style(),
            ))?;
            area.draw(&Text::new(
                l.outcome.clone(),
                (l.left + l.name_width + 6, BAND_HEIGHT + 2),
                failed_style(),
            ))?;
        }
        Ok(())
    }

    /// The rug at the bottom edge of `area` and the labelled actions' lines.
    pub(super) fn draw_bottom<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let (_, h) = area.dim_in_pixel();
        let h = h as i32;
        draw_rug(area, &self.rug, (h - RUG_HEIGHT, h), TRIGGER)?;
        self.draw_lines(area, 0)
    }

    /// Legend entries: the rug, and how many actions were labelled of how many.
    pub(super) fn legend(&self) -> Vec<(String, Swatch)> {
        let mut entries = vec![(
            format!("{} (rug)", noun(2, self.noun)),
            Swatch::Marker(TRIGGER),
        )];
        if self.failing > 0 {
            entries.push((
                format!("labelled {} of {} failing", self.labels.len(), self.failing),
                Swatch::Marker(FAILED_TEXT),
            ));
        }
        entries
    }

    fn draw_lines<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        top: i32,
    ) -> DrawResult<DB> {
        let (_, h) = area.dim_in_pixel();
        for l in &self.labels {
            area.draw(&PathElement::new(
                vec![(l.x, top), (l.x, h as i32)],
                FAILED_TEXT.stroke_width(1),
            ))?;
        }
        Ok(())
    }
}

/// `37 failed` (requests), or `action failed` for an action that failed
/// itself without losing a request.
fn outcome_text(failed: u64, ok: bool) -> String {
    match (failed, ok) {
        (0, false) => "action failed".to_string(),
        (n, true) => format!("{n} failed"),
        (n, false) => format!("{n} failed, action failed"),
    }
}

fn label_style() -> TextStyle<'static> {
    font(LABEL_SIZE - 1).color(&TRIGGER)
}

fn failed_style() -> TextStyle<'static> {
    font(LABEL_SIZE - 1).color(&FAILED_TEXT)
}
