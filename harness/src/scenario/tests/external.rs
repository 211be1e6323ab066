//! `kind = "external"`: the shipped example, what it takes and what it refuses.

use std::path::Path;

use nix::sys::signal::Signal;

use crate::scenario::*;

/// Validates `text` as `dir/t.toml`.
fn parse(text: &str) -> Result<Scenario, String> {
    parse_str(Path::new("/s/t.toml"), text).map_err(|e| e.to_string())
}

const LOAD: &str = "[load]\nconcurrency = 2\nrequests = 100\n";

fn external(p: &ProxySpec) -> &ExternalProxy {
    match p {
        ProxySpec::External(x) => x,
        _ => panic!("not an external server"),
    }
}

#[test]
fn the_shipped_external_scenario_attaches_without_an_origin() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/external.toml");
    let s = load(&path).unwrap();
    assert_eq!(s.origin, OriginSpec::None);
    let x = external(&s.proxy);
    assert_eq!(x.target.url, "http://127.0.0.1:8080/");
    assert_eq!((x.target.port, x.target.tls), (8080, false));
    assert_eq!(x.ready.how, Readiness::Port);
    assert!(s.cases[0].actions.is_empty());
    // On an external server, exec and signal are its reloads.
    let exec = &s.cases[1].actions[0].what;
    assert!(matches!(exec, ActionSpec::ExecReload { .. }), "{exec:?}");
    assert_eq!(exec.kind(), reloadbench_model::run::ActionKind::Reload);
    assert_eq!(
        s.cases[2].actions[0].what.kind(),
        reloadbench_model::run::ActionKind::Reload
    );
    assert_eq!(
        s.cases[2].actions[0].what,
        ActionSpec::SignalPid {
            signal: Signal::SIGHUP,
            pid: PidSource::File("/run/nginx.pid".into()),
        }
    );
    assert_eq!(
        s.cases[2].actions[0].label(),
        "signal HUP (pid in /run/nginx.pid)"
    );
}

#[test]
fn https_takes_the_ca_or_insecure_and_the_target_path_is_the_load_path() {
    let text = format!(
        "{LOAD}tls = true\n[proxy]\nkind = \"external\"\ntarget = \"https://localhost:8443/api\"\n\
         insecure = true\nready = {{ log_file = \"server.log\", log = \"started\" }}\n\
         [origin]\nbody_bytes = 10\n\
         [[case]]\nname = \"a\"\nactions = [{{ at = \"1s\", do = \"signal\", signal = \"USR2\", \
         pid_command = \"pgrep -o srv\" }}]\n"
    );
    let s = parse(&text).unwrap();
    let x = external(&s.cases[0].proxy);
    assert!(x.insecure && x.ca_file.is_none());
    assert_eq!(s.cases[0].load.path, "/api");
    assert!(matches!(
        s.origin,
        OriginSpec::BuiltIn { body_bytes: 10, .. }
    ));
    assert_eq!(
        x.ready.how,
        Readiness::LogFile {
            path: "/s/server.log".into(),
            text: "started".into()
        }
    );
    assert_eq!(
        s.cases[0].actions[0].what,
        ActionSpec::SignalPid {
            signal: Signal::SIGUSR2,
            pid: PidSource::Command(Template::new("pgrep -o srv")),
        }
    );
}

#[test]
fn what_reloadbench_cannot_do_to_a_server_it_did_not_start_is_refused() {
    let proxy = "[proxy]\nkind = \"external\"\ntarget = \"http://127.0.0.1:9/\"\n";
    let case =
        |actions: &str| format!("{LOAD}{proxy}[[case]]\nname = \"a\"\nactions = [{actions}]\n");
    for (actions, want) in [
        (r#"{ at = "1s", do = "restart" }"#, "does not restart it"),
        (
            r#"{ at = "1s", do = "reload", variant = "x" }"#,
            "does not reload it",
        ),
        (r#"{ at = "1s", do = "kill" }"#, "does not kill it"),
        (
            r#"{ at = "1s", do = "signal", signal = "HUP" }"#,
            "exactly one of pid_file",
        ),
        (
            r#"{ at = "1s", do = "signal", signal = "HUP", pid_file = "p", pid_command = "c" }"#,
            "exactly one of pid_file",
        ),
        (
            r#"{ at = "1s", do = "signal", signal = "HUP", pid_file = "p", target = "group" }"#,
            "named by pid_file or pid_command",
        ),
    ] {
        let e = parse(&case(actions)).unwrap_err();
        assert!(e.contains(want), "{actions}: {e}");
    }
    for (extra, want) in [
        (
            "start = \"x\"\n",
            "proxy.start: not for kind = \"external\"",
        ),
        ("ready = \"event\"\n", "ready by port = true"),
        ("ready = { log = \"x\" }\n", "log_file"),
        ("insecure = true\n", "only for an https:// target"),
    ] {
        let e = parse(&format!("{LOAD}{proxy}{extra}[[case]]\nname = \"a\"\n")).unwrap_err();
        assert!(e.contains(want), "{extra}: {e}");
    }
    let https = "[proxy]\nkind = \"external\"\ntarget = \"https://127.0.0.1:9/\"\n";
    let e = parse(&format!("{LOAD}{https}[[case]]\nname = \"a\"\n")).unwrap_err();
    assert!(e.contains("ca_file"), "{e}");
    let e = parse(&format!(
        "{LOAD}{https}insecure = true\n[[case]]\nname = \"a\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("needs tls = true in [load]"), "{e}");
    let e = parse(&format!(
        "{LOAD}tls = true\n{https}insecure = true\nready = {{ http = \"/\" }}\n[[case]]\nname = \"a\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("plain HTTP"), "{e}");
    let e = parse(&format!(
        "{LOAD}[proxy]\nkind = \"external\"\n[[case]]\nname = \"a\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("needs `target`"), "{e}");
}

#[test]
fn reload_expectations_apply_to_the_actions_of_an_external_server() {
    let text = format!(
        "{LOAD}[proxy]\nkind = \"external\"\ntarget = \"http://127.0.0.1:9/\"\n\
         [[case]]\nname = \"a\"\nactions = [{{ at = \"1s\", do = \"exec\", command = \"true\" }}]\n\
         expect = {{ reload_failed = 0, \"per_reload.failed\" = 0 }}\n"
    );
    let s = parse(&text).unwrap();
    assert_eq!(s.cases[0].expect.len(), 2);
}

#[test]
fn pid_files_and_targets_belong_to_external_servers() {
    let e = parse(&format!(
        "{LOAD}[proxy]\nkind = \"reference\"\ntarget = \"http://127.0.0.1:1/\"\n\
         [[case]]\nname = \"a\"\nactions = [{{ at = \"1s\", do = \"signal\", signal = \"HUP\", pid_file = \"p\" }}]\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("proxy.target: only for kind = \"external\""),
        "{e}"
    );
    assert!(e.contains("pid_file: only for kind = \"external\""), "{e}");
}

#[test]
fn reloads_in_place_is_an_external_servers_choice_off_by_default() {
    let proxy = "[proxy]\nkind = \"external\"\ntarget = \"http://127.0.0.1:9/\"\n";
    let s = parse(&format!("{LOAD}{proxy}[[case]]\nname = \"a\"\n")).unwrap();
    assert!(!external(&s.proxy).reloads_in_place);
    let s = parse(&format!(
        "{LOAD}{proxy}reloads_in_place = true\n[[case]]\nname = \"a\"\n"
    ))
    .unwrap();
    assert!(external(&s.proxy).reloads_in_place);
    let e = parse(&format!(
        "{LOAD}[proxy]\nkind = \"reference\"\nreloads_in_place = true\n[[case]]\nname = \"a\"\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("proxy.reloads_in_place: only for kind = \"external\""),
        "{e}"
    );
}
