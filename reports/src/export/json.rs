//! `results.json`: the run report as JSON with a trailing newline, indented
//! down to the records (an action, a queue series, a column of the buckets
//! or of the failures), each of which is one line ([`json_layout::Layout::RUN`]).

use reloadbench_model::SCHEMA_VERSION;
use reloadbench_model::json_layout::{self, Layout};
use reloadbench_model::run::RunReport;

use super::Exporter;
use crate::error::ExportError;

/// Writes the report as JSON indented to its records (the format
/// [`crate::read_results`] reads).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExporter;

impl Exporter for JsonExporter {
    /// The report is written in the current schema whatever file it was read
    /// from, so it says so: the run's and every load's `schema_version` are
    /// [`SCHEMA_VERSION`] (an older file written again holds columns that
    /// only a reader of this version knows).
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        let current = report.schema_version == SCHEMA_VERSION
            && report
                .cases
                .iter()
                .all(|c| c.load.schema_version == SCHEMA_VERSION);
        if current {
            return Ok(json_layout::to_vec(report, Layout::RUN)?);
        }
        let mut stamped = report.clone();
        stamped.schema_version = SCHEMA_VERSION;
        for c in &mut stamped.cases {
            c.load.schema_version = SCHEMA_VERSION;
        }
        Ok(json_layout::to_vec(&stamped, Layout::RUN)?)
    }
}
