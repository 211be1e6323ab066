//! Unit tests of config parsing: the full example, defaults, and every error kind.

use std::time::Duration;

use super::*;

fn p(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("proxy.toml"))
}

fn err(text: &str) -> String {
    p(text).unwrap_err().to_string()
}

const FULL: &str = r#"listen = ["127.0.0.1:8080", "127.0.0.1:0"]
origins = ["127.0.0.1:9000", "127.0.0.2:9001"]
control_socket = "/tmp/refproxy.sock"
generation_header = true
[timeouts]
connect = "2s"
header_read = "3s"
idle = "4s"
request = "5s"
body = "9s"
[drain]
deadline = "6s"
idle_close = "700ms"
linger = "300ms"
[reload]
ready_timeout = "8s"
max_old_generations = 2
[limits]
origin_connections = 64
"#;

#[test]
fn full_example_parses() {
    let c = p(FULL).unwrap();
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.listen[0], "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.origins[1], "127.0.0.2:9001".parse().unwrap());
    assert_eq!(c.control_socket, Some(PathBuf::from("/tmp/refproxy.sock")));
    assert!(c.generation_header);
    assert_eq!(c.timeouts.connect, Duration::from_secs(2));
    assert_eq!(c.timeouts.header_read, Duration::from_secs(3));
    assert_eq!(c.timeouts.idle, Duration::from_secs(4));
    assert_eq!(c.timeouts.request, Duration::from_secs(5));
    assert_eq!(c.timeouts.body, Duration::from_secs(9));
    assert_eq!(c.drain.deadline, Duration::from_secs(6));
    assert_eq!(c.drain.idle_close, Duration::from_millis(700));
    assert_eq!(c.drain.linger, Duration::from_millis(300));
    assert_eq!(c.reload.ready_timeout, Duration::from_secs(8));
    assert_eq!(c.reload.max_old_generations, 2);
    assert_eq!(c.limits.origin_connections, 64);
}

#[test]
fn minimal_config_gets_defaults() {
    let c = p("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n").unwrap();
    let expected = Config::new(
        vec!["127.0.0.1:0".parse().unwrap()],
        vec!["127.0.0.1:1".parse().unwrap()],
    );
    assert_eq!(c, expected);
    assert_eq!(c.timeouts.request, Duration::from_secs(30));
    assert_eq!(c.drain.idle_close, Duration::from_secs(1));
    assert_eq!(c.drain.linger, Duration::from_millis(500));
    assert_eq!(c.reload.max_old_generations, 4);
}

#[test]
fn invalid_listen_address_names_file_line_column_and_field() {
    let e = err("origins = [\"127.0.0.1:1\"]\n\nlisten = [\"127.0.0.1:x\"]\n");
    assert_eq!(
        e,
        "proxy.toml:3:11: listen[0]: invalid socket address \"127.0.0.1:x\""
    );
}

#[test]
fn invalid_origin_address_is_indexed() {
    let e = err("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\", \"nope\"]\n");
    assert_eq!(
        e,
        "proxy.toml:2:27: origins[1]: invalid socket address \"nope\""
    );
}

#[test]
fn empty_lists_are_errors() {
    let e = err("listen = []\norigins = [\"127.0.0.1:1\"]\n");
    assert_eq!(
        e,
        "proxy.toml:1:10: listen: must contain at least one address"
    );
    let e = err("listen = [\"127.0.0.1:0\"]\norigins = []\n");
    assert_eq!(
        e,
        "proxy.toml:2:11: origins: must contain at least one address"
    );
}

#[test]
fn missing_required_field_is_an_error() {
    let e = err("listen = [\"127.0.0.1:0\"]\n");
    assert!(e.starts_with("proxy.toml"), "{e}");
    assert!(e.contains("origins: missing field `origins`"), "{e}");
}

#[test]
fn unknown_fields_are_errors_with_their_position() {
    let e = err("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\nlisten_on = 3\n");
    assert!(
        e.starts_with("proxy.toml:3:1: listen_on: unknown field `listen_on`"),
        "{e}"
    );
    let e =
        err("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n[drain]\ngrace = \"1s\"\n");
    assert!(
        e.starts_with("proxy.toml:4:1: drain.grace: unknown field `grace`"),
        "{e}"
    );
}

#[test]
fn wrong_types_are_errors() {
    let e = err("listen = \"127.0.0.1:0\"\norigins = [\"127.0.0.1:1\"]\n");
    assert!(
        e.starts_with("proxy.toml:1:10: listen: invalid type"),
        "{e}"
    );
    let e =
        err("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n[timeouts]\nconnect = 5\n");
    assert!(
        e.starts_with("proxy.toml:4:11: timeouts.connect: invalid type"),
        "{e}"
    );
}

#[test]
fn toml_syntax_errors_have_a_position() {
    let e = err("listen = [\"127.0.0.1:0\"\norigins = [\"127.0.0.1:1\"]\n");
    assert!(e.starts_with("proxy.toml:"), "{e}");
    let ConfigError::Syntax { at, .. } = p("listen = [\n").unwrap_err() else {
        panic!("not a syntax error");
    };
    assert!(at.line_col.is_some());
}

#[test]
fn bad_durations_are_errors() {
    let base = "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n";
    let e = err(&format!("{base}[timeouts]\nrequest = \"soon\"\n"));
    assert!(
        e.starts_with("proxy.toml:4:11: timeouts.request: invalid duration"),
        "{e}"
    );
    assert!(e.ends_with("\"soon\""), "{e}");
    let e = err(&format!("{base}[drain]\nidle_close = \"0s\"\n"));
    assert_eq!(
        e,
        "proxy.toml:4:14: drain.idle_close: duration must be positive, got \"0s\""
    );
    let e = err(&format!("{base}[drain]\nlinger = \"0ms\"\n"));
    assert_eq!(
        e,
        "proxy.toml:4:10: drain.linger: duration must be positive, got \"0ms\""
    );
    let e = err(&format!("{base}[drain]\nlinger = \"a while\"\n"));
    assert!(
        e.starts_with("proxy.toml:4:10: drain.linger: invalid duration"),
        "{e}"
    );
}

#[test]
fn max_old_generations_must_be_at_least_one() {
    let base = "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n";
    let e = err(&format!("{base}[reload]\nmax_old_generations = 0\n"));
    assert!(
        e.starts_with("proxy.toml:4:23: reload.max_old_generations:"),
        "{e}"
    );
    assert!(p(&format!("{base}[reload]\nmax_old_generations = -1\n")).is_err());
}

#[test]
fn duplicate_listen_addresses_are_errors() {
    let e = err("listen = [\"127.0.0.1:80\", \"127.0.0.1:80\"]\norigins = [\"127.0.0.1:1\"]\n");
    assert_eq!(
        e,
        "proxy.toml:1:27: listen[1]: duplicate address 127.0.0.1:80 (first given as listen[0])"
    );
    // Port 0 twice means two different ports.
    assert!(
        p("listen = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n").is_ok()
    );
}

#[test]
fn empty_control_socket_is_an_error() {
    let e = err("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\ncontrol_socket = \"\"\n");
    assert!(
        e.starts_with("proxy.toml:3:18: control_socket: empty path"),
        "{e}"
    );
}

#[test]
fn load_reads_files_and_names_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refproxy.toml");
    std::fs::write(&path, FULL).unwrap();
    assert_eq!(load(&path).unwrap(), p(FULL).unwrap());
    let missing = dir.path().join("missing.toml");
    let e = load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn origin_connections_defaults_to_1024_and_must_be_at_least_1() {
    let c = p("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n").unwrap();
    assert_eq!(c.limits.origin_connections, 1024);
    for bad in ["0", "-1", "4294967296"] {
        let e = err(&format!(
            "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n[limits]\norigin_connections = {bad}\n"
        ));
        assert!(e.starts_with("proxy.toml:4:"), "{e}");
        assert!(e.contains("limits.origin_connections"), "{e}");
    }
}
