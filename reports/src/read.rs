//! Reading `results.json` with errors that name the file and the problem.
//!
//! The schema version is checked before the full structure, so a file from a
//! newer reloadbench is reported as such rather than as a missing field.

use std::path::{Path, PathBuf};

use reloadbench_model::SCHEMA_VERSION;
use reloadbench_model::run::RunReport;

use crate::error::ReportError;

/// The name of the results file inside a run directory.
pub const RESULTS_FILE: &str = "results.json";

/// Reads a run report from `path`: a `results.json` file or a run directory containing one.
pub fn read_results(path: &Path) -> Result<RunReport, ReportError> {
    let file = resolve(path)?;
    let text = std::fs::read_to_string(&file).map_err(|source| ReportError::Io {
        path: file.clone(),
        source,
    })?;
    parse_results(&file, &text)
}

/// Parses the text of a results file; `file` is used in error messages only.
pub fn parse_results(file: &Path, text: &str) -> Result<RunReport, ReportError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ReportError::NotJson {
            path: file.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e),
        })?;
    if let Some(found) = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        && found > u64::from(SCHEMA_VERSION)
    {
        return Err(ReportError::NewerSchema {
            path: file.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // Parse the text again (not the value) so errors carry line and column.
    serde_json::from_str(text).map_err(|e| ReportError::Invalid {
        path: file.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e),
    })
}

fn resolve(path: &Path) -> Result<PathBuf, ReportError> {
    let meta = std::fs::metadata(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ReportError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            ReportError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if !meta.is_dir() {
        return Ok(path.to_path_buf());
    }
    let file = path.join(RESULTS_FILE);
    if file.is_file() {
        Ok(file)
    } else {
        Err(ReportError::Missing { path: file })
    }
}

/// serde_json appends " at line L column C" to its messages; the error types
/// carry the position separately.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}
