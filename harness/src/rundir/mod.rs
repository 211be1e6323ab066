//! The run directory: where a run's files go, written as the run
//! progresses.
//!
//! ```text
//! <run dir>/                      default runs/<YYYY-MM-DD-HHMMSS>-<scenario id>/
//!   .reloadbench-run              marks a run directory (`--force` replaces only these)
//!   scenario.toml                 the scenario as run
//!   environment.json              kernel, sysctls, versions, git sha
//!   pids.log                      every pid reloadbench started ("pid name" lines)
//!   results.json                  the RunReport, rewritten (tmp + rename) after each case
//!   report.md, charts/, ...       rendered at the end (reloadbench-reports)
//!   tls/                          with a TLS load: the run's CA and server certificate
//!   cases/<NN>-<slug>/
//!     proxy.toml                  the reference proxy's config (or the rendered template)
//!     events.jsonl                every stdout line of every process, stamped
//!     loadgen.json                the load report
//!     latency.hlog                HdrHistogram interval log, one histogram per bucket
//!     logs/<process>-<pid>.stderr.log
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use reloadbench_model::run::{Environment, RunReport};

/// Errors writing the run directory.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunDirError {
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory already holds a run.
    #[error("{0} already holds a run; choose another --out, or add --force to replace it")]
    Exists(PathBuf),
    /// `--force` was given for a directory that is not a run directory.
    #[error(
        "{0} is not empty and is not a reloadbench run directory (no {MARKER}), or is the \
         working directory, a parent of it, $HOME or /; a run is written only into a new \
         or empty directory or over an earlier run (--force), so it is left alone"
    )]
    NotARun(PathBuf),
    /// An earlier run's directory holds files a run does not write.
    #[error(
        "{path} holds an earlier run but also {foreign:?}, which a run does not write; \
         --force replaces only what a run wrote, so it is left alone"
    )]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// The entries a run does not write.
        foreign: Vec<String>,
    },
    /// The earlier run could not be removed.
    #[error("cannot remove the earlier run {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error(transparent)]
    Report(#[from] reloadbench_reports::ReportError),
}

/// The file that marks a directory as a reloadbench run directory from the
/// moment it is created (before results.json exists), so `--force` may
/// replace it.
pub(crate) const MARKER: &str = ".reloadbench-run";

const MARKER_TEXT: &str = "a reloadbench run directory: `reloadbench run --force` may replace it\n";

/// What a run writes at the top of its directory: `--force` removes these
/// and nothing else.
const RUN_ENTRIES: &[&str] = &[
    MARKER,
    "scenario.toml",
    "environment.json",
    "pids.log",
    "results.json",
    "report.md",
    "report.html",
    "timeline.csv",
    "actions.csv",
    "charts",
    "cases",
    "tls",
];

/// True when `dir` holds a run: it has the [`MARKER`] (a `results.json`
/// alone is a common file name, not proof).
pub(crate) fn is_run_dir(dir: &Path) -> bool {
    dir.is_dir() && dir.join(MARKER).is_file()
}

/// The names of the entries of `dir`.
fn entry_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// True for an entry a run writes, or a temporary file it left beside one.
fn written_by_a_run(name: &str) -> bool {
    RUN_ENTRIES.contains(&name) || is_run_temp(name).is_some()
}

/// True when every entry of `dir` is an empty directory named like an entry
/// a run writes (e.g. `cases/`) and there is no marker: a run may write
/// there, it overwrites and removes nothing.
fn only_run_subdirs(dir: &Path) -> bool {
    !dir.join(MARKER).exists()
        && std::fs::read_dir(dir).is_ok_and(|d| {
            d.filter_map(Result::ok).all(|e| {
                RUN_ENTRIES.contains(&e.file_name().to_string_lossy().as_ref())
                    && e.file_type().is_ok_and(|t| t.is_dir())
                    && is_empty_dir(&e.path())
            })
        })
}

/// A temporary file a run writes next to an entry and renames over it
/// (`.results.json.tmp-<pid>`): left behind when the run was killed.
fn is_run_temp(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    let (entry, pid) = rest.rsplit_once(".tmp-")?;
    (RUN_ENTRIES.contains(&entry) && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .then_some(entry)
}

/// True when `dir` is the working directory, one of its parents, `$HOME`
/// or the root: never replaced, whatever is in it.
fn is_precious(dir: &Path) -> bool {
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return false;
    };
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize);
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|h| std::fs::canonicalize(h).ok());
    dir.parent().is_none()
        || cwd.is_ok_and(|c| c.starts_with(&dir))
        || home.is_some_and(|h| h == dir)
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// A run directory being written.
#[derive(Debug, Clone)]
pub(crate) struct RunDir {
    path: PathBuf,
}

/// `2026-11-24-031415` for a UTC time.
pub(crate) fn stamp(t: SystemTime) -> String {
    // RFC 3339 "2026-11-24T03:14:15Z" -> "2026-11-24-031415".
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let (date, time) = s.split_once('T').unwrap_or((&s, ""));
    format!("{date}-{}", time.trim_end_matches('Z').replace(':', ""))
}

impl RunDir {
    /// Creates `out`, or `runs/<stamp>-<id>` when `out` is `None`. A
    /// directory that holds a run is refused, or with `force` removed first;
    /// `force` never removes a non-empty directory that is not a run.
    pub(crate) fn create(
        out: Option<&Path>,
        scenario_id: &str,
        started: SystemTime,
        force: bool,
    ) -> Result<RunDir, RunDirError> {
        let path = match out {
            Some(p) => p.to_owned(),
            None => Path::new("runs").join(format!("{}-{scenario_id}", stamp(started))),
        };
        if path.exists() && !is_empty_dir(&path) && !only_run_subdirs(&path) {
            if !is_run_dir(&path) || is_precious(&path) {
                return Err(RunDirError::NotARun(path));
            }
            if !force {
                return Err(RunDirError::Exists(path));
            }
            let names = entry_names(&path);
            let foreign: Vec<String> = names
                .iter()
                .filter(|n| !written_by_a_run(n))
                .cloned()
                .collect();
            if !foreign.is_empty() {
                return Err(RunDirError::Foreign { path, foreign });
            }
            for name in &names {
                let entry = path.join(name);
                let removed = if entry.is_dir() && !entry.is_symlink() {
                    std::fs::remove_dir_all(&entry)
                } else {
                    std::fs::remove_file(&entry)
                };
                removed.map_err(|source| RunDirError::Remove {
                    path: entry.clone(),
                    source,
                })?;
            }
        }
        std::fs::create_dir_all(path.join("cases")).map_err(|source| RunDirError::Io {
            path: path.clone(),
            source,
        })?;
        let marker = path.join(MARKER);
        std::fs::write(&marker, MARKER_TEXT).map_err(|source| RunDirError::Io {
            path: marker,
            source,
        })?;
        Ok(RunDir { path })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `cases/<NN>-<slug>` for case `index` (from 0).
    pub(crate) fn case_dir(&self, index: usize, slug: &str) -> PathBuf {
        self.path
            .join("cases")
            .join(format!("{:02}-{slug}", index + 1))
    }

    /// The pid list file.
    pub(crate) fn pids_path(&self) -> PathBuf {
        self.path.join("pids.log")
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), RunDirError> {
        let path = self.path.join(name);
        std::fs::write(&path, bytes).map_err(|source| RunDirError::Io { path, source })
    }

    /// Writes `scenario.toml`.
    pub(crate) fn write_scenario(&self, source: &str) -> Result<(), RunDirError> {
        self.write("scenario.toml", source.as_bytes())
    }

    /// Writes `environment.json`.
    pub(crate) fn write_environment(&self, env: &Environment) -> Result<(), RunDirError> {
        let mut json = serde_json::to_vec_pretty(env).map_err(|e| RunDirError::Io {
            path: self.path.join("environment.json"),
            source: std::io::Error::other(e),
        })?;
        json.push(b'\n');
        self.write("environment.json", &json)
    }

    /// Rewrites `results.json` atomically (temporary file, then rename).
    pub(crate) fn write_results(&self, report: &RunReport) -> Result<(), RunDirError> {
        Ok(reloadbench_reports::write_results(
            &self.path.join("results.json"),
            report,
        )?)
    }

    /// Renders `report.md`, charts and the rest from the report.
    pub(crate) fn render(&self, report: &RunReport) -> Result<Vec<PathBuf>, RunDirError> {
        Ok(reloadbench_reports::write_run_dir(&self.path, report)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps_are_sortable_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(stamp(t), "2026-11-18-110640");
    }

    #[test]
    fn creates_case_dirs_and_refuses_a_finished_run() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        let d = RunDir::create(Some(&out), "seed", SystemTime::now(), false).unwrap();
        assert_eq!(d.case_dir(0, "normal"), out.join("cases/01-normal"));
        std::fs::write(out.join("results.json"), "{}").unwrap();
        let e = RunDir::create(Some(&out), "seed", SystemTime::now(), false).unwrap_err();
        assert!(matches!(e, RunDirError::Exists(_)), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
    }

    #[test]
    fn force_replaces_an_earlier_run() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        RunDir::create(Some(&out), "seed", SystemTime::now(), false).unwrap();
        std::fs::write(out.join("results.json"), "{}").unwrap();
        std::fs::write(out.join("cases/old"), "x").unwrap();
        RunDir::create(Some(&out), "seed", SystemTime::now(), true).unwrap();
        assert!(!out.join("results.json").exists());
        assert!(!out.join("cases/old").exists());
        assert!(out.join(MARKER).is_file());
    }

    #[test]
    fn force_replaces_every_file_the_report_writer_writes() {
        // A file the report writer adds must be listed in RUN_ENTRIES, or
        // `--force` refuses the next run into the directory.
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        RunDir::create(Some(&out), "seed", SystemTime::now(), false).unwrap();
        let report = reloadbench_reports::synthetic::run(reloadbench_reports::synthetic::Shape {
            cases: 1,
            buckets: 20,
            actions: 2,
            failing_every: 1,
        });
        reloadbench_reports::write_results(&out.join("results.json"), &report).unwrap();
        let written = reloadbench_reports::write_run_dir(&out, &report).unwrap();
        assert!(written.iter().any(|p| p.ends_with("actions.csv")));
        RunDir::create(Some(&out), "seed", SystemTime::now(), true).unwrap();
        for p in &written {
            assert!(!p.exists(), "{} was removed", p.display());
        }
    }

    #[test]
    fn force_replaces_a_run_cut_before_its_first_results() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        RunDir::create(Some(&out), "seed", SystemTime::now(), false).unwrap();
        std::fs::write(out.join("scenario.toml"), "x").unwrap();
        assert!(matches!(
            RunDir::create(Some(&out), "seed", SystemTime::now(), false),
            Err(RunDirError::Exists(_))
        ));
        RunDir::create(Some(&out), "seed", SystemTime::now(), true).unwrap();
        assert!(!out.join("scenario.toml").exists());
    }

    #[test]
    fn a_results_json_alone_does_not_make_a_directory_a_run() {
        // A project directory with its own results.json: never removed, and
        // not written into either.
        let tmp = tempfile::tempdir().unwrap();
        let proj = tmp.path().join("proj");
        std::fs::create_dir_all(proj.join("src")).unwrap();
        std::fs::write(proj.join("results.json"), "{}").unwrap();
        std::fs::write(proj.join("src/main.rs"), "fn main() {}").unwrap();
        for force in [false, true] {
            let e = RunDir::create(Some(&proj), "seed", SystemTime::now(), force).unwrap_err();
            assert!(matches!(e, RunDirError::NotARun(_)), "{e}");
        }
        assert!(proj.join("src/main.rs").is_file());
        assert!(!proj.join(MARKER).exists());
    }

    #[test]
    fn force_removes_only_what_a_run_wrote_and_refuses_anything_else() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        RunDir::create(Some(&out), "seed", SystemTime::now(), false).unwrap();
        std::fs::write(out.join("NOTES.md"), "mine").unwrap();
        let e = RunDir::create(Some(&out), "seed", SystemTime::now(), true).unwrap_err();
        assert!(matches!(e, RunDirError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("NOTES.md"), "{e}");
        assert!(out.join("NOTES.md").is_file() && out.join(MARKER).is_file());
    }

    #[test]
    fn force_replaces_a_run_killed_while_it_wrote_its_results() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        RunDir::create(Some(&out), "seed", SystemTime::now(), false).unwrap();
        std::fs::write(out.join(".results.json.tmp-12345"), "{").unwrap();
        RunDir::create(Some(&out), "seed", SystemTime::now(), true).unwrap();
        assert!(!out.join(".results.json.tmp-12345").exists());
        assert_eq!(is_run_temp(".report.md.tmp-1"), Some("report.md"));
        assert_eq!(is_run_temp(".notes.tmp-1"), None);
        assert_eq!(is_run_temp(".report.md.tmp-x"), None);
    }

    #[test]
    fn a_directory_of_named_but_full_subdirectories_is_not_written_into() {
        let tmp = tempfile::tempdir().unwrap();
        let proj = tmp.path().join("proj");
        std::fs::create_dir_all(proj.join("cases")).unwrap();
        std::fs::write(proj.join("cases/my-fixture.txt"), "mine").unwrap();
        let e = RunDir::create(Some(&proj), "seed", SystemTime::now(), false).unwrap_err();
        assert!(matches!(e, RunDirError::NotARun(_)), "{e}");
        assert!(!proj.join(MARKER).exists());
    }

    #[test]
    fn force_replaces_the_tls_files_of_an_earlier_run() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        RunDir::create(Some(&out), "tls", SystemTime::now(), false).unwrap();
        std::fs::create_dir(out.join("tls")).unwrap();
        std::fs::write(out.join("tls/ca.pem"), "old").unwrap();
        RunDir::create(Some(&out), "tls", SystemTime::now(), true).unwrap();
        assert!(!out.join("tls").exists());
    }

    #[test]
    fn the_working_directory_is_never_replaced() {
        // The test's working directory holds no marker, but even with one a
        // parent of the working directory is refused.
        let cwd = std::env::current_dir().unwrap();
        assert!(is_precious(&cwd));
        assert!(is_precious(Path::new("/")));
        let tmp = tempfile::tempdir().unwrap();
        assert!(!is_precious(tmp.path()));
    }

    #[test]
    fn force_refuses_a_directory_that_is_not_a_run() {
        let tmp = tempfile::tempdir().unwrap();
        let precious = tmp.path().join("home");
        std::fs::create_dir(&precious).unwrap();
        std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
        let e = RunDir::create(Some(&precious), "seed", SystemTime::now(), true).unwrap_err();
        assert!(matches!(e, RunDirError::NotARun(_)), "{e}");
        assert!(
            e.to_string().contains("not a reloadbench run directory"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(precious.join("notes.txt")).unwrap(),
            "keep me"
        );
        // An empty directory is fine: nothing is replaced.
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        RunDir::create(Some(&empty), "seed", SystemTime::now(), true).unwrap();
    }
}
