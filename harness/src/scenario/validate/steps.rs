//! Steps (spawn, run, signal) and readiness conditions of a command proxy.

use std::ops::Range;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Value;

use super::Ctx;
use crate::scenario::raw::SVal;
use crate::scenario::{PidTarget, Readiness, ReadySpec, Step, StepAction};

/// Readiness timeout when none is written.
pub(super) const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The forms of a readiness condition, for error messages.
const READY_FORMS: &str = "expected \"event\", \"port\" or a table with one of \
    event = true, port = true, pid_file = \"...\", http = \"/...\", log = \"...\" \
    (log with an optional log_file = \"...\"; and an optional timeout)";
/// The forms of a stop step, for error messages.
const STOP_FORMS: &str = "write { signal = \"TERM\" } or { run = \"...\" }";
/// Deadline of a `run` step when none is written.
const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// A step list: a string (spawn), a step table, or an array of them.
pub(super) fn steps(
    ctx: &mut Ctx<'_>,
    v: &SVal,
    field: &str,
    allow_spawn: bool,
) -> Option<Vec<Step>> {
    let span = v.span();
    match v.get_ref() {
        Value::Array(items) if items.is_empty() => {
            ctx.err(span, field, "needs at least one step");
            None
        }
        Value::Array(items) => {
            let parsed: Vec<Option<Step>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    step(
                        ctx,
                        span.clone(),
                        item,
                        &format!("{field}[{i}]"),
                        allow_spawn,
                    )
                })
                .collect();
            parsed.into_iter().collect()
        }
        other => step(ctx, span, other, field, allow_spawn).map(|s| vec![s]),
    }
}

fn step(
    ctx: &mut Ctx<'_>,
    span: Range<usize>,
    v: &Value,
    field: &str,
    allow_spawn: bool,
) -> Option<Step> {
    let spawn_hint = "a string is a command spawned as the new main process";
    let table = match v {
        Value::String(s) if allow_spawn => {
            return Some(Step {
                action: StepAction::Spawn(ctx.template_at(span.clone(), s, field)?),
                wait: None,
            });
        }
        Value::String(_) => {
            ctx.err(
                span,
                field,
                format!("{spawn_hint}, not allowed here: {STOP_FORMS}"),
            );
            return None;
        }
        Value::Table(t) => t,
        other => {
            ctx.err(
                span,
                field,
                format!(
                    "expected a command string or a step table, found {}",
                    other.type_str()
                ),
            );
            return None;
        }
    };
    for key in table.keys() {
        if !["spawn", "run", "signal", "target", "timeout", "wait"].contains(&key.as_str()) {
            ctx.err(
                span.clone(),
                &format!("{field}.{key}"),
                "unknown step field (expected spawn, run or signal, with target, timeout, wait)",
            );
            return None;
        }
    }
    for (key, with) in [("timeout", "run"), ("target", "signal")] {
        if table.contains_key(key) && !table.contains_key(with) {
            ctx.err(
                span,
                &format!("{field}.{key}"),
                format!("only with `{with}`"),
            );
            return None;
        }
    }
    let text = |key: &str| table.get(key).map(|v| v.as_str().ok_or(()));
    let action = match (text("spawn"), text("run"), text("signal")) {
        (Some(Ok(s)), None, None) if allow_spawn => {
            StepAction::Spawn(ctx.template_at(span.clone(), s, field)?)
        }
        (None, Some(Ok(r)), None) => {
            let timeout = match table.get("timeout") {
                Some(t) => duration_value(ctx, &span, t, &format!("{field}.timeout"))?,
                None => DEFAULT_RUN_TIMEOUT,
            };
            StepAction::Run {
                command: ctx.template_at(span.clone(), r, field)?,
                timeout,
            }
        }
        (None, None, Some(Ok(s))) => {
            let target = match table.get("target").map(|t| t.as_str()) {
                None => PidTarget::Main,
                Some(Some(t)) => pid_target(t).or_else(|| {
                    ctx.err(
                        span.clone(),
                        &format!("{field}.target"),
                        format!("unknown target {t:?} (expected main, previous or group)"),
                    );
                    None
                })?,
                Some(None) => {
                    ctx.err(
                        span.clone(),
                        &format!("{field}.target"),
                        "expected a string",
                    );
                    return None;
                }
            };
            StepAction::Signal {
                signal: signal(ctx, &span, s, field)?,
                target,
            }
        }
        _ => {
            let kinds = if allow_spawn {
                "`spawn`, `run` or `signal`"
            } else {
                "`run` or `signal`"
            };
            ctx.err(
                span,
                field,
                format!("a step needs exactly one of {kinds} (a string)"),
            );
            return None;
        }
    };
    let wait = match table.get("wait") {
        Some(w) => Some(readiness_value(ctx, span, w, &format!("{field}.wait"))?),
        None => None,
    };
    Some(Step { action, wait })
}

/// `main`, `previous` or `group`.
pub(super) fn pid_target(s: &str) -> Option<PidTarget> {
    match s {
        "main" | "master" => Some(PidTarget::Main),
        "previous" => Some(PidTarget::Previous),
        "group" => Some(PidTarget::Group),
        _ => None,
    }
}

/// Parses `USR2`, `SIGUSR2` or `usr2`.
pub(super) fn signal(
    ctx: &mut Ctx<'_>,
    span: &Range<usize>,
    s: &str,
    field: &str,
) -> Option<Signal> {
    let upper = s.trim().to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match name.parse::<Signal>() {
        Ok(sig) => Some(sig),
        Err(_) => {
            ctx.err(
                span.clone(),
                field,
                format!("unknown signal {s:?} (e.g. \"HUP\", \"USR2\", \"TERM\")"),
            );
            None
        }
    }
}

fn duration_value(
    ctx: &mut Ctx<'_>,
    span: &Range<usize>,
    v: &Value,
    field: &str,
) -> Option<Duration> {
    let parsed = v.as_str().map(|s| humantime::parse_duration(s.trim()));
    match parsed {
        Some(Ok(d)) if !d.is_zero() => Some(d),
        _ => {
            ctx.err(
                span.clone(),
                field,
                format!("expected a duration above zero such as \"10s\", found {v}"),
            );
            None
        }
    }
}

/// `ready = "event" | "port" | { event = true | port = true | pid_file = "..." |
/// http = "/" | log = "...", timeout = "10s" }`.
pub(super) fn readiness(ctx: &mut Ctx<'_>, v: &SVal, field: &str) -> Option<ReadySpec> {
    readiness_value(ctx, v.span(), v.get_ref(), field)
}

fn readiness_value(
    ctx: &mut Ctx<'_>,
    span: Range<usize>,
    v: &Value,
    field: &str,
) -> Option<ReadySpec> {
    let expected = READY_FORMS;
    let with_default = |how| {
        Some(ReadySpec {
            how,
            timeout: DEFAULT_READY_TIMEOUT,
        })
    };
    let table = match v {
        Value::String(s) if s == "event" => return with_default(Readiness::Event),
        Value::String(s) if s == "port" => return with_default(Readiness::Port),
        Value::Table(t) => t,
        _ => {
            ctx.err(span, field, expected);
            return None;
        }
    };
    let mut how = Vec::new();
    for (key, value) in table {
        let r = match (key.as_str(), value) {
            ("timeout", t) => {
                duration_value(ctx, &span, t, &format!("{field}.timeout"))?;
                continue;
            }
            ("log_file", Value::String(s)) if !s.is_empty() => continue,
            ("event", Value::Boolean(true)) => Readiness::Event,
            ("port", Value::Boolean(true)) => Readiness::Port,
            ("pid_file", Value::String(s)) => {
                Readiness::PidFile(ctx.template_at(span.clone(), s, field)?)
            }
            ("http", Value::String(s)) if s.starts_with('/') => Readiness::Http(s.clone()),
            ("log", Value::String(s)) if !s.is_empty() => Readiness::Log(s.clone()),
            _ => {
                ctx.err(span, &format!("{field}.{key}"), expected);
                return None;
            }
        };
        how.push(r);
    }
    let timeout = match table.get("timeout") {
        Some(t) => duration_value(ctx, &span, t, &format!("{field}.timeout"))?,
        None => DEFAULT_READY_TIMEOUT,
    };
    if let Some(file) = table.get("log_file").and_then(Value::as_str) {
        // `log_file` says where the `log` line is written.
        return match how.as_slice() {
            [Readiness::Log(text)] => Some(ReadySpec {
                how: Readiness::LogFile {
                    path: ctx.dir.join(file),
                    text: text.clone(),
                },
                timeout,
            }),
            _ => {
                ctx.err(
                    span,
                    &format!("{field}.log_file"),
                    "log_file goes with log = \"TEXT\" (the line to wait for)",
                );
                None
            }
        };
    }
    match how.len() {
        1 => how.pop().map(|how| ReadySpec { how, timeout }),
        _ => {
            ctx.err(
                span,
                field,
                format!("exactly one readiness condition: {expected}"),
            );
            None
        }
    }
}
