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
tunnels = "close"
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
    assert_eq!(c.drain.tunnels, TunnelPolicy::Close);
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

#[test]
fn tunnels_defaults_to_4096_and_must_be_at_least_1() {
    let c = p("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n").unwrap();
    assert_eq!(c.limits.tunnels, 4096);
    let c = p("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n[limits]\ntunnels = 8\n")
        .unwrap();
    assert_eq!(c.limits.tunnels, 8);
    for bad in ["0", "-1", "4294967296"] {
        let e = err(&format!(
            "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n[limits]\ntunnels = {bad}\n"
        ));
        assert!(e.contains("limits.tunnels"), "{e}");
    }
}

#[test]
fn min_send_rate_defaults_to_128_per_30s_and_0_turns_it_off() {
    let base = "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n";
    let c = p(base).unwrap();
    assert_eq!(
        (c.limits.min_send_rate, c.limits.min_send_rate_window),
        (128, Duration::from_secs(30))
    );
    let c = p(&format!(
        "{base}[limits]\nmin_send_rate = 0\nmin_send_rate_window = \"1500ms\"\n"
    ))
    .unwrap();
    assert_eq!(
        (c.limits.min_send_rate, c.limits.min_send_rate_window),
        (0, Duration::from_millis(1500))
    );
    for bad in ["-1", "4294967296", "\"fast\""] {
        let e = err(&format!("{base}[limits]\nmin_send_rate = {bad}\n"));
        assert!(e.starts_with("proxy.toml:4:"), "{e}");
        assert!(e.contains("min_send_rate"), "{e}");
    }
    let e = err(&format!("{base}[limits]\nmin_send_rate = -1\n"));
    assert_eq!(
        e,
        "proxy.toml:4:17: limits.min_send_rate: must be a whole number from 0 to 4294967295, got \"-1\""
    );
    let e = err(&format!("{base}[limits]\nmin_send_rate_window = \"0s\"\n"));
    assert!(
        e.starts_with("proxy.toml:4:24: limits.min_send_rate_window: duration must be positive"),
        "{e}"
    );
    let e = err(&format!("{base}[limits]\nmin_send_rate_window = \"1ms\"\n"));
    assert_eq!(
        e,
        "proxy.toml:4:24: limits.min_send_rate_window: must be at least 1s, got \"1ms\""
    );
}

#[test]
fn http2_keys_parse_and_default() {
    let c = p("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n").unwrap();
    assert_eq!(c.http2, Http2Config::default());
    assert!(!c.http2.enabled);
    assert_eq!((c.http2.max_send_buffer, c.h2_origin_share()), (65536, 64));
    let c = p("listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n[limits]\norigin_connections = 8\n")
        .unwrap();
    assert_eq!(c.h2_origin_share(), 1, "a sixteenth, at least 1");
    let c = p(concat!(
        "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\nhttp2 = true\n",
        "[timeouts]\nh2_ping_interval = \"5s\"\nh2_ping_timeout = \"2s\"\n",
        "[limits]\nh2_max_concurrent_streams = 7\nh2_max_header_list_size = 9000\n",
        "h2_initial_stream_window = 100000\nh2_initial_connection_window = 2147483647\n",
        "h2_max_pending_reset_streams = 5\nh2_max_local_error_reset_streams = 6\n",
        "h2_max_send_buffer = 16384\nh2_max_origin_slots_per_connection = 3\n",
        "h2_premature_reset_window = \"250ms\"\nh2_max_premature_resets = 0\n",
        "h2_address_premature_resets_per_second = 0\nh2_address_premature_resets_burst = 7\n",
    ))
    .unwrap();
    assert_eq!(
        c.http2,
        Http2Config {
            enabled: true,
            max_concurrent_streams: 7,
            max_header_list_size: 9000,
            initial_stream_window: 100_000,
            initial_connection_window: (1 << 31) - 1,
            max_pending_reset_streams: 5,
            max_local_error_reset_streams: 6,
            premature_reset_window: Duration::from_millis(250),
            max_premature_resets: 0,
            address_premature_resets_per_second: 0,
            address_premature_resets_burst: 7,
            max_send_buffer: 16384,
            max_origin_slots_per_connection: Some(3),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(2),
        }
    );
    assert_eq!(c.h2_origin_share(), 3);
}

#[test]
fn premature_reset_keys_default_and_name_themselves_when_bad() {
    let base = "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n";
    let c = p(base).unwrap();
    assert_eq!(c.http2.premature_reset_window, Duration::from_secs(1));
    assert_eq!(c.http2.max_premature_resets, 250);
    let c = p(&format!(
        "{base}[limits]\nh2_premature_reset_window = \"2s\"\nh2_max_premature_resets = 10000\n"
    ))
    .unwrap();
    assert_eq!(
        (c.http2.premature_reset_window, c.http2.max_premature_resets),
        (Duration::from_secs(2), 10_000)
    );
    assert_eq!(
        err(&format!(
            "{base}[limits]\nh2_max_premature_resets = 10001\n"
        )),
        "proxy.toml:4:27: limits.h2_max_premature_resets: must be a whole number from 0 (off) to 10000, got \"10001\""
    );
    // Below 0 and beyond u32 too: the same range is named.
    for bad in ["-1", "4294967296"] {
        assert_eq!(
            err(&format!(
                "{base}[limits]\nh2_max_premature_resets = {bad}\n"
            )),
            format!(
                "proxy.toml:4:27: limits.h2_max_premature_resets: must be a whole number from 0 (off) to 10000, got \"{bad}\""
            )
        );
    }
    // A window under 1ms would turn the guard off silently; 1ms is taken.
    for bad in ["1ns", "999us"] {
        assert_eq!(
            err(&format!(
                "{base}[limits]\nh2_premature_reset_window = \"{bad}\"\n"
            )),
            format!(
                "proxy.toml:4:29: limits.h2_premature_reset_window: must be at least 1ms, got \"{bad}\""
            )
        );
    }
    let c = p(&format!(
        "{base}[limits]\nh2_premature_reset_window = \"1ms\"\n"
    ))
    .unwrap();
    assert_eq!(c.http2.premature_reset_window, Duration::from_millis(1));
    assert_eq!(
        err(&format!(
            "{base}[limits]\nh2_premature_reset_window = \"0ms\"\n"
        )),
        "proxy.toml:4:29: limits.h2_premature_reset_window: duration must be positive, got \"0ms\""
    );
}

#[test]
fn http2_limits_are_checked_with_their_position() {
    let base = "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n";
    for (key, bad) in [
        ("h2_max_concurrent_streams", "0"),
        ("h2_max_header_list_size", "-5"),
        ("h2_initial_stream_window", "2147483648"),
        ("h2_initial_connection_window", "0"),
        ("h2_max_pending_reset_streams", "0"),
        ("h2_max_local_error_reset_streams", "x"),
        ("h2_max_send_buffer", "0"),
        ("h2_max_origin_slots_per_connection", "-1"),
        ("h2_max_premature_resets", "-1"),
        ("h2_max_premature_resets", "10001"),
        ("h2_premature_reset_window", "\"0s\""),
        ("h2_premature_reset_window", "\"soon\""),
        ("h2_premature_reset_window", "5"),
    ] {
        let e = err(&format!("{base}[limits]\n{key} = {bad}\n"));
        assert!(e.starts_with("proxy.toml:4:"), "{e}");
        assert!(e.contains(key), "{e}");
    }
    let e = err(&format!("{base}[timeouts]\nh2_ping_timeout = \"0s\"\n"));
    assert!(e.starts_with("proxy.toml:4:"), "{e}");
    assert!(e.contains("timeouts.h2_ping_timeout"), "{e}");
    let e = err(&format!(
        "{base}[limits]\norigin_connections = 8\nh2_max_send_buffer = 1\n\nh2_max_origin_slots_per_connection = 0\n"
    ));
    assert!(e.starts_with("proxy.toml:7:38:"), "{e}");
    assert!(
        e.contains("limits.h2_max_origin_slots_per_connection"),
        "{e}"
    );
    let e = err(&format!("{base}http2 = \"yes\"\n"));
    assert!(e.starts_with("proxy.toml:3:"), "{e}");
}

/// Certificates and keys for `[tls]` tests, in a temp dir.
mod tls {
    use super::*;

    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Pki {
            let dir = tempfile::tempdir().unwrap();
            let write = |name: &str, not_after: (i32, u8, u8)| {
                let key = rcgen::KeyPair::generate().unwrap();
                let mut params =
                    rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
                let cert = params.self_signed(&key).unwrap();
                std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
                std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem())
                    .unwrap();
            };
            write("good", (2090, 1, 1));
            write("other", (2090, 1, 1));
            write("expired", (2021, 1, 1));
            std::fs::write(dir.path().join("ticket80.key"), [1u8; 80]).unwrap();
            std::fs::write(dir.path().join("ticket10.key"), [1u8; 10]).unwrap();
            Pki { dir }
        }

        /// Parses a config in the pki dir (relative paths resolve there) with `tls` as
        /// the body of its `[tls]` table; the table starts on line 4.
        fn parse(&self, tls: &str) -> Result<Config, ConfigError> {
            let text = format!(
                "listen = [\"127.0.0.1:0\", \"127.0.0.2:0\"]\norigins = [\"127.0.0.1:1\"]\n\n[tls]\n{tls}"
            );
            parse(&text, &self.dir.path().join("proxy.toml"))
        }

        fn err(&self, tls: &str) -> String {
            let e = self.parse(tls).unwrap_err().to_string();
            let dir = format!("{}/", self.dir.path().display());
            e.replace(&dir, "")
        }
    }

    #[test]
    fn a_tls_table_parses_with_defaults_and_names_its_listeners() {
        let pki = Pki::new();
        let c = pki
            .parse("cert = \"good.pem\"\nkey = \"good.key\"\nlisten = [\"127.0.0.2:0\"]\n")
            .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.listeners, Some(vec![1]));
        assert_eq!(t.handshake_timeout, Duration::from_secs(10));
        assert_eq!(t.ticket_key_rotation, Duration::from_secs(12 * 3600));
        assert!(t.share_ticket_keys);
        assert!(t.ticket_keys_file.is_none());
        assert_eq!(t.cert_path, pki.dir.path().join("good.pem"));
        let c = pki
            .parse(
                "cert = \"good.pem\"\nkey = \"good.key\"\nhandshake_timeout = \"2s\"\n\
                 ticket_key_rotation = \"1h\"\nshare_ticket_keys = false\nticket_keys_file = \"ticket80.key\"\n",
            )
            .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.listeners, None, "all listeners by default");
        assert_eq!(t.handshake_timeout, Duration::from_secs(2));
        assert_eq!(t.ticket_key_rotation, Duration::from_secs(3600));
        assert!(!t.share_ticket_keys);
        assert_eq!(t.ticket_keys_file.unwrap().0.len(), 80);
        // The key bytes never show in Debug.
        let shown = format!(
            "{:?}",
            pki.parse("cert = \"good.pem\"\nkey = \"good.key\"\n")
        );
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn an_expired_certificate_is_an_error_at_tls_cert() {
        let e = Pki::new().err("cert = \"expired.pem\"\nkey = \"expired.key\"\n");
        assert!(
            e.starts_with("proxy.toml:5:8: tls.cert: the certificate expired "),
            "{e}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_an_error_at_tls_key() {
        let e = Pki::new().err("cert = \"good.pem\"\nkey = \"other.key\"\n");
        assert_eq!(
            e,
            "proxy.toml:6:7: tls.key: the private key does not match the certificate"
        );
    }

    #[test]
    fn unreadable_or_malformed_files_are_errors_at_their_key() {
        let pki = Pki::new();
        let e = pki.err("cert = \"missing.pem\"\nkey = \"good.key\"\n");
        assert!(
            e.starts_with("proxy.toml:5:8: tls.cert: cannot read missing.pem: "),
            "{e}"
        );
        let e = pki.err("cert = \"good.pem\"\nkey = \"missing.key\"\n");
        assert!(
            e.starts_with("proxy.toml:6:7: tls.key: cannot read missing.key: "),
            "{e}"
        );
        // A key file that holds a certificate, a certificate file that holds a key.
        let e = pki.err("cert = \"good.pem\"\nkey = \"good.pem\"\n");
        assert!(
            e.starts_with("proxy.toml:6:7: tls.key: good.pem: no usable PEM private key"),
            "{e}"
        );
        let e = pki.err("cert = \"good.key\"\nkey = \"good.key\"\n");
        assert!(
            e.starts_with("proxy.toml:5:8: tls.cert: good.key: no usable PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn tls_listen_names_listeners_written_alike_by_index_and_refuses_the_ambiguous_address() {
        let pki = Pki::new();
        let base = "cert = \"good.pem\"\nkey = \"good.key\"\n";
        let text = |listen: &str, tls: &str| {
            format!(
                "listen = [{listen}]\norigins = [\"127.0.0.1:1\"]\n\n[tls]\n{base}listen = [{tls}]\n"
            )
        };
        let path = pki.dir.path().join("proxy.toml");
        let twice = "\"127.0.0.1:0\", \"127.0.0.1:0\", \"127.0.0.2:0\"";
        // By index: exactly the entry meant.
        let cfg = parse(&text(twice, "1"), &path).unwrap();
        assert_eq!(cfg.tls.unwrap().listeners, Some(vec![1]));
        let cfg = parse(&text(twice, "2, \"127.0.0.2:0\", 0"), &path).unwrap();
        assert_eq!(cfg.tls.unwrap().listeners, Some(vec![0, 2]));
        // By an address written twice in `listen`: refused, saying what to write.
        let e = parse(&text(twice, "\"127.0.0.1:0\""), &path)
            .unwrap_err()
            .to_string()
            .replace(&format!("{}/", pki.dir.path().display()), "");
        assert_eq!(
            e,
            "proxy.toml:7:11: tls.listen[0]: ambiguous, written more than once in `listen` (listen[0], listen[1]): write the index of the one meant (e.g. listen = [1]) instead of \"127.0.0.1:0\""
        );
        let e = parse(&text(twice, "3"), &path).unwrap_err().to_string();
        assert!(
            e.contains("tls.listen[0]: not the index of a `listen` entry (0 to 2): \"3\""),
            "{e}"
        );
        let e = parse(&text(twice, "-1"), &path).unwrap_err().to_string();
        assert!(e.contains("(0 to 2): \"-1\""), "{e}");
        let e = parse(&text(twice, ""), &path).unwrap_err().to_string();
        assert!(e.contains("tls.listen: must contain at least one"), "{e}");
    }

    #[test]
    fn tls_listen_ticket_file_and_rotation_are_checked() {
        let pki = Pki::new();
        let base = "cert = \"good.pem\"\nkey = \"good.key\"\n";
        let e = pki.err(&format!("{base}listen = [\"127.0.0.9:0\"]\n"));
        assert_eq!(
            e,
            "proxy.toml:7:11: tls.listen[0]: not one of the `listen` addresses: \"127.0.0.9:0\""
        );
        let e = pki.err(&format!("{base}ticket_keys_file = \"ticket10.key\"\n"));
        assert_eq!(
            e,
            "proxy.toml:7:20: tls.ticket_keys_file: ticket key file must hold 48 or 80 bytes (nginx's format), it holds 10"
        );
        let e = pki.err(&format!("{base}ticket_key_rotation = \"1500ms\"\n"));
        assert_eq!(
            e,
            "proxy.toml:7:23: tls.ticket_key_rotation: must be whole seconds, at least 1s, got \"1500ms\""
        );
        let e = pki.err("cert = \"good.pem\"\n");
        assert!(e.contains("tls.key"), "{e}");
    }

    #[test]
    fn sni_entries_are_checked_like_the_default_certificate() {
        let pki = Pki::new();
        let base = "cert = \"good.pem\"\nkey = \"good.key\"\n";
        let c = pki
            .parse(&format!(
                "{base}[[tls.sni]]\nnames = [\"API.test\", \"*.w.test\"]\ncert = \"other.pem\"\nkey = \"other.key\"\n"
            ))
            .unwrap();
        assert_eq!(c.tls.unwrap().sni[0].names, ["api.test", "*.w.test"]);
        let e = pki.err(&format!(
            "{base}[[tls.sni]]\nnames = [\"a.test\"]\ncert = \"other.pem\"\nkey = \"good.key\"\n"
        ));
        assert_eq!(
            e,
            "proxy.toml:10:7: tls.sni[0].key: the private key does not match the certificate"
        );
        let e = pki.err(&format!(
            "{base}[[tls.sni]]\nnames = [\"a.test\"]\ncert = \"expired.pem\"\nkey = \"expired.key\"\n"
        ));
        assert!(
            e.starts_with("proxy.toml:9:8: tls.sni[0].cert: the certificate expired"),
            "{e}"
        );
        let e = pki.err(&format!(
            "{base}[[tls.sni]]\nnames = [\"a b\"]\ncert = \"other.pem\"\nkey = \"other.key\"\n"
        ));
        assert_eq!(
            e,
            "proxy.toml:8:10: tls.sni[0].names[0]: invalid host name \"a b\""
        );
    }
}

#[test]
fn drain_tunnels_is_keep_or_close() {
    let base = "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n[drain]\n";
    assert_eq!(p(base).unwrap().drain.tunnels, TunnelPolicy::Keep);
    let keep = p(&format!("{base}tunnels = \"keep\"\n")).unwrap();
    assert_eq!(keep.drain.tunnels, TunnelPolicy::Keep);
    let e = err(&format!("{base}tunnels = \"cut\"\n"));
    assert!(e.starts_with("proxy.toml:4:11: drain.tunnels:"), "{e}");
    assert!(e.contains("\"keep\" or \"close\""), "{e}");
}

#[test]
fn address_premature_reset_keys_default_and_name_themselves_when_bad() {
    let base = "listen = [\"127.0.0.1:0\"]\norigins = [\"127.0.0.1:1\"]\n";
    let c = p(base).unwrap();
    assert_eq!(
        (
            c.http2.address_premature_resets_per_second,
            c.http2.address_premature_resets_burst
        ),
        (100, 1000)
    );
    let c = p(&format!(
        "{base}[limits]\nh2_address_premature_resets_per_second = 5\nh2_address_premature_resets_burst = 1\n"
    ))
    .unwrap();
    assert_eq!(
        (
            c.http2.address_premature_resets_per_second,
            c.http2.address_premature_resets_burst
        ),
        (5, 1)
    );
    let rate = err(&format!(
        "{base}[limits]\nh2_address_premature_resets_per_second = -1\n"
    ));
    assert!(
        rate.starts_with("proxy.toml:4:")
            && rate.contains("limits.h2_address_premature_resets_per_second")
            && rate.contains("\"-1\""),
        "{rate}"
    );
    for bad in ["0", "-3", "4294967296"] {
        let burst = err(&format!(
            "{base}[limits]\nh2_address_premature_resets_burst = {bad}\n"
        ));
        assert!(
            burst.starts_with("proxy.toml:4:")
                && burst.contains("limits.h2_address_premature_resets_burst")
                && burst.contains(&format!("\"{bad}\"")),
            "{burst}"
        );
    }
}
