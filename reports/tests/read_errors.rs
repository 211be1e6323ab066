//! Bad input to `read_results`: each error names the file and what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_reports::{ReportError, read_results};

#[test]
fn a_run_directory_or_the_file_itself_can_be_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::fixture_path(), dir.path().join("results.json")).unwrap();
    let from_dir = read_results(dir.path()).unwrap();
    let from_file = read_results(&dir.path().join("results.json")).unwrap();
    assert_eq!(from_dir, from_file);
    assert_eq!(from_dir.cases.len(), 4);
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.json");
    let err = read_results(&path).unwrap_err();
    assert!(matches!(err, ReportError::Missing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("nope.json") && msg.contains("no such file"),
        "{msg}"
    );
}

#[test]
fn run_directory_without_results_names_the_expected_file() {
    let dir = tempfile::tempdir().unwrap();
    let msg = read_results(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("results.json") && msg.contains("no such file"),
        "{msg}"
    );
}

#[test]
fn corrupt_json_reports_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, "{\n  \"schema_version\": 1,\n  \"cases\": [,]\n}\n").unwrap();
    let err = read_results(&path).unwrap_err();
    match &err {
        ReportError::NotJson { line, column, .. } => assert_eq!((*line, *column), (3, 13)),
        other => panic!("expected NotJson, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("results.json") && msg.contains("not valid JSON at line 3"),
        "{msg}"
    );
}

#[test]
fn truncated_file_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    let text = std::fs::read_to_string(support::fixture_path()).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let msg = read_results(&path).unwrap_err().to_string();
    assert!(msg.contains("not valid JSON"), "{msg}");
}

#[test]
fn newer_schema_version_says_written_by_a_newer_reloadbench() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    let text = std::fs::read_to_string(support::fixture_path()).unwrap();
    let newer = reloadbench_model::SCHEMA_VERSION + 1;
    // A newer schema may also have changed fields: the version is checked first.
    let text = text.replacen(
        "\"schema_version\": 1,",
        &format!("\"schema_version\": {newer}, \"new_field\": true,"),
        1,
    );
    let text = text.replacen("\"tool_version\"", "\"renamed_tool_version\"", 1);
    std::fs::write(&path, text).unwrap();
    let err = read_results(&path).unwrap_err();
    assert!(matches!(err, ReportError::NewerSchema { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("written by a newer reloadbench") && msg.contains("results.json"),
        "{msg}"
    );
}

#[test]
fn missing_field_is_named_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    let text = std::fs::read_to_string(support::fixture_path()).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"tool_version\"", "\"tool_versio\"", 1),
    )
    .unwrap();
    let err = read_results(&path).unwrap_err();
    assert!(matches!(err, ReportError::Invalid { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("missing field `tool_version`") && msg.contains("results.json"),
        "{msg}"
    );
}

#[test]
fn valid_json_of_the_wrong_shape_is_not_a_run_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, "[1, 2, 3]\n").unwrap();
    let msg = read_results(&path).unwrap_err().to_string();
    assert!(msg.contains("not a reloadbench run report"), "{msg}");
}
