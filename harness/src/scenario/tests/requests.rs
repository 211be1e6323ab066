//! `[load]` request keys: method, body / body_file, content_type, headers,
//! the `[[load.request]]` mix, think_time and retry, per case too; and the
//! errors of each, naming the file, the field and the entry.

use std::path::Path;
use std::time::Duration;

use reloadbench_loadgen::RetryPolicy;

use crate::scenario::parse_str;

/// Writes `src` as `t.toml` next to a 4 KiB `bodies/4k.bin` in a temp dir
/// and validates it.
fn parse_with_body_file(
    src: &str,
) -> (tempfile::TempDir, Result<crate::scenario::Scenario, String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bodies")).unwrap();
    std::fs::write(dir.path().join("bodies/4k.bin"), vec![b'x'; 4096]).unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, src).unwrap();
    let r = crate::scenario::load(&file).map_err(|e| e.to_string());
    (dir, r)
}

const MIX: &str = r#"
[load]
concurrency = 4
requests = 100
keep_alive = true
think_time = "50ms"
retry = "both"
headers = { "X-Run" = "race" }

[[load.request]]
weight = 80
method = "GET"
path = "/page"

[[load.request]]
weight = 20
method = "POST"
path = "/upload"
body_file = "bodies/4k.bin"
content_type = "application/octet-stream"
headers = { "X-Kind" = "upload" }

[[case]]
name = "mix"
expect = { "failed.POST" = 0, failed_not_retryable = 0, retries = "<= 5" }

[[case]]
name = "one POST kind"
load = { method = "PUT", body = "hello", content_type = "text/plain", retry = "safe", think_time = "0s" }
"#;

#[test]
fn mix_body_file_headers_think_time_and_retry_reach_the_load() {
    // The second case sets method and body over a scenario mix: refused
    // (a mix sets them per entry); so a valid file overrides the mix itself.
    let src = MIX.replace(
        "load = { method = \"PUT\"",
        "load.request = [{ method = \"PUT\", body = \"hello\", content_type = \"text/plain\" }]\nload2 = { method = \"PUT\"",
    );
    let src = src.replace("load2 = ", "#");
    let (_dir, s) = parse_with_body_file(&src);
    let s = s.unwrap();
    let l = &s.cases[0].load;
    assert_eq!(l.think_time, Some(Duration::from_millis(50)));
    assert_eq!(l.retry, RetryPolicy::Both);
    assert_eq!(l.headers, vec![("X-Run".to_owned(), "race".to_owned())]);
    assert_eq!(l.mix.len(), 2);
    assert_eq!((l.mix[0].weight, l.mix[0].method.as_str()), (80, "GET"));
    assert_eq!(l.mix[0].path.as_deref(), Some("/page"));
    assert_eq!(l.mix[0].body, None);
    let post = &l.mix[1];
    assert_eq!((post.weight, post.method.as_str()), (20, "POST"));
    assert_eq!(post.body.as_deref(), Some(&vec![b'x'; 4096][..]));
    assert_eq!(
        post.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        post.headers,
        vec![("X-Kind".to_owned(), "upload".to_owned())]
    );
    assert_eq!(l.methods(), vec!["GET", "POST"]);
    let exprs: Vec<&str> = s.cases[0].expect.iter().map(|e| e.expr.as_str()).collect();
    assert_eq!(
        exprs,
        [
            "failed.POST = 0",
            "failed_not_retryable = 0",
            "retries <= 5"
        ]
    );
    // The case's own list replaces the scenario's.
    let put = &s.cases[1].load;
    assert_eq!(put.mix.len(), 1);
    assert_eq!(put.mix[0].method, "PUT");
    assert_eq!(put.mix[0].body.as_deref(), Some(&b"hello"[..]));
    // And the loadgen configuration carries all of it.
    let c = l
        .loadgen_config(std::net::SocketAddr::from(([127, 0, 0, 1], 80)), None)
        .unwrap();
    assert_eq!(c.mix, l.mix);
    assert_eq!(c.think_time, Some(Duration::from_millis(50)));
    assert_eq!(c.retry, RetryPolicy::Both);
    assert_eq!(c.headers, l.headers);
}

#[test]
fn one_kind_method_body_and_per_case_overrides() {
    let src = r#"
[load]
requests = 10
method = "POST"
body = "a=1"
content_type = "application/x-www-form-urlencoded"

[[case]]
name = "post"

[[case]]
name = "put from a file"
load = { method = "PUT", body_file = "bodies/4k.bin", retry = "safe", think_time = "0s" }
"#;
    let (_dir, s) = parse_with_body_file(src);
    let s = s.unwrap();
    let a = &s.cases[0].load;
    assert_eq!(a.method, "POST");
    assert_eq!(a.body.as_deref(), Some(&b"a=1"[..]));
    assert_eq!(
        a.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert!(a.mix.is_empty());
    assert_eq!((a.retry, a.think_time), (RetryPolicy::None, None));
    let b = &s.cases[1].load;
    assert_eq!(b.method, "PUT");
    // A case's body_file replaces the scenario's inline body.
    assert_eq!(b.body.as_ref().map(Vec::len), Some(4096));
    assert_eq!((b.retry, b.think_time), (RetryPolicy::Safe, None));
    let c = b
        .loadgen_config(std::net::SocketAddr::from(([127, 0, 0, 1], 80)), None)
        .unwrap();
    assert_eq!(
        (c.method.as_str(), c.body.as_ref().map(Vec::len)),
        ("PUT", Some(4096))
    );
}

/// The error lines of `src` validated as `dir/t.toml` (no files next to it).
fn errors(src: &str) -> Vec<String> {
    match parse_str(Path::new("dir/t.toml"), src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

#[track_caller]
fn has(errs: &[String], prefix: &str, text: &str) {
    assert!(
        errs.iter()
            .any(|e| e.starts_with(prefix) && e.contains(text)),
        "no error `{prefix}...{text}...` in:\n{}",
        errs.join("\n")
    );
}

#[test]
fn bad_request_fields_are_named_with_their_entry() {
    let src = r#"[load]
requests = 10
think_time = "soon"
retry = "always"
headers = { "X Bad" = "v" }
[[load.request]]
weight = 0
method = "post"
[[load.request]]
path = "upload"
content_type = "text/plain"
[[load.request]]
body = "x"
body_file = "b.bin"
[[load.request]]
body_file = "missing.bin"
[[case]]
name = "a"
"#;
    let errs = errors(src);
    has(
        &errs,
        "dir/t.toml:3:14: load.think_time: ",
        "bad duration \"soon\"",
    );
    has(
        &errs,
        "dir/t.toml:4:9: load.retry: ",
        "unknown retry policy \"always\"",
    );
    has(
        &errs,
        "dir/t.toml:5:23: load.headers.X Bad: ",
        "bad header name",
    );
    has(
        &errs,
        "dir/t.toml:7:10: load.request[0].weight: ",
        "must be a whole number from 1",
    );
    has(
        &errs,
        "dir/t.toml:8:10: load.request[0].method: ",
        "bad method \"post\": write an upper-case token",
    );
    has(
        &errs,
        "dir/t.toml:10:8: load.request[1].path: ",
        "must start with `/`",
    );
    has(
        &errs,
        "dir/t.toml:11:16: load.request[1].content_type: ",
        "only with a body",
    );
    has(
        &errs,
        "dir/t.toml:14:13: load.request[2].body_file: ",
        "give `body` or `body_file`, not both",
    );
    has(
        &errs,
        "dir/t.toml:16:13: load.request[3].body_file: ",
        "missing.bin (relative to the scenario file)",
    );
}

#[test]
fn framing_headers_and_files_that_are_not_bodies_are_refused() {
    let src = r#"[load]
requests = 10
headers = { "Content-Length" = "0" }
[[load.request]]
headers = { "transfer-encoding" = "chunked" }
[[load.request]]
method = "POST"
body_file = "/dev/zero"
[[case]]
name = "a"
"#;
    let errs = errors(src);
    has(
        &errs,
        "dir/t.toml:3:32: load.headers.Content-Length: ",
        "Content-Length is written from the body",
    );
    has(
        &errs,
        "dir/t.toml:5:35: load.request[0].headers.transfer-encoding: ",
        "is written from the body",
    );
    has(
        &errs,
        "dir/t.toml:8:13: load.request[1].body_file: ",
        "not a regular file",
    );
}

#[test]
fn unknown_entry_fields_and_wrong_types_are_shape_errors() {
    let errs = errors(
        "[load]\nrequests = 1\nheaders = { A = 1 }\n[[load.request]]\nwieght = 2\n[[case]]\nname = \"a\"\n",
    );
    has(
        &errs,
        "dir/t.toml:3:17: load.headers.A: ",
        "expected a string in quotes, found 1",
    );
    has(
        &errs,
        "dir/t.toml:5:1: load.request[0].wieght: ",
        "unknown field `wieght`, did you mean `weight`? ([[load.request]] takes: weight, method",
    );
}

#[test]
fn a_mix_with_a_load_level_method_or_body_is_refused() {
    let errs = errors(
        "[load]\nrequests = 1\nmethod = \"POST\"\nbody = \"x\"\n[[load.request]]\nmethod = \"GET\"\n[[case]]\nname = \"a\"\n",
    );
    has(
        &errs,
        "dir/t.toml:3:10: load.method: ",
        "with [[load.request]] entries each entry sets its own method",
    );
    has(
        &errs,
        "dir/t.toml:4:8: load.body: ",
        "each entry sets its own body",
    );
    // Per case: the entry is named under the case.
    let errs = errors(
        "[load]\nrequests = 1\n[[case]]\nname = \"a\"\n[[case.load.request]]\nweight = -1\n",
    );
    has(
        &errs,
        "dir/t.toml:6:10: case[0].load.request[0].weight: ",
        "found -1",
    );
}

#[test]
fn think_time_with_a_rate_is_refused_by_loadgens_rule() {
    let errs =
        errors("[load]\nrequests = 1\nrate = 100\nthink_time = \"50ms\"\n[[case]]\nname = \"a\"\n");
    has(
        &errs,
        "dir/t.toml:4:14: load.think_time: ",
        "only in a closed loop",
    );
}

#[test]
fn per_method_expectations_must_name_a_method_the_case_sends() {
    let errs =
        errors("[load]\nrequests = 1\n[[case]]\nname = \"a\"\nexpect = { \"failed.POST\" = 0 }\n");
    has(
        &errs,
        "dir/t.toml:5:28: case[0].expect.failed.POST: ",
        "counts POST requests, and this case sends none (it sends GET)",
    );
    // A dotted key arrives as a nested table; lower case gets a hint.
    let errs = errors(
        "[load]\nrequests = 1\nmethod = \"POST\"\n[[case]]\nname = \"a\"\nexpect = { failed.post = 0 }\n",
    );
    has(
        &errs,
        "dir/t.toml:6:12: case[0].expect.failed.post: ",
        "unknown metric \"failed.post\" (did you mean \"failed.POST\"?)",
    );
    let src = "[load]\nrequests = 1\nmethod = \"POST\"\n[[case]]\nname = \"a\"\nactions = [{ at = \"1s\", do = \"restart\" }]\nexpect = { failed.POST = 0, per_reload.failed.POST = \"<= 1\" }\n";
    let s = parse_str(Path::new("dir/t.toml"), src).unwrap();
    let exprs: Vec<&str> = s.cases[0].expect.iter().map(|e| e.expr.as_str()).collect();
    assert_eq!(exprs, ["failed.POST = 0", "per_reload.failed.POST <= 1"]);
    // An empty table names no metric: refused, not an expectation silently dropped.
    let errs = errors("[load]\nrequests = 1\n[[case]]\nname = \"a\"\nexpect = { failed = {} }\n");
    has(
        &errs,
        "dir/t.toml:5:21: case[0].expect.failed: ",
        "an empty table sets no expectation",
    );
}
