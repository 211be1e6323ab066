//! `actions.csv` holds every action of every case, one row each, with fields
//! quoted so that it parses back: checked on a synthetic run of 10 cases ×
//! 1,000 actions with a case name, a label and an error that need quoting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reloadbench_reports::export::Exporter;
use reloadbench_reports::export::actions_csv::ActionsCsvExporter;
use reloadbench_reports::synthetic::{Shape, run};

/// An RFC 4180 reader written for the test: records of fields, quoted fields
/// may hold commas, doubled quotes and line breaks.
fn parse(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "ends with a line break"
    );
    records
}

#[test]
fn every_action_of_every_case_is_one_row_and_parses_back() {
    let mut r = run(Shape {
        cases: 10,
        buckets: 600,
        actions: 1_000,
        failing_every: 50,
    });
    r.cases[0].name = "case \"zero\", restarts".into();
    r.cases[1].trial = Some(2);
    r.cases[0].actions[3].label = "exec \"kill -HUP\", then wait".into();
    r.cases[0].actions[5].ok = false;
    r.cases[0].actions[5].error = Some("timed out,\nno ready".into());
    let text = String::from_utf8(ActionsCsvExporter.render(&r).unwrap()).unwrap();
    let records = parse(&text);
    let header = &records[0];
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let total: usize = r.cases.iter().map(|c| c.actions.len()).sum();
    assert_eq!(total, 10_000);
    assert_eq!(records.len() - 1, total, "one row per action");
    // Restart cases lose connects, naive ones get resets.
    let (refused, reset) = (col("failed_connect_refused"), col("failed_reset"));
    let rows = records[1..].iter();
    let expected = r
        .cases
        .iter()
        .flat_map(|c| c.actions.iter().map(move |a| (c, a)));
    for (row, (case, a)) in rows.zip(expected) {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(row[col("case")], case.name);
        assert_eq!(row[col("index")], a.index.to_string());
        let trigger_ms: f64 = row[col("trigger_ms")].parse().unwrap();
        assert!((trigger_ms - a.trigger_ns as f64 / 1e6).abs() < 0.001);
        let failed: u64 = row[col("failed")].parse().unwrap();
        assert_eq!(failed, a.failures.iter().map(|f| f.count).sum::<u64>());
        let by_class: u64 = [refused, reset]
            .iter()
            .map(|&i| row[i].parse::<u64>().unwrap())
            .sum();
        assert_eq!(by_class, failed, "{row:?}");
        assert_eq!(row[col("ok")], a.ok.to_string());
        let ready_ms: f64 = row[col("ready_ms")].parse().unwrap();
        let ready = a.ready_ns.unwrap() - a.trigger_ns;
        assert!((ready_ms - ready as f64 / 1e6).abs() < 0.001);
        let o = a.observed.as_ref().unwrap();
        let seen: f64 = row[col("observed_old_drained_ms")].parse().unwrap();
        let drained = o.old_drained_ns.unwrap() - a.trigger_ns;
        assert!((seen - drained as f64 / 1e6).abs() < 0.001);
    }
    let first = &records[1 + 3];
    assert_eq!(first[col("label")], "exec \"kill -HUP\", then wait");
    assert_eq!(first[col("kind")], "restart");
    assert_eq!(first[col("mode")], "restart");
    assert_eq!(first[col("trial")], "");
    let failed = &records[1 + 5];
    assert_eq!(failed[col("ok")], "false");
    assert_eq!(failed[col("error")], "timed out,\nno ready");
    assert_eq!(records[1 + 1_000][col("trial")], "2");
    let a = &r.cases[0].actions[0];
    let row = &records[1];
    assert_eq!(
        row[col("kernel")],
        format!("TcpExtListenDrops=0;TcpEstabResets={}", a.failures[0].count)
    );
    assert_eq!(row[col("old_pids")], "10000");
    assert_eq!(row[col("new_pids")], "10001");
    assert_eq!(row[col("lost_after_forwarding")], "0");
}

#[test]
fn the_fixtures_actions_are_listed_and_a_run_without_actions_has_only_the_header() {
    let fixture = support::fixture();
    let text = String::from_utf8(ActionsCsvExporter.render(&fixture).unwrap()).unwrap();
    let records = parse(&text);
    let total: usize = fixture.cases.iter().map(|c| c.actions.len()).sum();
    assert_eq!(records.len() - 1, total);
    assert!(text.starts_with("case,trial,index,kind,mode,label,trigger_ms,"));
    let mut none = fixture;
    for c in &mut none.cases {
        c.actions.clear();
    }
    let text = String::from_utf8(ActionsCsvExporter.render(&none).unwrap()).unwrap();
    assert_eq!(parse(&text).len(), 1);
}
