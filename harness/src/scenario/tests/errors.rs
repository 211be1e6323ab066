//! Each kind of validation error names the file, line:col and field.

use std::path::Path;

use crate::scenario::parse_str;

const HEAD: &str = r#"
[load]
concurrency = 10
requests = 1000
"#;

/// Validates `HEAD + body` and returns the error lines.
fn errors(body: &str) -> Vec<String> {
    let src = format!("{HEAD}{body}");
    match parse_str(Path::new("dir/t.toml"), &src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

/// Asserts one error line starts with `dir/t.toml:LINE:COL: FIELD: ` and contains `text`.
/// Lines are counted in the body (HEAD has 4 lines before it).
#[track_caller]
fn assert_error(errs: &[String], line: usize, col: usize, field: &str, text: &str) {
    let prefix = format!("dir/t.toml:{}:{col}: {field}: ", line + 4);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&prefix) && e.contains(text)),
        "no error `{prefix}...{text}...` in:\n{}",
        errs.join("\n")
    );
}

#[test]
fn syntax_error_has_a_position() {
    let errs = errors("[[case]]\nname = \"a\"\nactions = [\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("dir/t.toml:"), "{errs:?}");
}

#[test]
fn unknown_fields_are_errors() {
    let errs = errors("[[case]]\nname = \"a\"\nexpekt = { failed = 0 }\n");
    assert_error(
        &errs,
        3,
        1,
        "case[0].expekt",
        "unknown field `expekt`, did you mean `expect`? ([[case]] takes: name, description, load, \
         proxy, actions, expect, repeat)",
    );
    let errs = errors(
        "[[case]]\nname = \"a\"\nactions = [{ at = \"1s\", do = \"restart\", mod = \"x\" }]\n",
    );
    assert_error(
        &errs,
        3,
        41,
        "case[0].actions[0].mod",
        "unknown field `mod`, did you mean `mode`?",
    );
}

#[test]
fn wrong_types_are_errors() {
    let errs = errors("[origin]\nbody_bytes = \"big\"\n[[case]]\nname = \"a\"\n");
    assert_error(
        &errs,
        2,
        14,
        "origin.body_bytes",
        "expected a whole number, found \"big\" (a string)",
    );
}

#[test]
fn every_field_error_of_the_file_is_reported_in_one_go_in_the_scenarios_words() {
    let src = concat!(
        "[load]\n",
        "concurency = 10\n",
        "requests = \"many\"\n",
        "keep_alive = \"yes\"\n",
        "timeout = 10\n",
        "[[case]]\n",
        "name = \"a\"\n",
        "actions = [{ evry = \"1s\", do = \"restart\" }, \"restart\"]\n",
        "expect = { faild = 0 }\n",
        "[[case]]\n",
        "name = 2\n",
        "[case.load]\n",
        "rate = \"fast\"\n",
    );
    let errs: Vec<String> = match parse_str(Path::new("s.toml"), src) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    };
    assert_eq!(
        errs,
        [
            "s.toml:2:1: load.concurency: unknown field `concurency`, did you mean `concurrency`? \
             ([load] takes: concurrency, requests, duration, rate, keep_alive, timeout, path, bucket, \
             method, body, body_file, content_type, headers, request, think_time, retry, tls, \
             tls_resume, tls_version, http2, streams, retry_refused, kind, \
             message_interval, message_bytes, message_timeout, reconnect_delay)",
            "s.toml:3:12: load.requests: expected a whole number, found \"many\" (a string)",
            "s.toml:4:14: load.keep_alive: expected true or false, found \"yes\" (a string)",
            "s.toml:5:11: load.timeout: expected a duration like \"10s\" or \"500ms\" (in quotes), \
             found 10 (a whole number)",
            "s.toml:8:14: case[0].actions[0].evry: unknown field `evry`, did you mean `every`? (an \
             action like { at = \"1s\", do = \"restart\" } takes: at, every, count, start, \
             after_requests, do, mode, variant, signal, target, command, timeout, key, value, restart, pid_file, pid_command)",
            "s.toml:8:45: case[0].actions[1]: expected a table (an action like { at = \"1s\", do = \
             \"restart\" }), found \"restart\" (a string)",
            "s.toml:9:20: case[0].expect.faild: unknown metric \"faild\" (did you mean \"failed\"?); \
             known: failed, failed_ratio, ok, not_started, failed_on_reused, rps, ok_rps, a failure \
             class (connect_refused, reset, truncated, ...), ab_connect/ab_receive/ab_length/\
             ab_exceptions/ab_write_errors/ab_non_2xx, p50_ms/p90_ms/p99_ms/p999_ms/max_ms/mean_ms, \
             failed_retryable, failed_not_retryable, retries, failed.<METHOD> (failed.POST, ...), \
             per_reload.failed, per_reload.<class>, per_reload.failed.<METHOD>, reload_failed, reload_time_ms, p99_reload_ratio, lost_after_forwarding, ledger_balanced, \
             tls_failed, tls_resumed_ratio, per_reload.tls_resumed_ratio, handshake_p99_ms, \
             goaway, per_reload.goaway, goaway_refused, stream_reset, stream_lost, ws_cut, \
             ws_closed, ws_failed, messages_lost, per_reload.<ws count> (per_reload.ws_cut, ...), \
             reconnect_p99_ms, old_generations_max, messages_lost_per_close",
            "s.toml:11:8: case[1].name: expected a string in quotes, found 2 (a whole number)",
            "s.toml:13:8: case[1].load.rate: expected a number, found \"fast\" (a string)",
        ]
    );
}

#[test]
fn a_misspelt_table_is_named_with_its_near_miss() {
    let errs = errors("[[cases]]\nname = \"a\"\n");
    assert_error(
        &errs,
        1,
        3,
        "cases",
        "unknown field `cases`, did you mean `case`?",
    );
    let errs = errors("[[case]]\nname = \"a\"\n[case.lod]\nrate = 1\n");
    assert_error(&errs, 3, 7, "case[0].lod", "did you mean `load`?");
}

#[test]
fn bad_durations_name_the_action_field() {
    let errs = errors("[[case]]\nname = \"a\"\nactions = [{ every = \"1x\", do = \"restart\" }]\n");
    assert_error(&errs, 3, 22, "case[0].actions[0].every", "bad duration");
}

#[test]
fn unknown_action_and_mode_and_missing_trigger() {
    let errs = errors(concat!(
        "[[case]]\nname = \"a\"\n",
        "actions = [{ at = \"1s\", do = \"reboot\" },\n",
        "  { at = \"1s\", do = \"reload\", mode = \"graceful\" },\n",
        "  { do = \"restart\" },\n",
        "  { at = \"1s\", do = \"reload\" },\n",
        "  { at = \"1s\", do = \"reload\", mode = \"restart\" },\n",
        "  { at = \"1s\", do = \"reload\", variant = \"sf\" }]\n",
    ));
    assert_error(
        &errs,
        3,
        30,
        "case[0].actions[0].do",
        "unknown action \"reboot\"",
    );
    assert_error(
        &errs,
        4,
        38,
        "case[0].actions[1].mode",
        "unknown reload mode",
    );
    assert_error(&errs, 5, 3, "case[0].actions[2].at", "exactly one of");
    assert_error(&errs, 6, 3, "case[0].actions[3].mode", "needs `mode`");
    assert_error(&errs, 7, 38, "case[0].actions[4].mode", "do = \"restart\"");
    assert_error(
        &errs,
        8,
        41,
        "case[0].actions[5].variant",
        "reference proxy takes `mode`",
    );
    assert_eq!(errs.len(), 6, "{errs:#?}");
}

#[test]
fn fields_of_another_action_kind_are_errors() {
    let errs = errors(
        "[[case]]\nname = \"a\"\nactions = [{ at = \"1s\", do = \"restart\", signal = \"HUP\" }]\n",
    );
    assert_error(
        &errs,
        3,
        50,
        "case[0].actions[0].signal",
        "not a field of do = \"restart\"",
    );
    let errs = errors(
        "[[case]]\nname = \"a\"\nactions = [{ at = \"1s\", do = \"signal\", signal = \"WAKE\" }]\n",
    );
    assert_error(&errs, 3, 49, "case[0].actions[0].signal", "unknown signal");
    let errs =
        errors("[[case]]\nname = \"a\"\nactions = [{ at = \"1s\", count = 2, do = \"kill\" }]\n");
    assert_error(
        &errs,
        3,
        33,
        "case[0].actions[0].count",
        "only with `every`",
    );
}

#[test]
fn unknown_metric_is_an_invalid_scenario() {
    let errs = errors("[[case]]\nname = \"a\"\nexpect = { failed = 0, fails = \"< 3\" }\n");
    assert_error(
        &errs,
        3,
        32,
        "case[0].expect.fails",
        "unknown metric \"fails\"",
    );
    assert_eq!(errs.len(), 1);
}

#[test]
fn bad_condition_and_reload_metric_without_reloads() {
    let errs = errors(concat!(
        "[[case]]\nname = \"a\"\n",
        "expect = { failed = \"about 3\", per_reload.failed = \"<= 1\", reload_time_ms = \"< 100\" }\n",
    ));
    assert_error(&errs, 3, 21, "case[0].expect.failed", "bad condition");
    assert_error(
        &errs,
        3,
        32,
        "case[0].expect.per_reload.failed",
        "needs a restart, reload or kill",
    );
    assert_error(
        &errs,
        3,
        77,
        "case[0].expect.reload_time_ms",
        "needs a restart, reload or kill",
    );
}

#[test]
fn duplicate_and_missing_case_names() {
    let errs =
        errors("[[case]]\nname = \"a\"\n[[case]]\nname = \"a\"\n[[case]]\ndescription = \"x\"\n");
    assert_error(&errs, 4, 8, "case[1].name", "duplicate case name");
    assert_error(&errs, 5, 1, "case[2].name", "needs a `name`");
}

#[test]
fn a_scenario_needs_cases_and_a_load_limit() {
    let src = "[load]\nconcurrency = 0\n";
    let e = parse_str(Path::new("t.toml"), src).unwrap_err().to_string();
    assert!(
        e.contains("t.toml:2:15: load.concurrency: must be at least 1"),
        "{e}"
    );
    assert!(e.contains("t.toml:1:1: case: no [[case]]"), "{e}");
    let src = "[[case]]\nname = \"a\"\n";
    let e = parse_str(Path::new("t.toml"), src).unwrap_err().to_string();
    assert!(
        e.contains("t.toml:1:1: case[0].load.requests: the load needs a limit"),
        "{e}"
    );
}

#[test]
fn a_missing_limit_is_reported_once_at_the_scenario_load() {
    let src = "[load]\nconcurrency = 1\n[[case]]\nname = \"a\"\n[[case]]\nname = \"b\"\n";
    let e = parse_str(Path::new("t.toml"), src).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert!(
        e.to_string()
            .starts_with("t.toml:1:1: load.requests: the load needs a limit"),
        "{e}"
    );
}

#[test]
fn case_load_overrides_are_merged_and_checked() {
    let ok = parse_str(
        Path::new("t.toml"),
        &format!(
            "{HEAD}[[case]]\nname = \"a\"\n[case.load]\nkeep_alive = true\nduration = \"5s\"\nrate = 5000\n"
        ),
    )
    .unwrap();
    let l = &ok.cases[0].load;
    assert!(l.keep_alive);
    assert_eq!((l.concurrency, l.requests), (10, Some(1000)));
    assert_eq!(l.duration, Some(std::time::Duration::from_secs(5)));
    assert_eq!(l.rate, Some(5000.0));
    assert_eq!(
        (l.path.as_str(), l.timeout),
        ("/", std::time::Duration::from_secs(10))
    );
    assert_eq!(ok.load.rate, None);
    let errs = errors("[[case]]\nname = \"a\"\n[case.load]\npath = \"x\"\nrate = -1\n");
    assert_error(&errs, 4, 8, "case[0].load.path", "must start with `/`");
    assert_error(&errs, 5, 8, "case[0].load.rate", "above 0");
}

#[test]
fn triggers_that_never_fire_are_errors() {
    let errs =
        errors("[[case]]\nname = \"a\"\nactions = [{ after_requests = 1000, do = \"restart\" }]\n");
    assert_error(
        &errs,
        3,
        31,
        "case[0].actions[0].after_requests",
        "never fires",
    );
    let errs = errors("[[case]]\nname = \"a\"\n[case.load]\nrequests = 0\n");
    assert_error(&errs, 4, 12, "case[0].load.requests", "at least 1");
    let src = "[load]\nduration = \"2s\"\n[[case]]\nname = \"a\"\nactions = [{ at = \"3s\", do = \"kill\" }]\n";
    let e = parse_str(Path::new("t.toml"), src).unwrap_err().to_string();
    assert!(
        e.contains(
            "t.toml:5:19: case[0].actions[0].at: never fires: first at 3s, the load lasts 2s"
        ),
        "{e}"
    );
}

#[test]
fn master_worker_cannot_mix_with_other_modes() {
    let errs = errors(concat!(
        "[[case]]\nname = \"a\"\n",
        "actions = [{ at = \"1s\", do = \"reload\", mode = \"master-worker\" },\n",
        "  { at = \"2s\", do = \"reload\", mode = \"fd-pass\" }]\n",
    ));
    assert_error(&errs, 4, 3, "case[0].actions", "master-worker");
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let errs = errors(concat!(
        "[origin]\ndelay = \"soon\"\n",
        "[[case]]\nname = \"a\"\nexpect = { nope = 1 }\n",
        "[[case]]\nname = \"b\"\nactions = [{ every = \"0s\", do = \"restart\" }]\n",
    ));
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_error(&errs, 2, 9, "origin.delay", "bad duration");
    assert_error(&errs, 5, 19, "case[0].expect.nope", "unknown metric");
    assert_error(&errs, 8, 22, "case[1].actions[0].every", "more than zero");
}

/// A load of `fields` (one per line) in `[load]` of a one-case scenario.
fn load_errors(fields: &str) -> Vec<String> {
    let src = format!("[load]\n{fields}\n[[case]]\nname = \"a\"\n");
    match parse_str(Path::new("t.toml"), &src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

#[test]
fn the_load_generators_limits_are_scenario_errors_with_a_position() {
    let cases = [
        (
            "concurrency = 1000000000\nrequests = 10",
            "t.toml:2:15: load.concurrency: must be at most 1000000",
        ),
        (
            "requests = 10\nbucket = \"2h\"",
            "t.toml:3:10: load.bucket: must be at most 1h",
        ),
        (
            "requests = 10\npath = \"/a b\"",
            "t.toml:3:8: load.path: path contains whitespace or control characters",
        ),
    ];
    for (fields, want) in cases {
        let errs = load_errors(fields);
        assert_eq!(errs, vec![want.to_owned()], "for {fields:?}");
    }
}

#[test]
fn a_case_load_over_the_limit_names_the_case_field() {
    let errs = errors("[[case]]\nname = \"a\"\nload = { concurrency = 2000000 }\n");
    assert_error(
        &errs,
        3,
        24,
        "case[0].load.concurrency",
        "must be at most 1000000",
    );
}

#[test]
fn an_origin_body_over_one_gib_is_a_scenario_error() {
    let errs = errors("[origin]\nbody_bytes = 1_000_000_000_000\n[[case]]\nname = \"a\"\n");
    assert_error(
        &errs,
        2,
        14,
        "origin.body_bytes",
        "must be at most 1073741824",
    );
}

#[test]
fn a_case_name_with_a_newline_is_refused() {
    // It heads tables and sections of report.md: a newline would break them.
    let errs = errors("[[case]]\nname = \"a\\n\\n# ok\"\n");
    assert_error(&errs, 2, 8, "case[0].name", "must be one line");
}

#[test]
fn a_flood_of_errors_is_cut_at_a_hundred_with_a_count_of_the_rest() {
    let body: String = (0..250).map(|i| format!("junk{i} = 1\n")).collect();
    let errs = errors(&body);
    assert_eq!(errs.len(), 101, "{}", errs.join("\n"));
    assert!(errs[100].contains("and 150 more errors"), "{}", errs[100]);
}

#[test]
fn a_flood_of_errors_of_meaning_is_cut_at_a_hundred_too() {
    let body: String = (0..150)
        .map(|_| "[[case]]\nname = \"\"\n".to_owned())
        .collect();
    let errs = errors(&body);
    assert_eq!(errs.len(), 101, "{}", errs.join("\n"));
    assert!(errs[100].contains("and 50 more errors"), "{}", errs[100]);
    assert!(
        errs[0].starts_with("dir/t.toml:6:8: case[0].name: "),
        "{}",
        errs[0]
    );
}

#[test]
fn tls_keys_are_read_and_misplaced_or_bad_ones_are_errors() {
    let src = r#"
[load]
requests = 10
tls = true
tls_version = "1.3"
[proxy]
share_ticket_keys = false
ticket_keys_file = true
[[case]]
name = "a"
[[case]]
name = "b"
load = { tls_resume = false }
proxy = { share_ticket_keys = true, ticket_keys_file = "keys/t.key" }
"#;
    let sc = parse_str(Path::new("dir/t.toml"), src).unwrap();
    let tls = |i: usize| sc.cases[i].load.tls.clone().unwrap();
    assert!(tls(0).resume);
    assert_eq!(tls(0).version, Some(reloadbench_loadgen::TlsVersion::Tls13));
    assert!(!tls(1).resume);
    let proxy = |i: usize| match &sc.cases[i].proxy {
        crate::scenario::ProxySpec::Reference(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert!(!proxy(0).share_ticket_keys);
    assert_eq!(
        proxy(0).ticket_keys_file,
        Some(crate::scenario::TicketKeysFile::Generated)
    );
    assert!(proxy(1).share_ticket_keys);
    match proxy(1).ticket_keys_file {
        Some(crate::scenario::TicketKeysFile::Path(p)) => assert!(p.ends_with("dir/keys/t.key")),
        other => panic!("{other:?}"),
    }
    assert!(sc.load.tls.is_some());

    let errs = errors("tls_version = \"1.4\"\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 1, 15, "load.tls_version", "only with `tls = true`");
    let errs = errors("tls = true\ntls_version = \"1.4\"\n[[case]]\nname = \"a\"\n");
    assert_error(
        &errs,
        2,
        15,
        "load.tls_version",
        "unknown version \"1.4\" (expected \"1.2\" or \"1.3\")",
    );
    let errs = errors("[[case]]\nname = \"a\"\nproxy = { share_ticket_keys = false }\n");
    assert_error(&errs, 3, 9, "case[0].proxy", "need a TLS load");
    let errs = errors("tls = true\n[proxy]\nticket_keys_file = 3\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 3, 20, "proxy.ticket_keys_file", "must be true");
    let errs = errors(
        "[proxy]\nkind = \"command\"\nbinary = \"x\"\nstart = \"x\"\nshare_ticket_keys = true\n[[case]]\nname = \"a\"\n",
    );
    assert_error(
        &errs,
        5,
        21,
        "proxy.share_ticket_keys",
        "only for kind = \"reference\"",
    );
}

#[test]
fn http2_keys_are_read_passed_to_loadgen_and_misplaced_or_bad_ones_are_errors() {
    let src = r#"
[load]
requests = 10
concurrency = 4
http2 = true
[[case]]
name = "a"
load = { streams = 10 }
[[case]]
name = "b"
load = { retry_refused = true, streams = 2 }
[[case]]
name = "c"
load = { http2 = false }
"#;
    let sc = parse_str(Path::new("dir/t.toml"), src).unwrap();
    let h2 = |i: usize| sc.cases[i].load.http2;
    assert_eq!(
        h2(0),
        Some(crate::scenario::LoadH2 {
            streams: 10,
            retry_refused: false
        })
    );
    assert_eq!(
        h2(1),
        Some(crate::scenario::LoadH2 {
            streams: 2,
            retry_refused: true
        })
    );
    assert_eq!(h2(2), None);
    // HTTP/2 keeps its connections.
    assert!(sc.cases[0].load.keep_alive && !sc.cases[2].load.keep_alive);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 8080));
    let c = sc.cases[1].load.loadgen_config(addr, None).unwrap();
    assert!(c.h2 && c.streams == 2 && c.retry_refused);
    assert_eq!(c.concurrency, 4);
    let c = sc.cases[2].load.loadgen_config(addr, None).unwrap();
    assert!(!c.h2 && c.streams == 1 && !c.retry_refused);

    let errs = errors("streams = 4\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 1, 11, "load.streams", "only with `http2 = true`");
    let errs = errors("[[case]]\nname = \"a\"\nload = { retry_refused = true }\n");
    assert_error(
        &errs,
        3,
        26,
        "case[0].load.retry_refused",
        "only with `http2 = true`",
    );
    let errs = errors("http2 = true\nstreams = 0\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 2, 11, "load.streams", "must be at least 1");
    let errs = errors("http2 = true\nstreams = 100000\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 2, 11, "load.streams", "must be in 1..=");
    let errs = errors("http2 = true\nkeep_alive = false\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 2, 14, "load.keep_alive", "always kept");
    let errs = errors("http2 = true\nretry = \"safe\"\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 2, 9, "load.retry", "retry-refused");
    let errs = errors("http2 = \"yes\"\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 1, 9, "load.http2", "expected true or false");
}
