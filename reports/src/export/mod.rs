//! Exporters: each turns a [`RunReport`] into the bytes of one output file.
//!
//! The trait returns bytes and leaves files to the caller
//! ([`crate::write_run_dir`]), so every exporter is testable without I/O.

pub mod ab_text;
pub mod actions_csv;
pub mod chart;
pub mod csv;
pub mod glossary;
pub mod grid;
pub mod html;
pub mod html_data;
pub mod json;
pub mod markdown;
pub mod tables;

use reloadbench_model::run::RunReport;

use crate::error::ExportError;

/// Renders a run report into one output format.
pub trait Exporter {
    /// The rendered file content.
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError>;
}
