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
///
/// A file of an older schema is read into the current one (absent fields
/// take their defaults, old encodings are decoded), and the report says so:
/// its `schema_version` and its loads' are [`SCHEMA_VERSION`], which is the
/// schema it will be written in.
///
/// The text is parsed once into the report; only when that fails is it
/// scanned again, for its schema version and whether it is JSON at all, so
/// the error says the most useful thing (newer schema, not JSON, or what is
/// wrong with which field).
pub fn parse_results(file: &Path, text: &str) -> Result<RunReport, ReportError> {
    let newer = |found: u64| ReportError::NewerSchema {
        path: file.to_path_buf(),
        found,
        supported: SCHEMA_VERSION,
    };
    let invalid = match serde_json::from_str::<RunReport>(text) {
        Ok(report) if report.schema_version > SCHEMA_VERSION => {
            return Err(newer(report.schema_version.into()));
        }
        Ok(mut report) => {
            current_schema(&mut report);
            return Ok(report);
        }
        Err(e) => e,
    };
    // Only an object has a version (a struct would also read from an array).
    let probe = if text.trim_start().starts_with('{') {
        serde_json::from_str::<VersionProbe>(text)
    } else {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map(|_| VersionProbe {
            schema_version: None,
        })
    };
    match probe {
        Err(e) if e.is_syntax() || e.is_eof() => Err(ReportError::NotJson {
            path: file.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e),
        }),
        Ok(VersionProbe {
            schema_version: Some(v),
        }) if v
            .as_u64()
            .is_some_and(|found| found > u64::from(SCHEMA_VERSION)) =>
        {
            Err(newer(v.as_u64().unwrap_or_default()))
        }
        _ => Err(ReportError::Invalid {
            path: file.to_path_buf(),
            line: invalid.line(),
            column: invalid.column(),
            message: strip_position(&invalid),
        }),
    }
}

/// Just the version of a results file (every other field is skipped, but
/// the whole text is checked to be JSON).
#[derive(serde::Deserialize)]
struct VersionProbe {
    schema_version: Option<serde_json::Value>,
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

/// Marks a report read from any schema as being in the current one.
fn current_schema(report: &mut RunReport) {
    report.schema_version = SCHEMA_VERSION;
    for c in &mut report.cases {
        c.load.schema_version = SCHEMA_VERSION;
    }
}
