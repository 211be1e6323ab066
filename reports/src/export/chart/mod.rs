//! Charts of a run, one module per figure, each drawn by one routine generic
//! over plotters' [`DrawingBackend`] so the SVG and the PNG are the same picture.
//!
//! Shared here: the figure list, colours, fonts (an embedded DejaVu Sans, so
//! PNGs do not depend on fonts installed on the machine), the figure title,
//! the latency axis, the legend helper and the two backends' glue.

mod accept_queue;
mod dense;
mod failures;
mod legend;
mod marks;
mod reload_spread;
mod reload_time;
mod spectrum;
mod spread;
mod timeline;
mod timeline_columns;
mod timeline_generations;
mod timeline_tls;
mod timeline_ws;

use std::sync::OnceLock;

use plotters::chart::MeshStyle;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use reloadbench_model::outcome::FailureClass;
use reloadbench_model::run::RunReport;

use super::Exporter;

use crate::error::ExportError;
pub use timeline::PanelAxis;
pub(crate) use timeline::rps_buckets;

/// Result of a drawing routine on backend `DB`.
type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Font family name the embedded font is registered under.
const FONT: &str = "sans-serif";
/// Embedded font (DejaVu Sans, see `assets/DejaVuSans-LICENSE.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
/// Width of every figure in pixels.
const WIDTH: u32 = 1200;
/// Title font size.
const TITLE_SIZE: u32 = 24;
/// Caption (panel title) font size.
const CAPTION_SIZE: u32 = 18;
/// Axis label and legend font size.
const LABEL_SIZE: u32 = 14;
/// Width of the legend column at the right of a panel.
const LEGEND_WIDTH: u32 = 210;

/// Colours of the cases, in scenario order (Tableau 10).
const CASE_COLOURS: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// Grey for grid lines.
const GRID: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
/// Colour of action trigger markers.
const TRIGGER: RGBColor = RGBColor(0x30, 0x30, 0x30);
/// Colour of "new process ready" markers.
const READY: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

/// Colour of case number `i`.
pub(super) fn case_colour(i: usize) -> RGBColor {
    CASE_COLOURS[i % CASE_COLOURS.len()]
}

/// Colour of a failure class: connect problems red, resets and closes
/// orange/yellow, cut responses purple, timeouts brown, HTTP errors blue.
fn class_colour(class: FailureClass) -> RGBColor {
    match class {
        FailureClass::ConnectRefused => RGBColor(0xd6, 0x27, 0x28),
        FailureClass::ConnectTimeout => RGBColor(0x8c, 0x10, 0x10),
        FailureClass::ConnectError => RGBColor(0xff, 0x98, 0x96),
        FailureClass::TlsHandshake => RGBColor(0x6b, 0x1d, 0x5e),
        FailureClass::TlsCertificate => RGBColor(0xc4, 0x5c, 0xa8),
        FailureClass::Reset => RGBColor(0xff, 0x7f, 0x0e),
        FailureClass::Closed => RGBColor(0xe3, 0xb5, 0x0a),
        FailureClass::Truncated => RGBColor(0x94, 0x67, 0xbd),
        FailureClass::Timeout => RGBColor(0x8c, 0x56, 0x4b),
        FailureClass::WriteError => RGBColor(0xe3, 0x77, 0xc2),
        FailureClass::BadResponse => RGBColor(0x7f, 0x7f, 0x7f),
        FailureClass::Http5xx => RGBColor(0x1f, 0x77, 0xb4),
        FailureClass::HttpOther => RGBColor(0x17, 0xbe, 0xcf),
        FailureClass::ClientError => RGBColor(0xbc, 0xbd, 0x22),
        FailureClass::GoawayRefused => RGBColor(0x2c, 0xa0, 0x8c),
        FailureClass::StreamReset => RGBColor(0xff, 0xbb, 0x78),
        FailureClass::StreamLost => RGBColor(0xa0, 0x52, 0x2d),
        FailureClass::ProtocolError => RGBColor(0x52, 0x52, 0x52),
    }
}

/// A font of the embedded family.
fn font(size: u32) -> FontDesc<'static> {
    (FONT, size).into_font()
}

/// Draws the figure title `<scenario>: <what>` on `root` and returns the area below it.
fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    report: &RunReport,
    what: &str,
) -> Result<DrawingArea<DB, plotters::coord::Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.titled(
        &format!("{}: {what}", report.scenario.name),
        font(TITLE_SIZE),
    )
}

/// Registers the embedded font with plotters once per process.
fn ensure_font() -> Result<(), ExportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ExportError::Chart {
            chart: "font",
            message: "the embedded font could not be loaded".to_string(),
        })
    }
}

/// The latency axis for measured latencies `lo..hi` ms (`lo > hi` when none
/// were measured): padded by a factor of 1.5 on both ends of the log scale.
fn latency_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo > hi { 0.1 } else { lo };
    (lo / 1.5, hi * 1.5)
}

/// The mesh style every figure shares: grid lines at the labels only, the
/// embedded font for labels and axis descriptions.
pub(super) fn house_mesh<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged,
    Y: Ranged,
    DB: DrawingBackend,
{
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .label_style(font(LABEL_SIZE))
        .axis_desc_style(font(LABEL_SIZE))
}

/// The shared time axis of the timeline and accept-queue panels: 16
/// labels, seconds to one decimal.
pub(super) fn time_axis<'m, 'a, 'b, Y, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, RangedCoordf64, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, RangedCoordf64, Y, DB>
where
    Y: Ranged,
    DB: DrawingBackend,
{
    mesh.x_labels(16).x_label_formatter(&secs_tick)
}

/// A time label: seconds to one decimal.
fn secs_tick(v: &f64) -> String {
    format!("{v:.1}")
}

/// A count label: a whole number.
pub(super) fn count_tick(v: &f64) -> String {
    format!("{v:.0}")
}

/// Tick label of a millisecond axis.
fn fmt_ms_tick(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Ticks at 1, 2 and 5 × 10ⁿ within `lo..=hi` (for logarithmic axes).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    if !(lo > 0.0 && hi > lo) {
        return ticks;
    }
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for d in [1.0, 2.0, 5.0] {
            let v = decade * d;
            if v >= lo && v <= hi {
                ticks.push(v);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// The figures drawn for every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Requests/s, failures and latency per time bucket, one panel per case.
    Timeline,
    /// Failed requests per case, stacked by class.
    Failures,
    /// Latency percentile spectrum of every case.
    Spectrum,
    /// Trigger → ready → drained per action (per case and phase above
    /// 40 timed actions).
    ReloadTime,
    /// Accept-queue depth per listening socket over time, actions marked.
    AcceptQueue,
}

impl Chart {
    /// All charts, in report order.
    pub const ALL: [Chart; 5] = [
        Chart::Timeline,
        Chart::Failures,
        Chart::Spectrum,
        Chart::ReloadTime,
        Chart::AcceptQueue,
    ];

    /// File stem under `charts/`.
    pub fn stem(self) -> &'static str {
        match self {
            Chart::Timeline => "timeline",
            Chart::Failures => "failures",
            Chart::Spectrum => "spectrum",
            Chart::ReloadTime => "reload_time",
            Chart::AcceptQueue => "accept_queue",
        }
    }

    /// Caption used as alt text and heading.
    pub fn title(self) -> &'static str {
        match self {
            Chart::Timeline => "Timeline: requests/s, failures and latency per time bucket",
            Chart::Failures => "Failed requests by case and class",
            Chart::Spectrum => "Latency by percentile",
            Chart::ReloadTime => "Reload time per action",
            Chart::AcceptQueue => "Accept-queue depth per listening socket over time",
        }
    }

    /// One or two sentences under the figure telling a reader how to read it.
    pub fn how_to_read(self) -> &'static str {
        match self {
            Chart::Timeline => {
                "One panel per case on a shared time axis. Top: successful requests per second \
                 (line, left axis) and failed requests per time bucket as bars coloured by \
                 failure class (right axis, scaled per panel: its caption gives the total and \
                 the peak); the red number at an action is the failures attributed to it. \
                 Bottom: latency p50, p99 and max of each bucket's successful requests (log \
                 scale). Vertical lines: action triggered (dark, thin) and new process ready \
                 (green, wide, flagged at the bottom), drawn so both show when they are a pixel \
                 apart. The last bucket, cut short by the end of the load, is left out of the \
                 requests/s line: it holds only the requests still in flight. A panel with more \
                 buckets than pixel columns shows per column the mean requests/s in a shaded \
                 min–max band, the failures of its worst bucket and the highest p99 and max, so \
                 a spike of one bucket keeps its height. Actions denser than 3 per 100 px become \
                 a rug at the bottom edge, counted per time bin in the grey band at the top; \
                 only those that caused the most failures get a red line and a label (the \
                 legend says how many of how many)."
            }
            Chart::Failures => {
                "Failed requests of each case over the whole run, stacked by failure class \
                 (a class's count is written in its segment where it fits); the number above \
                 a bar is its total."
            }
            Chart::Spectrum => {
                "Latency of each case's successful requests by percentile over the whole run; \
                 the x axis stretches the tail (99 %, 99.9 %, 99.99 %), the triangle is the \
                 maximum. Lower is better."
            }
            Chart::ReloadTime => {
                "One bar per restart or reload, in ms from its trigger: dark until the new \
                 process was ready, light until the old process had finished its requests \
                 (drained); the red tick is when the old process exited. A plain restart stops \
                 the old process before starting the new one, so its tick comes first. Above 40 \
                 timed actions in a run, one block per case instead, one row per phase (trigger \
                 → ready, → drained, → old exited, log scale): each action a dot (darker where \
                 more fell), a box from p50 to p90, a whisker to p99 and ▼ at the maximum; \
                 orange ticks mark actions that failed or lost requests, and each block names \
                 its slowest actions and the failed ones."
            }
            Chart::AcceptQueue => {
                "One panel per case: connections waiting in each listening socket's accept \
                 queue on the proxy's address, read from the kernel (one line per socket; \
                 the legend gives its deepest queue and its backlog; the phase table names the \
                 processes that held it). \
                 Vertical lines: action triggered (dark) and old processes observed to stop \
                 accepting (red). Connections still queued on a socket when it closes are \
                 reset: the naive reload's failures. A case with more than 12 sockets is drawn \
                 as one area, the deepest queue of any socket per pixel column (a socket with \
                 more steps than pixels, as its deepest queue per column); actions denser than \
                 3 per 100 px become rugs at the top edge (triggered dark, stopped red)."
            }
        }
    }

    /// Pixel size of the figure for `report`.
    pub fn size(self, report: &RunReport) -> (u32, u32) {
        match self {
            Chart::Timeline => timeline::size(report),
            Chart::Failures => failures::size(report),
            Chart::Spectrum => spectrum::size(report),
            Chart::ReloadTime => reload_time::size(report),
            Chart::AcceptQueue => accept_queue::size(report),
        }
    }

    fn draw<DB: DrawingBackend>(
        self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        report: &RunReport,
    ) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        match self {
            Chart::Timeline => timeline::draw(root, report),
            Chart::Failures => failures::draw(root, report),
            Chart::Spectrum => spectrum::draw(root, report),
            Chart::ReloadTime => reload_time::draw(root, report),
            Chart::AcceptQueue => accept_queue::draw(root, report),
        }
    }
}

/// What the timeline's WebSocket and old-generations strips show, for the
/// runs that have them (read after [`Chart::how_to_read`]); `None` for a
/// run without them, whose caption is as it was.
pub fn timeline_strips_note(report: &RunReport) -> Option<String> {
    let mut parts = Vec::new();
    if report.cases.iter().any(|c| c.load.ws.is_some()) {
        parts.push(
            "WebSocket cases have a strip under the requests: connections open at the end of              each bucket (opened − closed − cut so far; left axis) and messages echoed per              second (right axis); red ticks rising from the time axis are connections cut              (no close frame), blue ones connections the server closed cleanly, with their              count."
                .to_owned(),
        );
    }
    let mut sources: Vec<_> = report
        .cases
        .iter()
        .filter_map(|c| c.generations.as_ref().map(|g| g.source))
        .collect();
    sources.dedup();
    if !sources.is_empty() {
        let how: Vec<&str> = sources.iter().map(|s| s.how()).collect();
        parts.push(format!(
            "The old-generations strip counts the server's processes that a reload replaced and              that were still alive ({}).",
            how.join("; ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Output format of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    /// Scalable vector graphics (text).
    Svg,
    /// Portable network graphics (bitmap).
    Png,
}

impl ChartFormat {
    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            ChartFormat::Svg => "svg",
            ChartFormat::Png => "png",
        }
    }
}

/// Renders one chart in one format.
#[derive(Debug, Clone, Copy)]
pub struct ChartExporter {
    /// Which figure.
    pub chart: Chart,
    /// Which format.
    pub format: ChartFormat,
}

impl Exporter for ChartExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        match self.format {
            ChartFormat::Svg => render_svg(self.chart, report).map(String::into_bytes),
            ChartFormat::Png => render_png(self.chart, report),
        }
    }
}

/// Draws `chart` as an SVG document.
pub fn render_svg(chart: Chart, report: &RunReport) -> Result<String, ExportError> {
    ensure_font()?;
    let size = chart.size(report);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        chart
            .draw(&root, report)
            .and_then(|()| root.present())
            .map_err(|e| chart_error(chart, &e))?;
    }
    Ok(svg)
}

/// The timeline as one SVG document per case (each case's panel alone, on
/// the scales of the whole run), with the time axis they share: the pieces
/// `report.html` shows so cases can be shown and hidden.
pub fn render_timeline_panels(report: &RunReport) -> Result<(PanelAxis, Vec<String>), ExportError> {
    ensure_font()?;
    let mut panels = Vec::with_capacity(report.cases.len());
    for i in 0..report.cases.len() {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, timeline::panel_size(report, i))
                .into_drawing_area();
            root.fill(&WHITE)
                .and_then(|()| timeline::draw_panel(&root, report, i))
                .and_then(|()| root.present())
                .map_err(|e| chart_error(Chart::Timeline, &e))?;
        }
        panels.push(svg);
    }
    Ok((timeline::panel_axis(report), panels))
}

/// Draws `chart` as a PNG image.
pub fn render_png(chart: Chart, report: &RunReport) -> Result<Vec<u8>, ExportError> {
    ensure_font()?;
    let (w, h) = chart.size(report);
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        chart
            .draw(&root, report)
            .and_then(|()| root.present())
            .map_err(|e| chart_error(chart, &e))?;
    }
    encode_png(w, h, &rgb)
}

fn chart_error(chart: Chart, e: &dyn std::fmt::Display) -> ExportError {
    ExportError::Chart {
        chart: chart.stem(),
        message: e.to_string(),
    }
}

fn encode_png(w: u32, h: u32, rgb: &[u8]) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| ExportError::Png(e.to_string()))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| ExportError::Png(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| ExportError::Png(e.to_string()))?;
    }
    Ok(out)
}
