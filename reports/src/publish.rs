//! Writing the rendered report files into a run directory, atomically per
//! file and all-or-nothing for the set.
//!
//! Everything is rendered in memory first. Each file is then written under a
//! hidden temporary name and renamed into place only once all of them were
//! written, so a reader never sees a half-written `report.md`; if anything
//! fails, the temporary files and the files already renamed in this call are
//! removed again.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use reloadbench_model::run::RunReport;

use crate::error::ReportError;
use crate::export::Exporter;
use crate::export::actions_csv::ActionsCsvExporter;
use crate::export::chart::{Chart, ChartExporter, ChartFormat};
use crate::export::csv::CsvExporter;
use crate::export::html::HtmlExporter;
use crate::export::json::JsonExporter;
use crate::export::markdown::MarkdownExporter;

/// Sub-directory of the run directory holding the charts.
pub const CHARTS_DIR: &str = "charts";

/// The files [`write_run_dir`] produces, relative to the run directory, with their exporters.
pub fn outputs() -> Vec<(String, Box<dyn Exporter>)> {
    let mut out: Vec<(String, Box<dyn Exporter>)> = vec![
        ("report.md".to_string(), Box::new(MarkdownExporter)),
        ("timeline.csv".to_string(), Box::new(CsvExporter)),
        ("actions.csv".to_string(), Box::new(ActionsCsvExporter)),
        ("report.html".to_string(), Box::new(HtmlExporter)),
    ];
    for chart in Chart::ALL {
        for format in [ChartFormat::Svg, ChartFormat::Png] {
            out.push((
                format!("{CHARTS_DIR}/{}.{}", chart.stem(), format.ext()),
                Box::new(ChartExporter { chart, format }),
            ));
        }
    }
    out
}

/// Renders `report.md`, `charts/*.svg`, `charts/*.png`, `timeline.csv`,
/// `actions.csv` and `report.html` into `dir` and returns the paths written.
///
/// On error nothing new is left under a final name.
pub fn write_run_dir(dir: &Path, report: &RunReport) -> Result<Vec<PathBuf>, ReportError> {
    let mut rendered = Vec::new();
    for (name, exporter) in outputs() {
        let bytes = exporter
            .render(report)
            .map_err(|source| ReportError::Export {
                file: name.clone(),
                source,
            })?;
        rendered.push((dir.join(&name), bytes));
    }
    let charts = dir.join(CHARTS_DIR);
    std::fs::create_dir_all(&charts).map_err(|source| ReportError::Io {
        path: charts,
        source,
    })?;
    write_all_or_nothing(&rendered)
}

/// Writes `results.json` (pretty JSON) to `path` through a temporary file and a rename.
pub fn write_results(path: &Path, report: &RunReport) -> Result<(), ReportError> {
    let bytes = JsonExporter
        .render(report)
        .map_err(|source| ReportError::Export {
            file: path.display().to_string(),
            source,
        })?;
    write_all_or_nothing(&[(path.to_path_buf(), bytes)]).map(|_| ())
}

fn write_all_or_nothing(files: &[(PathBuf, Vec<u8>)]) -> Result<Vec<PathBuf>, ReportError> {
    let mut temps: Vec<(PathBuf, &Path)> = Vec::new();
    for (path, bytes) in files {
        let tmp = temp_name(path);
        if let Err(source) = write_file(&tmp, bytes) {
            let _ = std::fs::remove_file(&tmp);
            remove_all(temps.iter().map(|(t, _)| t.as_path()));
            // Named after the file being written, not its hidden temporary.
            return Err(ReportError::Io {
                path: path.clone(),
                source,
            });
        }
        temps.push((tmp, path));
    }
    let mut done: Vec<PathBuf> = Vec::new();
    for (i, (tmp, path)) in temps.iter().enumerate() {
        if let Err(source) = std::fs::rename(tmp, path) {
            remove_all(temps[i..].iter().map(|(t, _)| t.as_path()));
            remove_all(done.iter().map(PathBuf::as_path));
            return Err(ReportError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        done.push(path.to_path_buf());
    }
    Ok(done)
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn remove_all<'a>(paths: impl Iterator<Item = &'a Path>) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// `dir/.name.tmp-<pid>`: hidden, next to the final file (same file system for the rename).
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
