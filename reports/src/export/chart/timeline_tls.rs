//! The TLS strip of a timeline panel (cases whose load spoke TLS only): the
//! handshakes completed per time bucket, resumed and full stacked, on the
//! panel's time axis with its action markers, so a reload whose new process
//! does not know the ticket keys shows as a tower of full handshakes.
//!
//! When the buckets outnumber the pixel columns, each column shows the
//! largest count of each kind in one of its buckets (as the failures are
//! drawn), so the bucket of a collapse keeps its height.

use plotters::coord::Shift;
use plotters::prelude::*;
use reloadbench_model::run::CaseReport;

use super::dense::Columns;
use super::legend::Swatch;
use super::{DrawResult, count_tick, house_mesh, time_axis};

/// Height of the strip under a TLS case's requests half.
pub(super) const STRIP_HEIGHT: u32 = 180;
/// Colour of resumed handshakes.
const RESUMED: RGBColor = RGBColor(0x4c, 0x9a, 0x6a);
/// Colour of full handshakes.
const FULL: RGBColor = RGBColor(0xd6, 0x60, 0x1c);

/// True when the case's panel has a TLS strip.
pub(super) fn has_strip(case: &CaseReport) -> bool {
    case.load.tls.is_some()
}

/// One bar: `[from_s, to_s)` with its resumed and full counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bar {
    pub(super) from_s: f64,
    pub(super) to_s: f64,
    pub(super) resumed: u64,
    pub(super) full: u64,
}

/// The bars of `case`: one per bucket, or per pixel column of `columns`
/// when `aggregate` (each kind at its largest count in one bucket).
pub(super) fn bars(case: &CaseReport, columns: Columns, aggregate: bool) -> Vec<Bar> {
    let load = &case.load;
    let bucket_s = load.config.bucket_ns() as f64 / 1e9;
    if !aggregate {
        return load
            .buckets
            .iter()
            .map(|b| {
                let from_s = b.start_ns as f64 / 1e9 + bucket_s * 0.1;
                Bar {
                    from_s,
                    to_s: from_s + bucket_s * 0.8,
                    resumed: b.handshakes.resumed,
                    full: b.handshakes.full,
                }
            })
            .collect();
    }
    let mids = load
        .buckets
        .iter()
        .map(|b| b.start_ns as f64 / 1e9 + bucket_s / 2.0);
    columns
        .group(mids)
        .into_iter()
        .map(|(c, range)| {
            let (from_s, to_s) = columns.span(c);
            let of = &load.buckets[range];
            Bar {
                from_s,
                to_s,
                resumed: of.iter().map(|b| b.handshakes.resumed).max().unwrap_or(0),
                full: of.iter().map(|b| b.handshakes.full).max().unwrap_or(0),
            }
        })
        .collect()
}

/// Draws the strip on `area` over `0..t_max_s`; `markers` draws the
/// action markers on the plotting area (in pixels).
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bars: &[Bar],
    (t_max_s, bucket_ms): (f64, u64),
    markers: impl FnOnce(&DrawingArea<DB, Shift>) -> DrawResult<DB>,
) -> DrawResult<DB> {
    let peak = bars.iter().map(|b| b.resumed + b.full).max().unwrap_or(0);
    let mut chart = super::timeline::aligned(area)
        .margin_top(4)
        .x_label_area_size(24)
        .build_cartesian_2d(0.0..t_max_s, 0.0..(peak as f64 * 1.15).max(10.0))?;
    time_axis(house_mesh(&mut chart.configure_mesh()))
        .y_labels(4)
        .y_label_formatter(&count_tick)
        .y_desc(format!("handshakes per {bucket_ms} ms"))
        .draw()?;
    for b in bars {
        let r = b.resumed as f64;
        let f = r + b.full as f64;
        if b.resumed > 0 {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(b.from_s, 0.0), (b.to_s, r)],
                RESUMED.filled(),
            )))?;
        }
        if b.full > 0 {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(b.from_s, r), (b.to_s, f)],
                FULL.filled(),
            )))?;
        }
    }
    markers(&chart.plotting_area().strip_coord_spec())
}

/// The legend entries of the strip.
pub(super) fn legend() -> [(String, Swatch); 2] {
    [
        ("resumed handshakes".to_owned(), Swatch::Bar(RESUMED)),
        ("full handshakes".to_owned(), Swatch::Bar(FULL)),
    ]
}
