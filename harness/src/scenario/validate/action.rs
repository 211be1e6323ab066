//! One entry of a case's `actions`: its trigger and what it does.

use std::time::Duration;

use reloadbench_model::event::ReloadMode;
use toml::Spanned;

use super::Ctx;
use super::steps::{pid_target, signal};
use crate::scenario::raw::RawAction;
use crate::scenario::{
    Action, ActionSpec, LoadSpec, PidSource, PidTarget, ProxySpec, ReloadSpec, Trigger,
};

const TRIGGER_FIELDS: &str = "`at`, `every` or `after_requests`";
const KINDS: &str = "restart, reload, signal, exec, kill or sysctl";
const VARIANT_ON_REFERENCE: &str = "`variant` names a [proxy.reload] template of a \
    kind = \"command\" proxy; the reference proxy takes `mode`";
const MODE_MISSING: &str =
    "a reload of the reference proxy needs `mode` (\"naive\", \"fd-pass\" or \"master-worker\")";
const MODE_ON_COMMAND: &str = "`mode` is for the reference proxy; a command proxy's reload \
    names a `variant` of [proxy.reload]";

pub(super) fn action(
    ctx: &mut Ctx<'_>,
    ra: &Spanned<RawAction>,
    field: &str,
    proxy: Option<&ProxySpec>,
    load: Option<&LoadSpec>,
) -> Option<Action> {
    let a = ra.get_ref();
    let trigger = trigger(ctx, ra, field, load);
    let f = |name: &str| format!("{field}.{name}");
    let Some(what) = &a.what else {
        ctx.err(
            ra.span(),
            &f("do"),
            format!("every action needs `do` ({KINDS})"),
        );
        return None;
    };
    let kind = what.get_ref().as_str();
    // Fields each kind accepts, beside the trigger.
    let allowed: &[&str] = match kind {
        "restart" => &[],
        "reload" => &["mode", "variant"],
        "signal" => &["signal", "target", "pid_file", "pid_command"],
        "exec" => &["command", "timeout"],
        "kill" => &["restart"],
        "sysctl" => &["key", "value"],
        other => {
            ctx.err(
                what.span(),
                &f("do"),
                format!("unknown action {other:?} (expected {KINDS})"),
            );
            return None;
        }
    };
    let present = [
        ("mode", a.mode.as_ref().map(Spanned::span)),
        ("variant", a.variant.as_ref().map(Spanned::span)),
        ("signal", a.signal.as_ref().map(Spanned::span)),
        ("target", a.target.as_ref().map(Spanned::span)),
        ("command", a.command.as_ref().map(Spanned::span)),
        ("timeout", a.timeout.as_ref().map(Spanned::span)),
        ("key", a.key.as_ref().map(Spanned::span)),
        ("value", a.value.as_ref().map(Spanned::span)),
        ("restart", a.restart.as_ref().map(Spanned::span)),
        ("pid_file", a.pid_file.as_ref().map(Spanned::span)),
        ("pid_command", a.pid_command.as_ref().map(Spanned::span)),
    ];
    let mut ok = true;
    for (name, span) in present {
        if let Some(span) = span.filter(|_| !allowed.contains(&name)) {
            ctx.err(span, &f(name), format!("not a field of do = \"{kind}\""));
            ok = false;
        }
    }
    let external = matches!(proxy, Some(ProxySpec::External(_)));
    if external && matches!(kind, "restart" | "reload" | "kill") {
        ctx.err(
            what.span(),
            &f("do"),
            format!(
                "reloadbench did not start this server (kind = \"external\"), so it does not \
                 {kind} it: run your own command with do = \"exec\", or send a signal with \
                 do = \"signal\" and pid_file or pid_command"
            ),
        );
        return None;
    }
    if kind == "signal" && (external || a.pid_file.is_some() || a.pid_command.is_some()) {
        // An invalid system under test was reported where it is written.
        if !ok || proxy.is_none() {
            return None;
        }
        return Some(Action {
            trigger: trigger?,
            what: signal_pid(ctx, ra, field, external)?,
        });
    }
    let spec = match kind {
        "restart" => Some(ActionSpec::Restart),
        "reload" => reload(ctx, ra, field, proxy),
        "signal" => match &a.signal {
            None => {
                ctx.err(
                    ra.span(),
                    &f("signal"),
                    "do = \"signal\" needs `signal` (e.g. \"USR2\")",
                );
                None
            }
            Some(s) => {
                let sig = signal(ctx, &s.span(), s.get_ref(), &f("signal"));
                let target = match &a.target {
                    None => Some(PidTarget::Main),
                    Some(t) => pid_target(t.get_ref()).or_else(|| {
                        ctx.err(
                            t.span(),
                            &f("target"),
                            format!(
                                "unknown target {:?} (expected main, previous or group)",
                                t.get_ref()
                            ),
                        );
                        None
                    }),
                };
                Some(ActionSpec::Signal {
                    signal: sig?,
                    target: target?,
                })
            }
        },
        "exec" => match &a.command {
            None => {
                ctx.err(ra.span(), &f("command"), "do = \"exec\" needs `command`");
                None
            }
            Some(c) => {
                let timeout =
                    ctx.duration_or(a.timeout.as_ref(), &f("timeout"), Duration::from_secs(30));
                ctx.template(c, &f("command")).map(|command| {
                    if external {
                        ActionSpec::ExecReload { command, timeout }
                    } else {
                        ActionSpec::Exec { command, timeout }
                    }
                })
            }
        },
        "kill" => Some(ActionSpec::Kill {
            restart: a.restart.as_ref().is_some_and(|r| *r.get_ref()),
        }),
        _ => sysctl(ctx, ra, field),
    };
    if !ok {
        return None;
    }
    Some(Action {
        trigger: trigger?,
        what: spec?,
    })
}

/// `do = "signal"` to a process found when the action fires: the pid in
/// `pid_file`, or the first number `pid_command` prints. Only for an
/// external server (the other kinds know their pids).
fn signal_pid(
    ctx: &mut Ctx<'_>,
    ra: &Spanned<RawAction>,
    field: &str,
    external: bool,
) -> Option<ActionSpec> {
    let a = ra.get_ref();
    let f = |name: &str| format!("{field}.{name}");
    if !external {
        let span = a
            .pid_file
            .as_ref()
            .or(a.pid_command.as_ref())
            .map_or_else(|| ra.span(), Spanned::span);
        let name = if a.pid_file.is_some() {
            "pid_file"
        } else {
            "pid_command"
        };
        ctx.err(
            span,
            &f(name),
            "only for kind = \"external\" (reloadbench knows the pids of what it starts: \
             use `target`)",
        );
        return None;
    }
    if let Some(t) = &a.target {
        ctx.err(
            t.span(),
            &f("target"),
            "an external server's process is named by pid_file or pid_command",
        );
        return None;
    }
    let pid = match (&a.pid_file, &a.pid_command) {
        (Some(p), None) if !p.get_ref().trim().is_empty() => {
            PidSource::File(ctx.dir.join(p.get_ref()))
        }
        (None, Some(c)) if !c.get_ref().trim().is_empty() => {
            PidSource::Command(ctx.template(c, &f("pid_command"))?)
        }
        _ => {
            ctx.err(
                ra.span(),
                &f("pid_file"),
                "a signal to an external server needs exactly one of pid_file = \"PATH\" or \
                 pid_command = \"COMMAND\" (read when the action fires)",
            );
            return None;
        }
    };
    let Some(s) = &a.signal else {
        ctx.err(
            ra.span(),
            &f("signal"),
            "do = \"signal\" needs `signal` (e.g. \"HUP\")",
        );
        return None;
    };
    let signal = signal(ctx, &s.span(), s.get_ref(), &f("signal"))?;
    Some(ActionSpec::SignalPid { signal, pid })
}

fn trigger(
    ctx: &mut Ctx<'_>,
    ra: &Spanned<RawAction>,
    field: &str,
    load: Option<&LoadSpec>,
) -> Option<Trigger> {
    let a = ra.get_ref();
    let f = |name: &str| format!("{field}.{name}");
    let set = [
        a.at.is_some(),
        a.every.is_some(),
        a.after_requests.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        ctx.err(
            ra.span(),
            &f("at"),
            format!("an action needs exactly one of {TRIGGER_FIELDS}"),
        );
        return None;
    }
    if a.every.is_none() {
        for (name, span) in [
            ("count", a.count.as_ref().map(Spanned::span)),
            ("start", a.start.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                ctx.err(span, &f(name), "only with `every`");
                return None;
            }
        }
    }
    let trigger = if let Some(at) = &a.at {
        Trigger::At(ctx.duration(at, &f("at"))?)
    } else if let Some(every) = &a.every {
        let interval = ctx.positive_duration(every, &f("every"))?;
        let start = match &a.start {
            Some(s) => ctx.duration(s, &f("start"))?,
            None => interval,
        };
        let count = match &a.count {
            Some(c) => Some(u32::try_from(ctx.count(c, &f("count"), 1)?).unwrap_or(u32::MAX)),
            None => None,
        };
        Trigger::Every {
            start,
            interval,
            count,
        }
    } else {
        let n = a.after_requests.as_ref()?;
        let requests = ctx.count(n, &f("after_requests"), 1)?;
        if let Some(total) = load.and_then(|l| l.requests).filter(|t| requests >= *t) {
            ctx.err(
                n.span(),
                &f("after_requests"),
                format!("never fires: the load makes only {total} requests"),
            );
            return None;
        }
        Trigger::AfterRequests(requests)
    };
    let first = trigger.nth(0);
    if let (Some(first), Some(limit)) = (first, load.and_then(|l| l.duration))
        && first >= limit
        && load.is_some_and(|l| l.requests.is_none())
    {
        let span =
            a.at.as_ref()
                .or(a.start.as_ref())
                .or(a.every.as_ref())
                .map_or_else(|| ra.span(), Spanned::span);
        let msg = format!(
            "never fires: first at {}, the load lasts {}",
            humantime::format_duration(first),
            humantime::format_duration(limit)
        );
        ctx.err(span, &f(if a.at.is_some() { "at" } else { "every" }), msg);
        return None;
    }
    Some(trigger)
}

fn reload(
    ctx: &mut Ctx<'_>,
    ra: &Spanned<RawAction>,
    field: &str,
    proxy: Option<&ProxySpec>,
) -> Option<ActionSpec> {
    let a = ra.get_ref();
    let f = |name: &str| format!("{field}.{name}");
    match proxy? {
        ProxySpec::Reference(_) => {
            if let Some(v) = &a.variant {
                ctx.err(v.span(), &f("variant"), VARIANT_ON_REFERENCE);
                return None;
            }
            let Some(mode) = &a.mode else {
                ctx.err(ra.span(), &f("mode"), MODE_MISSING);
                return None;
            };
            match mode.get_ref().parse::<ReloadMode>() {
                Ok(ReloadMode::Restart) => {
                    ctx.err(
                        mode.span(),
                        &f("mode"),
                        "write do = \"restart\" for a restart",
                    );
                    None
                }
                Ok(m) => Some(ActionSpec::Reload(ReloadSpec::Reference(m))),
                Err(e) => {
                    ctx.err(mode.span(), &f("mode"), e);
                    None
                }
            }
        }
        ProxySpec::External(_) => None,
        ProxySpec::Command(p) => {
            if let Some(m) = &a.mode {
                ctx.err(m.span(), &f("mode"), MODE_ON_COMMAND);
                return None;
            }
            let known = p.reload.keys().cloned().collect::<Vec<_>>().join(", ");
            match &a.variant {
                Some(v) if p.reload.contains_key(v.get_ref()) => {
                    Some(ActionSpec::Reload(ReloadSpec::Variant(v.get_ref().clone())))
                }
                Some(v) => {
                    ctx.err(
                        v.span(),
                        &f("variant"),
                        format!(
                            "no [proxy.reload] variant {:?} (defined: {known})",
                            v.get_ref()
                        ),
                    );
                    None
                }
                None if p.reload.len() == 1 => p
                    .reload
                    .keys()
                    .next()
                    .map(|k| ActionSpec::Reload(ReloadSpec::Variant(k.clone()))),
                None => {
                    ctx.err(
                        ra.span(),
                        &f("variant"),
                        format!("which reload? name a `variant` (defined: {known})"),
                    );
                    None
                }
            }
        }
    }
}

fn sysctl(ctx: &mut Ctx<'_>, ra: &Spanned<RawAction>, field: &str) -> Option<ActionSpec> {
    let a = ra.get_ref();
    let f = |name: &str| format!("{field}.{name}");
    let key = match &a.key {
        Some(k)
            if k.get_ref().split('.').count() >= 2
                && k.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') =>
        {
            Some(k.get_ref().clone())
        }
        Some(k) => {
            ctx.err(
                k.span(),
                &f("key"),
                format!(
                    "{:?} is not a sysctl name like \"net.ipv4.tcp_migrate_req\"",
                    k.get_ref()
                ),
            );
            None
        }
        None => {
            ctx.err(ra.span(), &f("key"), "do = \"sysctl\" needs `key`");
            None
        }
    };
    let value = match a.value.as_ref().map(|v| (v, v.get_ref())) {
        Some((_, toml::Value::String(s))) => Some(s.clone()),
        Some((_, toml::Value::Integer(i))) => Some(i.to_string()),
        Some((v, _)) => {
            ctx.err(v.span(), &f("value"), "expected a string or an integer");
            None
        }
        None => {
            ctx.err(ra.span(), &f("value"), "do = \"sysctl\" needs `value`");
            None
        }
    };
    Some(ActionSpec::Sysctl {
        key: key?,
        value: value?,
    })
}
