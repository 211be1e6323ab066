//! A legend drawn in its own column next to a plot, so it never hides data.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{DrawResult, LABEL_SIZE, font};

/// What a legend entry looks like.
#[derive(Debug, Clone, Copy)]
pub(super) enum Swatch {
    /// A line series.
    Line(RGBColor),
    /// A filled bar.
    Bar(RGBColor),
    /// A vertical marker line.
    Marker(RGBColor),
}

/// Draws `entries` top-down in `area`, starting `top` pixels from its top.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    top: i32,
    entries: &[(String, Swatch)],
) -> DrawResult<DB> {
    let style = font(LABEL_SIZE).color(&BLACK);
    for (i, (label, swatch)) in entries.iter().enumerate() {
        let y = top + 22 * i as i32;
        let mid = y + 8;
        match *swatch {
            Swatch::Line(c) => {
                area.draw(&PathElement::new(
                    vec![(10, mid), (36, mid)],
                    c.stroke_width(3),
                ))?;
            }
            Swatch::Bar(c) => {
                area.draw(&Rectangle::new([(14, y + 2), (32, y + 14)], c.filled()))?
            }
            Swatch::Marker(c) => {
                area.draw(&PathElement::new(
                    vec![(23, y), (23, y + 16)],
                    c.stroke_width(2),
                ))?;
            }
        }
        area.draw(&Text::new(label.clone(), (44, y), style.clone()))?;
    }
    Ok(())
}
