//! `[proxy]` and `[case.proxy]`: the reference proxy or a command-driven one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Spanned;

use super::Ctx;
use super::steps::{DEFAULT_READY_TIMEOUT, readiness, steps};
use crate::scenario::raw::{RawProxy, SStr};
use crate::scenario::template::Template;
use crate::scenario::{
    CommandProxy, DrainTunnels, MainPid, PidTarget, ProxySpec, Readiness, ReadySpec,
    ReferenceProxy, ReloadVariant, Step, StepAction, TicketKeysFile,
};

/// A field name and its span, when present.
pub(super) type FieldSpan<'a> = (&'a str, Option<Range<usize>>);

pub(super) fn proxy(ctx: &mut Ctx<'_>, raw: &Spanned<RawProxy>, prefix: &str) -> Option<ProxySpec> {
    let p = raw.get_ref();
    let kind = p
        .kind
        .as_ref()
        .map_or("reference", |k| k.get_ref().as_str());
    let reference_fields = [
        (
            "drain_deadline",
            p.drain_deadline.as_ref().map(Spanned::span),
        ),
        ("idle_close", p.idle_close.as_ref().map(Spanned::span)),
        ("ready_timeout", p.ready_timeout.as_ref().map(Spanned::span)),
        (
            "generation_header",
            p.generation_header.as_ref().map(Spanned::span),
        ),
        (
            "share_ticket_keys",
            p.share_ticket_keys.as_ref().map(Spanned::span),
        ),
        (
            "ticket_keys_file",
            p.ticket_keys_file.as_ref().map(Spanned::span),
        ),
        ("drain_tunnels", p.drain_tunnels.as_ref().map(Spanned::span)),
    ];
    let command_fields = [
        ("binary", p.binary.as_ref().map(Spanned::span)),
        ("install", p.install.as_ref().map(Spanned::span)),
        ("version", p.version.as_ref().map(Spanned::span)),
        (
            "config_template",
            p.config_template.as_ref().map(Spanned::span),
        ),
        ("config_name", p.config_name.as_ref().map(Spanned::span)),
        ("pidfile", p.pidfile.as_ref().map(Spanned::span)),
        ("stats_socket", p.stats_socket.as_ref().map(Spanned::span)),
        ("main_pid", p.main_pid.as_ref().map(Spanned::span)),
        ("start", p.start.as_ref().map(Spanned::span)),
        ("ready", p.ready.as_ref().map(Spanned::span)),
        ("stop", p.stop.as_ref().map(Spanned::span)),
        ("stop_timeout", p.stop_timeout.as_ref().map(Spanned::span)),
        ("restart", p.restart.as_ref().map(Spanned::span)),
        ("reload", p.reload.as_ref().map(Spanned::span)),
    ];
    if kind == "external" {
        return super::external::external(ctx, raw, prefix, &reference_fields, &command_fields)
            .map(|x| ProxySpec::External(Box::new(x)));
    }
    let (foreign, other): (&[FieldSpan<'_>], &str) = match kind {
        "reference" => (&command_fields, "command"),
        "command" => (&reference_fields, "reference"),
        _ => {
            let span = p.kind.as_ref().map_or_else(|| raw.span(), Spanned::span);
            ctx.err(
                span,
                &format!("{prefix}.kind"),
                format!(
                    "unknown kind {kind:?} (expected \"reference\", \"command\" or \"external\")"
                ),
            );
            return None;
        }
    };
    super::external::reject_external_fields(ctx, p, prefix, kind);
    for (name, span) in foreign {
        if let Some(span) = span {
            let msg = format!("only for kind = \"{other}\" (this proxy is kind = \"{kind}\")");
            ctx.err(span.clone(), &format!("{prefix}.{name}"), msg);
        }
    }
    if kind == "reference" {
        let d = ReferenceProxy::default();
        return Some(ProxySpec::Reference(ReferenceProxy {
            drain_deadline: ctx.duration_or(
                p.drain_deadline.as_ref(),
                &format!("{prefix}.drain_deadline"),
                d.drain_deadline,
            ),
            idle_close: ctx.duration_or(
                p.idle_close.as_ref(),
                &format!("{prefix}.idle_close"),
                d.idle_close,
            ),
            ready_timeout: ctx.duration_or(
                p.ready_timeout.as_ref(),
                &format!("{prefix}.ready_timeout"),
                d.ready_timeout,
            ),
            generation_header: p.generation_header.as_ref().is_some_and(|g| *g.get_ref()),
            share_ticket_keys: p.share_ticket_keys.as_ref().is_none_or(|s| *s.get_ref()),
            ticket_keys_file: ticket_keys_file(ctx, p, prefix)?,
            drain_tunnels: drain_tunnels(ctx, p, prefix)?,
        }));
    }
    command_proxy(ctx, raw, prefix).map(|c| ProxySpec::Command(Box::new(c)))
}

/// `drain_tunnels = "keep" | "close"` (default keep).
fn drain_tunnels(ctx: &mut Ctx<'_>, p: &RawProxy, prefix: &str) -> Option<DrainTunnels> {
    let Some(v) = &p.drain_tunnels else {
        return Some(DrainTunnels::default());
    };
    match v.get_ref().as_str() {
        "keep" => Some(DrainTunnels::Keep),
        "close" => Some(DrainTunnels::Close),
        other => {
            ctx.err(
                v.span(),
                &format!("{prefix}.drain_tunnels"),
                format!("unknown value {other:?} (expected \"keep\" or \"close\")"),
            );
            None
        }
    }
}

/// `ticket_keys_file`: `true` (a file the harness makes) or a path
/// (relative to the scenario's directory).
fn ticket_keys_file(
    ctx: &mut Ctx<'_>,
    p: &RawProxy,
    prefix: &str,
) -> Option<Option<TicketKeysFile>> {
    let Some(v) = &p.ticket_keys_file else {
        return Some(None);
    };
    match v.get_ref() {
        toml::Value::Boolean(false) => Some(None),
        toml::Value::Boolean(true) => Some(Some(TicketKeysFile::Generated)),
        toml::Value::String(s) if !s.is_empty() => {
            Some(Some(TicketKeysFile::Path(ctx.dir.join(s))))
        }
        _ => {
            ctx.err(
                v.span(),
                &format!("{prefix}.ticket_keys_file"),
                "must be true (a random key file made for the case) or the path of a key file",
            );
            None
        }
    }
}

fn command_proxy(ctx: &mut Ctx<'_>, raw: &Spanned<RawProxy>, prefix: &str) -> Option<CommandProxy> {
    let p = raw.get_ref();
    let required = |ctx: &mut Ctx<'_>, v: &Option<SStr>, name: &str| {
        if v.is_none() {
            ctx.err(
                raw.span(),
                &format!("{prefix}.{name}"),
                format!("kind = \"command\" needs `{name}`"),
            );
        }
    };
    required(ctx, &p.binary, "binary");
    required(ctx, &p.start, "start");
    let start = p
        .start
        .as_ref()
        .and_then(|s| ctx.template(s, &format!("{prefix}.start")));
    let version = match &p.version {
        Some(v) => ctx.template(v, &format!("{prefix}.version")).map(Some),
        None => Some(None),
    };
    let (config_template, config_name) = config(
        ctx,
        p.config_template.as_ref(),
        p.config_name.as_ref(),
        prefix,
    );
    let pidfile = path_template(
        ctx,
        p.pidfile.as_ref(),
        &format!("{prefix}.pidfile"),
        "{dir}/proxy.pid",
    );
    let stats_socket = path_template(
        ctx,
        p.stats_socket.as_ref(),
        &format!("{prefix}.stats_socket"),
        "{dir}/proxy.sock",
    );
    let main_pid = match p.main_pid.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "child")) => Some(MainPid::Child),
        Some((_, "pid_file")) => Some(MainPid::PidFile),
        Some((m, other)) => {
            ctx.err(
                m.span(),
                &format!("{prefix}.main_pid"),
                format!("unknown {other:?} (expected \"child\" or \"pid_file\")"),
            );
            None
        }
    };
    let ready = match &p.ready {
        Some(r) => readiness(ctx, r, &format!("{prefix}.ready")),
        None => Some(ReadySpec {
            how: Readiness::Port,
            timeout: DEFAULT_READY_TIMEOUT,
        }),
    };
    let stop = match &p.stop {
        Some(s) => steps(ctx, s, &format!("{prefix}.stop"), false).and_then(|mut v| {
            if v.len() == 1 {
                v.pop()
            } else {
                ctx.err(s.span(), &format!("{prefix}.stop"), "stop is one step");
                None
            }
        }),
        None => Some(Step {
            action: StepAction::Signal {
                signal: Signal::SIGTERM,
                target: PidTarget::Main,
            },
            wait: None,
        }),
    };
    let stop_timeout = ctx.duration_or(
        p.stop_timeout.as_ref(),
        &format!("{prefix}.stop_timeout"),
        Duration::from_secs(10),
    );
    let restart = match &p.restart {
        Some(r) => steps(ctx, r, &format!("{prefix}.restart"), true).map(Some),
        None => Some(None),
    };
    let mut reload = BTreeMap::new();
    let mut reload_ok = true;
    for (name, v) in p
        .reload
        .as_ref()
        .map(Spanned::get_ref)
        .into_iter()
        .flatten()
    {
        match steps(ctx, v, &format!("{prefix}.reload.{name}"), true) {
            Some(steps) => {
                reload.insert(name.clone(), ReloadVariant { steps });
            }
            None => reload_ok = false,
        }
    }
    Some(CommandProxy {
        binary: p.binary.as_ref()?.get_ref().clone(),
        install: p.install.as_ref().map(|i| i.get_ref().clone()),
        version: version?,
        config_template: config_template?,
        config_name,
        pidfile: pidfile?,
        stats_socket: stats_socket?,
        main_pid: main_pid?,
        start: start?,
        ready: ready?,
        stop: stop?,
        stop_timeout,
        restart: restart?,
        reload: reload_ok.then_some(reload)?,
    })
}

/// The config template (checked: exists, known placeholders) and the rendered file's name.
fn config(
    ctx: &mut Ctx<'_>,
    template: Option<&SStr>,
    name: Option<&SStr>,
    prefix: &str,
) -> (Option<Option<std::path::PathBuf>>, String) {
    let Some(t) = template else {
        return (
            Some(None),
            name.map_or_else(|| "proxy.conf".to_owned(), |n| n.get_ref().clone()),
        );
    };
    let path = ctx.dir.join(t.get_ref());
    let file_name = Path::new(t.get_ref())
        .file_name()
        .map(|f| f.to_string_lossy().trim_end_matches(".tmpl").to_owned())
        .unwrap_or_else(|| "proxy.conf".to_owned());
    let config_name = name.map_or(file_name, |n| n.get_ref().clone());
    let field = &format!("{prefix}.config_template");
    match std::fs::read_to_string(&path) {
        Err(e) => {
            ctx.err(
                t.span(),
                field,
                format!("cannot read {}: {e}", path.display()),
            );
            (None, config_name)
        }
        Ok(text) => {
            for (i, line) in text.lines().enumerate() {
                if let Err(e) = Template::new(line).check() {
                    ctx.err(
                        t.span(),
                        field,
                        format!("{} line {}: {e}", t.get_ref(), i + 1),
                    );
                    return (None, config_name);
                }
            }
            (Some(Some(path)), config_name)
        }
    }
}

/// A file path template that may only use `{dir}` and `{scenario_dir}`.
fn path_template(
    ctx: &mut Ctx<'_>,
    v: Option<&SStr>,
    field: &str,
    default: &str,
) -> Option<Template> {
    let Some(v) = v else {
        return Some(Template::new(default));
    };
    let t = ctx.template(v, field)?;
    if let Some(bad) = t
        .placeholders()
        .into_iter()
        .find(|p| *p != "dir" && *p != "scenario_dir")
    {
        ctx.err(
            v.span(),
            field,
            format!("may use only {{dir}} and {{scenario_dir}}, not {{{bad}}}"),
        );
        return None;
    }
    Some(t)
}
