//! `results.json`: the run report as pretty JSON with a trailing newline.

use reloadbench_model::run::RunReport;

use super::Exporter;
use crate::error::ExportError;

/// Writes the report as pretty-printed JSON (the format [`crate::read_results`] reads).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        let mut out = serde_json::to_vec_pretty(report)?;
        out.push(b'\n');
        Ok(out)
    }
}
