//! `[load] kind = "websocket" | "stream"`, its WebSocket fields and
//! `[proxy] drain_tunnels`: read, passed to loadgen and refproxy, and every
//! misplaced or bad value an error at its file:line:col.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::scenario::{DrainTunnels, LoadKind, LoadWs, ProxySpec, parse_str};

/// Validates `src` and returns the error lines.
fn errors(src: &str) -> Vec<String> {
    match parse_str(Path::new("dir/t.toml"), src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

/// Asserts one error line is at `LINE:COL`, names `field` and contains `text`.
#[track_caller]
fn assert_error(errs: &[String], line: usize, col: usize, field: &str, text: &str) {
    let prefix = format!("dir/t.toml:{line}:{col}: {field}: ");
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&prefix) && e.contains(text)),
        "no error `{prefix}...{text}...` in:\n{}",
        errs.join("\n")
    );
}

const ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 8080);

#[test]
fn websocket_and_stream_loads_are_read_and_passed_to_loadgen() {
    let src = r#"
[load]
kind = "websocket"
concurrency = 50
duration = "5s"
message_interval = "50ms"
message_bytes = 100
message_timeout = "2s"
reconnect_delay = "10ms"
[proxy]
drain_tunnels = "close"
[[case]]
name = "ws"
[[case]]
name = "ws, defaults"
load = { kind = "websocket", message_interval = "100ms", message_bytes = 64, message_timeout = "1s", reconnect_delay = "0s" }
proxy = { drain_tunnels = "keep" }
[[case]]
name = "stream"
load = { kind = "stream", path = "/stream?seconds=1&interval=100", message_interval = "1s" }
"#;
    // A case's load replaces the scenario's fields one by one, so the
    // stream case must not inherit the WebSocket fields: it is an error.
    let errs = errors(src);
    assert_error(
        &errs,
        7,
        17,
        "case[2].load.message_bytes",
        "only with `kind = \"websocket\"`",
    );
    assert_error(
        &errs,
        20,
        87,
        "case[2].load.message_interval",
        "only with `kind = \"websocket\"`",
    );
    assert_eq!(errs.len(), 4, "{errs:?}");

    let src = r#"
[load]
concurrency = 50
duration = "5s"
[proxy]
drain_tunnels = "close"
[[case]]
name = "ws"
load = { kind = "websocket", message_interval = "50ms", message_bytes = 100, message_timeout = "2s", reconnect_delay = "10ms" }
[[case]]
name = "ws, defaults"
load = { kind = "websocket" }
proxy = { drain_tunnels = "keep" }
[[case]]
name = "stream"
load = { kind = "stream", path = "/stream?seconds=1&interval=100" }
[[case]]
name = "requests"
"#;
    let sc = parse_str(Path::new("dir/t.toml"), src).unwrap();
    let ws = LoadWs {
        message_interval: Duration::from_millis(50),
        message_bytes: 100,
        message_timeout: Duration::from_secs(2),
        reconnect_delay: Duration::from_millis(10),
    };
    assert_eq!(sc.cases[0].load.kind, LoadKind::WebSocket(ws));
    // Without a path, a WebSocket load goes to the origin's echo.
    assert_eq!(sc.cases[0].load.path, "/ws");
    let d = reloadbench_loadgen::WsOptions::default();
    assert_eq!(
        sc.cases[1].load.kind,
        LoadKind::WebSocket(LoadWs {
            message_interval: d.message_interval,
            message_bytes: d.message_bytes as u64,
            message_timeout: d.message_timeout,
            reconnect_delay: d.reconnect_delay,
        })
    );
    assert_eq!(sc.cases[2].load.kind, LoadKind::Stream);
    assert_eq!(sc.cases[3].load.kind, LoadKind::Requests);
    assert_eq!(sc.cases[3].load.path, "/");

    let addr = SocketAddr::from(ADDR);
    let c = sc.cases[0].load.loadgen_config(addr, None).unwrap();
    let o = c.ws.expect("a WebSocket load");
    assert_eq!(
        (
            o.message_interval,
            o.message_bytes,
            o.message_timeout,
            o.reconnect_delay
        ),
        (
            Duration::from_millis(50),
            100,
            Duration::from_secs(2),
            Duration::from_millis(10)
        )
    );
    assert_eq!(c.concurrency, 50);
    assert_eq!(c.duration, Some(Duration::from_secs(5)));
    assert!(c.url.ends_with("/ws") && !c.stream);
    let c = sc.cases[2].load.loadgen_config(addr, None).unwrap();
    assert!(c.stream && c.ws.is_none());
    let c = sc.cases[3].load.loadgen_config(addr, None).unwrap();
    assert!(!c.stream && c.ws.is_none());

    let tunnels = |i: usize| match &sc.cases[i].proxy {
        ProxySpec::Reference(r) => r.drain_tunnels,
        other => panic!("{other:?}"),
    };
    assert_eq!(tunnels(0), DrainTunnels::Close);
    assert_eq!(tunnels(1), DrainTunnels::Keep);
    assert_eq!(tunnels(2), DrainTunnels::Close);
}

#[test]
fn bad_or_misplaced_websocket_fields_are_errors_at_their_position() {
    let errs = errors("[load]\nkind = \"sockets\"\nduration = \"1s\"\n[[case]]\nname = \"a\"\n");
    assert_error(
        &errs,
        2,
        8,
        "load.kind",
        "unknown kind \"sockets\" (expected \"requests\", \"websocket\" or \"stream\")",
    );
    let errs = errors("[load]\nrequests = 5\nmessage_bytes = 64\n[[case]]\nname = \"a\"\n");
    assert_error(
        &errs,
        3,
        17,
        "load.message_bytes",
        "only with `kind = \"websocket\"`",
    );
    // A WebSocket load holds its connections for a duration.
    let errs = errors("[load]\nkind = \"websocket\"\n[[case]]\nname = \"a\"\n");
    assert_error(&errs, 2, 8, "load.duration", "give `duration = \"10s\"`");
    let errs = errors(
        "[load]\nkind = \"websocket\"\nduration = \"1s\"\nrequests = 5\n[[case]]\nname = \"a\"\n",
    );
    assert_error(
        &errs,
        4,
        12,
        "load.requests",
        "not with `kind = \"websocket\"`",
    );
    // WebSockets over HTTP/2: `loadgen --ws --h2` (one WebSocket per connection).
    let sc = parse_str(
        Path::new("dir/t.toml"),
        "[load]\nkind = \"websocket\"\nduration = \"1s\"\nhttp2 = true\n[[case]]\nname = \"a\"\n",
    )
    .unwrap();
    let c = sc.cases[0]
        .load
        .loadgen_config(SocketAddr::from(ADDR), None)
        .unwrap();
    assert!(c.h2 && c.ws.is_some() && c.check().is_ok());
    let errs = errors(
        "[load]\nkind = \"websocket\"\nduration = \"1s\"\nhttp2 = true\nstreams = 2\n[[case]]\nname = \"a\"\n",
    );
    assert!(errs.iter().any(|e| e.contains("streams")), "{errs:?}");
    let errs = errors(
        "[load]\nkind = \"websocket\"\nduration = \"1s\"\nmessage_bytes = 4\n[[case]]\nname = \"a\"\n",
    );
    assert_error(&errs, 4, 17, "load.message_bytes", "must be at least 8");
    let errs = errors(
        "[load]\nkind = \"websocket\"\nduration = \"1s\"\nmessage_interval = \"soon\"\n[[case]]\nname = \"a\"\n",
    );
    assert_error(&errs, 4, 20, "load.message_interval", "");
    // loadgen's own limits, reported at the field they come from.
    let errs = errors(
        "[load]\nkind = \"websocket\"\nduration = \"1s\"\nmessage_interval = \"0s\"\n[[case]]\nname = \"a\"\n",
    );
    assert_error(&errs, 4, 20, "load.message_interval", "");
    let errs = errors(
        "[load]\nkind = \"websocket\"\nduration = \"1s\"\nrate = 10.0\n[[case]]\nname = \"a\"\n",
    );
    assert_error(&errs, 2, 8, "load.kind", "not with a request rate");
    let errs =
        errors("[load]\nrequests = 1\n[proxy]\ndrain_tunnels = \"drop\"\n[[case]]\nname = \"a\"\n");
    assert_error(
        &errs,
        4,
        17,
        "proxy.drain_tunnels",
        "unknown value \"drop\" (expected \"keep\" or \"close\")",
    );
    let errs = errors(
        "[load]\nrequests = 1\n[proxy]\nkind = \"command\"\nbinary = \"x\"\nstart = \"x\"\ndrain_tunnels = \"keep\"\n[[case]]\nname = \"a\"\n",
    );
    assert_error(
        &errs,
        7,
        17,
        "proxy.drain_tunnels",
        "only for kind = \"reference\"",
    );
}
