//! Rendering of reloadbench results: markdown tables, JSON, CSV, charts and
//! an HTML page, plus the comparison of two runs.
//!
//! The input is always a [`RunReport`] (`results.json`). Rendering is pure:
//! every exporter turns a report into bytes ([`export::Exporter`]); only
//! [`read_results`] and [`write_run_dir`] touch the file system.

pub mod bounded;
pub mod compare;
mod diagnosis;
mod error;
pub mod export;
mod publish;
mod read;
pub mod summary;
#[doc(hidden)]
pub mod synthetic;
pub mod trials;
mod ws_buckets;

pub use compare::{
    CompareError, CompareOptions, Comparison, GateVerdict, Tolerances, compare, compare_with,
};
pub use diagnosis::diagnose;
pub use error::{ExportError, ReportError};
pub use export::ab_text::ab_text;
pub use export::markdown::render_markdown;
pub use publish::{CHARTS_DIR, outputs, write_results, write_run_dir};
pub use read::{RESULTS_FILE, parse_results, read_results};
pub use reloadbench_model::run::{CaseReport, RunReport};
