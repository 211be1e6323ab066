//! Command-driven proxies: the shipped HAProxy and nginx scenarios, templates,
//! steps, per-case overrides and their errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::scenario::*;

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn command(p: &ProxySpec) -> &CommandProxy {
    match p {
        ProxySpec::Command(c) => c,
        _ => panic!("not a command proxy"),
    }
}

fn vars(dir: &str) -> Vars {
    let mut v = Vars::new();
    v.set("listen", "127.0.0.1:8080")
        .set("listen_port", "8080")
        .set("origin", "127.0.0.1:9090")
        .set("origin_port", "9090")
        .set("dir", dir)
        .set("config", format!("{dir}/x.cfg"))
        .set("pidfile", format!("{dir}/x.pid"))
        .set("pid", "42")
        .set("stats_socket", format!("{dir}/x.sock"))
        .set("generation", "1")
        .set("scenario_dir", "/s")
        // Set for a TLS load only; the TLS templates use them.
        .set("cert", "/run/tls/server.pem")
        .set("key", "/run/tls/server.key")
        .set("cert_pem_bundle", "/run/tls/server-bundle.pem")
        .set("ca", "/run/tls/ca.pem");
    v
}

#[test]
fn haproxy_scenario_has_its_variants_and_a_master_worker_case() {
    let s = scenario("haproxy.toml");
    let p = command(&s.proxy);
    assert_eq!(p.binary, "haproxy");
    assert_eq!(p.install.as_deref(), Some("scripts/install-peers haproxy"));
    assert_eq!(p.config_name, "haproxy.cfg");
    assert!(
        p.config_template
            .as_ref()
            .is_some_and(|t| t.is_absolute() && t.exists())
    );
    assert_eq!(p.main_pid, MainPid::Child);
    assert_eq!(p.ready.how, Readiness::Port);
    assert_eq!(
        p.stop.action,
        StepAction::Signal {
            signal: Signal::SIGUSR1,
            target: PidTarget::Main
        }
    );
    assert_eq!(p.reload.keys().collect::<Vec<_>>(), ["master", "sf", "x"]);
    let x = &p.reload["x"].steps;
    let StepAction::Spawn(t) = &x[0].action else {
        panic!("{x:?}")
    };
    assert_eq!(
        t.render_argv(&vars("/d")).unwrap(),
        [
            "haproxy",
            "-f",
            "/d/x.cfg",
            "-p",
            "/d/x.pid",
            "-x",
            "/d/x.sock",
            "-sf",
            "42"
        ]
    );
    let wait = x[0].wait.as_ref().unwrap();
    assert_eq!(wait.how, Readiness::Log("Proxy fe stopped".into()));
    assert_eq!(wait.timeout, Duration::from_secs(10));
    let mw = s
        .cases
        .iter()
        .find(|c| c.name == "master-worker reload")
        .unwrap();
    assert!(command(&mw.proxy).start.as_str().contains("-W"));
    assert!(!command(&s.cases[0].proxy).start.as_str().contains("-W"));
    assert!(!mw.master, "master is for the reference proxy only");
    assert_eq!(mw.actions[0].label(), "reload master");
}

#[test]
fn nginx_upgrade_is_three_steps_and_start_goes_through_a_shell() {
    let s = scenario("nginx.toml");
    let p = command(&s.proxy);
    assert_eq!(p.main_pid, MainPid::PidFile);
    let steps = &p.reload["upgrade"].steps;
    let signals: Vec<_> = steps
        .iter()
        .map(|s| match s.action {
            StepAction::Signal { signal, target } => (signal, target),
            _ => panic!("{s:?}"),
        })
        .collect();
    assert_eq!(
        signals,
        [
            (Signal::SIGUSR2, PidTarget::Main),
            (Signal::SIGWINCH, PidTarget::Previous),
            (Signal::SIGQUIT, PidTarget::Previous)
        ]
    );
    let argv = p.start.render_argv(&vars("/d")).unwrap();
    assert_eq!(argv[..2], ["sh", "-c"]);
    assert!(
        argv[2].starts_with("\"$(command -v nginx)\" -p /d -c /d/x.cfg & "),
        "{argv:?}"
    );
    assert_eq!(argv.len(), 3);
}

#[test]
fn shipped_config_templates_render_completely() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tmpl") {
            let text = std::fs::read_to_string(&path).unwrap();
            let out = Template::new(text).render(&vars("/d")).unwrap();
            assert!(
                out.contains("127.0.0.1:8080") && out.contains("127.0.0.1:9090"),
                "{}",
                path.display()
            );
            let name = path.file_name().unwrap().to_string_lossy();
            if name.contains("-tls") {
                assert!(out.contains("/run/tls/server"), "{name}: no certificate");
            }
            seen += 1;
        }
    }
    assert!(seen >= 2);
}

const CMD: &str = r#"
[load]
requests = 100
[proxy]
kind = "command"
binary = "srv"
start = "srv --listen {listen}"
[proxy.reload]
hup = { signal = "HUP", wait = { http = "/health" } }
"#;

fn errors(body: &str) -> String {
    match parse_str(Path::new("c.toml"), &format!("{CMD}{body}")) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_single_variant_is_the_default_and_steps_parse() {
    let s = parse_str(
        Path::new("c.toml"),
        &format!("{CMD}[[case]]\nname = \"a\"\nactions = [{{ at = \"1s\", do = \"reload\" }}]\n"),
    )
    .unwrap();
    let c = &s.cases[0];
    assert_eq!(
        c.actions[0].what,
        ActionSpec::Reload(ReloadSpec::Variant("hup".into()))
    );
    let p = command(&c.proxy);
    assert_eq!(
        p.reload["hup"].steps[0].wait.as_ref().unwrap().how,
        Readiness::Http("/health".into())
    );
    assert_eq!(p.pidfile.as_str(), "{dir}/proxy.pid");
    assert_eq!(p.config_name, "proxy.conf");
    assert!(p.restart.is_none() && p.config_template.is_none());
    assert_eq!(s.missing_peer().map(|m| m.binary), Some("srv".to_owned()));
}

#[test]
fn command_proxy_errors_name_their_fields() {
    let e = errors(
        "[[case]]\nname = \"a\"\nactions = [{ at = \"1s\", do = \"reload\", variant = \"usr2\" }]\n",
    );
    assert!(e.contains("c.toml:12:50: case[0].actions[0].variant: no [proxy.reload] variant \"usr2\" (defined: hup)"), "{e}");
    let e = errors(
        "[[case]]\nname = \"a\"\nactions = [{ at = \"1s\", do = \"reload\", mode = \"naive\" }]\n",
    );
    assert!(
        e.contains("case[0].actions[0].mode: `mode` is for the reference proxy"),
        "{e}"
    );
    let e = errors("[[case]]\nname = \"a\"\n[case.proxy]\ndrain_deadline = \"1s\"\n");
    assert!(
        e.contains("c.toml:13:18: case[0].proxy.drain_deadline: only for kind = \"reference\""),
        "{e}"
    );
}

#[test]
fn bad_templates_steps_and_readiness_are_errors() {
    let src = r#"
[load]
requests = 100
[proxy]
kind = "command"
binary = "srv"
start = "srv --listen {lisen}"
config_template = "missing.tmpl"
ready = { port = true, http = "/" }
stop = "srv stop"
pidfile = "{pid}.pid"
[proxy.reload]
a = { run = "x", signal = "HUP" }
b = []
c = { signal = "HUP", target = "parent" }
d = { spawn = "x", wait = { log = "" } }
e = { spawn = "x", timeout = "1s" }
[[case]]
name = "a"
"#;
    let e = parse_str(Path::new("c.toml"), src).unwrap_err().to_string();
    for want in [
        "c.toml:7:9: proxy.start: unknown placeholder {lisen}",
        "c.toml:8:19: proxy.config_template: cannot read",
        "c.toml:9:9: proxy.ready: exactly one readiness condition",
        "c.toml:10:8: proxy.stop: a string is a command spawned",
        "c.toml:11:11: proxy.pidfile: may use only {dir} and {scenario_dir}, not {pid}",
        "c.toml:13:5: proxy.reload.a: a step needs exactly one of `spawn`, `run` or `signal`",
        "c.toml:14:5: proxy.reload.b: needs at least one step",
        "c.toml:15:5: proxy.reload.c.target: unknown target \"parent\"",
        "c.toml:16:5: proxy.reload.d.wait.log: expected",
        "c.toml:17:5: proxy.reload.e.timeout: only with `run`",
    ] {
        assert!(e.contains(want), "missing `{want}` in:\n{e}");
    }
}

#[test]
fn case_proxy_overrides_merge_and_another_kind_replaces_the_whole_table() {
    // A case of another kind (nginx next to refproxy) is described by its own
    // table alone: nothing of the scenario's [proxy] is merged into it.
    let src = "[load]\nrequests = 1\n[proxy]\nidle_close = \"2s\"\n\
               [[case]]\nname = \"ref\"\n\
               [[case]]\nname = \"srv\"\n[case.proxy]\nkind = \"command\"\nbinary = \"srv\"\n\
               start = \"srv --port {listen_port}\"\n";
    let s = parse_str(Path::new("m.toml"), src).unwrap();
    assert!(matches!(s.cases[0].proxy, ProxySpec::Reference(_)));
    assert!(matches!(&s.cases[1].proxy, ProxySpec::Command(c) if c.binary == "srv"));
    assert_eq!(s.peers(), vec![("srv".to_owned(), None)]);
    let e = parse_str(
        Path::new("m.toml"),
        "[load]\nrequests = 1\n[[case]]\nname = \"a\"\n[case.proxy]\nkind = \"command\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("m.toml:5:1: case[0].proxy"), "{e}");
    let e = errors("[[case]]\nname = \"a\"\n[case.proxy]\nstart = \"srv {nope}\"\n");
    assert!(
        e.contains("c.toml:13:9: case[0].proxy.start: unknown placeholder {nope}"),
        "{e}"
    );
    let e = parse_str(
        Path::new("r.toml"),
        "[load]\nrequests = 1\n[proxy]\nbinary = \"x\"\n[[case]]\nname = \"a\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("r.toml:4:10: proxy.binary: only for kind = \"command\""),
        "{e}"
    );
}
