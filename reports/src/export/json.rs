//! `results.json`: the run report as JSON with a trailing newline, indented
//! down to the records (an action, a queue series, a column of the buckets
//! or of the failures), each of which is one line ([`json_layout::Layout::RUN`]).

use reloadbench_model::json_layout::{self, Layout};
use reloadbench_model::run::RunReport;

use super::Exporter;
use crate::error::ExportError;

/// Writes the report as JSON indented to its records (the format
/// [`crate::read_results`] reads).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        Ok(json_layout::to_vec(report, Layout::RUN)?)
    }
}
