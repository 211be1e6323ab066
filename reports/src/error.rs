//! Errors of reading results and rendering reports.
//!
//! Every variant names the file it is about, so a message such as
//! `runs/x/results.json: not valid JSON at line 3, column 7: ...` tells the
//! reader where to look and what is wrong.

use std::path::PathBuf;

/// Why results could not be read or a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The results file (or the run directory) does not exist.
    #[error("{path}: no such file (expected results.json or a run directory containing it)")]
    Missing {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// The file exists but could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path}: not valid JSON at line {line}, column {column}: {message}")]
    NotJson {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The file was written by a newer reloadbench with a schema this one does not know.
    #[error(
        "{path}: schema_version {found} was written by a newer reloadbench (this one reads up to {supported}); upgrade reloadbench to read it"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The file is JSON but not a run report (missing or mistyped fields).
    #[error("{path}: not a reloadbench run report at line {line}, column {column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is missing or wrong, as the parser said it.
        message: String,
    },
    /// One of the report files could not be rendered.
    #[error("rendering {file}: {source}")]
    Export {
        /// The file that was being rendered, relative to the run directory.
        file: String,
        /// Why rendering failed.
        #[source]
        source: ExportError,
    },
}

/// Why one exporter could not render its output.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Serializing to JSON failed.
    #[error("JSON serialization failed: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing a chart failed.
    #[error("drawing chart {chart}: {message}")]
    Chart {
        /// The chart's name.
        chart: &'static str,
        /// The drawing backend's message.
        message: String,
    },
    /// Writing CSV failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Encoding a bitmap failed.
    #[error("encoding PNG: {0}")]
    Png(String),
}
