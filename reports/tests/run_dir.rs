//! `write_run_dir`: every report file lands under its final name, or none does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use reloadbench_reports::{ReportError, write_results, write_run_dir};

fn names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push(entry.strip_prefix(dir).unwrap().display().to_string());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn writes_markdown_csv_html_and_every_chart_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let run = support::fixture();
    let written = write_run_dir(dir.path(), &run).unwrap();
    let expected = [
        "actions.csv",
        "charts/accept_queue.png",
        "charts/accept_queue.svg",
        "charts/failures.png",
        "charts/failures.svg",
        "charts/reload_time.png",
        "charts/reload_time.svg",
        "charts/spectrum.png",
        "charts/spectrum.svg",
        "charts/timeline.png",
        "charts/timeline.svg",
        "report.html",
        "report.md",
        "timeline.csv",
    ];
    assert_eq!(
        names(dir.path()),
        expected,
        "no temporary file is left behind"
    );
    assert_eq!(written.len(), expected.len());
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for png in expected.iter().filter(|n| n.ends_with(".png")) {
        assert!(md.contains(&format!("]({png})")), "report.md embeds {png}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    if let Some(out) = std::env::var_os("RELOADBENCH_CHART_DUMP") {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(Path::new(&out).join("report.html"), &html).unwrap();
        std::fs::write(Path::new(&out).join("report.md"), &md).unwrap();
    }
    // The timeline is one panel per case (so a case can be hidden), the
    // other four figures one SVG each; verdict marks are small SVGs too.
    assert_eq!(
        html.matches("<svg width=").count(),
        run.cases.len() + 4,
        "charts are inline"
    );
    assert!(
        !html.contains("src=\"")
            && !html.contains("href=\"http")
            && !html.contains("<link")
            && !html.contains("url("),
        "self-contained"
    );
    assert!(html.contains("reload (fd-pass)") && html.contains("<table>"));
    assert!(html.contains("<h2>Failures and reloads</h2>"));
    assert_eq!(
        html.matches("<figcaption").count(),
        5,
        "every chart explained"
    );
}

#[test]
fn failure_midway_leaves_no_report_under_a_final_name() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where report.html should go makes its rename fail after
    // report.md was already renamed into place.
    std::fs::create_dir(dir.path().join("report.html")).unwrap();
    std::fs::write(dir.path().join("report.html/keep"), "x").unwrap();
    let err = write_run_dir(dir.path(), &support::fixture()).unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("report.html"), "{err}");
    assert!(
        !dir.path().join("report.md").exists(),
        "report.md was rolled back"
    );
    assert!(!dir.path().join("timeline.csv").exists());
    let left: Vec<String> = names(dir.path());
    assert_eq!(left, ["report.html/keep"], "nothing else is left: {left:?}");
}

#[test]
fn a_full_disk_fails_naming_the_report_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The temporary file of report.html is a link to /dev/full: every write
    // to it fails with ENOSPC, as on a full disk (root included).
    let tmp = dir
        .path()
        .join(format!(".report.html.tmp-{}", std::process::id()));
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
    let err = write_run_dir(dir.path(), &support::fixture()).unwrap_err();
    let ReportError::Io { path, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, &dir.path().join("report.html"), "{err}");
    assert_eq!(source.raw_os_error(), Some(libc_enospc()), "{err}");
    assert!(err.to_string().contains("report.html: "), "{err}");
    assert_eq!(names(dir.path()), Vec::<String>::new(), "nothing is left");
}

/// ENOSPC on Linux.
fn libc_enospc() -> i32 {
    28
}

#[test]
fn unwritable_directory_fails_with_its_path_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the run directory should be.
    let not_a_dir = dir.path().join("run");
    std::fs::write(&not_a_dir, "").unwrap();
    let err = write_run_dir(&not_a_dir, &support::fixture()).unwrap_err();
    assert!(err.to_string().contains("run"), "{err}");
    assert_eq!(names(dir.path()), ["run"]);
}

#[test]
fn results_json_is_written_atomically_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let run = support::fixture();
    let path = dir.path().join("results.json");
    write_results(&path, &run).unwrap();
    assert_eq!(names(dir.path()), ["results.json"]);
    assert_eq!(reloadbench_reports::read_results(dir.path()).unwrap(), run);
}
