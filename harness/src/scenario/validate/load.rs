//! `[origin]`, `[load]` and `[case.load]`.

use std::ops::Range;
use std::time::Duration;

use reloadbench_loadgen::{LoadError, TlsVersion};
use toml::Spanned;

use super::Ctx;
use super::steps::readiness;
use crate::scenario::raw::{RawLoad, RawOrigin};
use crate::scenario::{
    CommandOrigin, LoadH2, LoadKind, LoadSpec, LoadTls, LoadWs, OriginSpec, Readiness, ReadySpec,
};

/// Body size of the built-in origin when `body_bytes` is not given (the page size of the
/// original ab measurement).
const DEFAULT_BODY_BYTES: u64 = 32_987;

pub(super) fn default_origin() -> OriginSpec {
    OriginSpec::BuiltIn {
        body_bytes: DEFAULT_BODY_BYTES,
        delay: Duration::ZERO,
    }
}

pub(super) fn origin(ctx: &mut Ctx<'_>, raw: &Spanned<RawOrigin>) -> Option<OriginSpec> {
    let o = raw.get_ref();
    let Some(command) = &o.command else {
        for (present, span, name) in [
            (
                o.ready.is_some(),
                o.ready.as_ref().map(Spanned::span),
                "origin.ready",
            ),
            (
                o.binary.is_some(),
                o.binary.as_ref().map(Spanned::span),
                "origin.binary",
            ),
        ] {
            if present {
                let span = span.unwrap_or_else(|| raw.span());
                ctx.err(span, name, "only for an external origin (with `command`)");
            }
        }
        let mut body_bytes = DEFAULT_BODY_BYTES;
        if let Some(b) = &o.body_bytes {
            body_bytes = ctx.count(b, "origin.body_bytes", 0)?;
            if let Err(e) = reloadbench_origin::check_body_bytes(body_bytes) {
                ctx.err(b.span(), "origin.body_bytes", e.to_string());
                return None;
            }
        }
        let delay = match &o.delay {
            Some(d) => ctx.duration(d, "origin.delay")?,
            None => Duration::ZERO,
        };
        return Some(OriginSpec::BuiltIn { body_bytes, delay });
    };
    if let Some(b) = &o.body_bytes {
        ctx.err(
            b.span(),
            "origin.body_bytes",
            "only for the built-in origin (without `command`)",
        );
    }
    if let Some(d) = &o.delay {
        ctx.err(
            d.span(),
            "origin.delay",
            "only for the built-in origin (without `command`)",
        );
    }
    let command = ctx.template(command, "origin.command");
    let ready = match &o.ready {
        Some(r) => readiness(ctx, r, "origin.ready"),
        None => Some(ReadySpec {
            how: Readiness::Port,
            timeout: Duration::from_secs(10),
        }),
    };
    Some(OriginSpec::Command(CommandOrigin {
        command: command?,
        ready: ready?,
        binary: o.binary.as_ref().map(|b| b.get_ref().clone()),
        install: o.install.clone(),
    }))
}

/// `tls`, `tls_resume` and `tls_version` of a merged load.
fn load_tls(ctx: &mut Ctx<'_>, l: &RawLoad, field: &str) -> Option<Option<LoadTls>> {
    let on = l.tls.as_ref().is_some_and(|t| *t.get_ref());
    if !on {
        let mut ok = true;
        for (span, name) in [
            (l.tls_resume.as_ref().map(Spanned::span), "tls_resume"),
            (l.tls_version.as_ref().map(Spanned::span), "tls_version"),
        ] {
            if let Some(span) = span {
                ctx.err(span, &format!("{field}.{name}"), "only with `tls = true`");
                ok = false;
            }
        }
        return ok.then_some(None);
    }
    let version = match &l.tls_version {
        Some(v) => match TlsVersion::from_key(v.get_ref()) {
            Some(t) => Some(t),
            None => {
                ctx.err(
                    v.span(),
                    &format!("{field}.tls_version"),
                    format!(
                        "unknown version {:?} (expected \"1.2\" or \"1.3\")",
                        v.get_ref()
                    ),
                );
                return None;
            }
        },
        None => None,
    };
    Some(Some(LoadTls {
        resume: l.tls_resume.as_ref().is_none_or(|r| *r.get_ref()),
        version,
    }))
}

/// `http2`, `streams` and `retry_refused` of a merged load. HTTP/2 keeps
/// its connections, so `keep_alive = false` contradicts it.
fn load_h2(ctx: &mut Ctx<'_>, l: &RawLoad, field: &str) -> Option<Option<LoadH2>> {
    let on = l.http2.as_ref().is_some_and(|t| *t.get_ref());
    if !on {
        let mut ok = true;
        for (span, name) in [
            (l.streams.as_ref().map(Spanned::span), "streams"),
            (l.retry_refused.as_ref().map(Spanned::span), "retry_refused"),
        ] {
            if let Some(span) = span {
                ctx.err(span, &format!("{field}.{name}"), "only with `http2 = true`");
                ok = false;
            }
        }
        return ok.then_some(None);
    }
    if let Some(k) = &l.keep_alive
        && !*k.get_ref()
    {
        ctx.err(
            k.span(),
            &format!("{field}.keep_alive"),
            "an HTTP/2 connection is always kept: leave keep_alive out with `http2 = true`",
        );
        return None;
    }
    let streams = match &l.streams {
        Some(n) => ctx.count(n, &format!("{field}.streams"), 1)?,
        None => 1,
    };
    Some(Some(LoadH2 {
        streams,
        retry_refused: l.retry_refused.as_ref().is_some_and(|r| *r.get_ref()),
    }))
}

/// `kind` and the WebSocket fields of a merged load: the fields only with
/// `kind = "websocket"`, which needs a `duration` (each client holds its
/// connection for it) and speaks HTTP/1.1.
fn load_kind(ctx: &mut Ctx<'_>, l: &RawLoad, field: &str) -> Option<LoadKind> {
    let f = |name: &str| format!("{field}.{name}");
    let kind = l.kind.as_ref().map_or("requests", |k| k.get_ref().as_str());
    let ws_fields = [
        (
            l.message_interval.as_ref().map(Spanned::span),
            "message_interval",
        ),
        (l.message_bytes.as_ref().map(Spanned::span), "message_bytes"),
        (
            l.message_timeout.as_ref().map(Spanned::span),
            "message_timeout",
        ),
        (
            l.reconnect_delay.as_ref().map(Spanned::span),
            "reconnect_delay",
        ),
    ];
    if kind != "websocket" {
        let mut ok = true;
        for (span, name) in ws_fields {
            if let Some(span) = span {
                ctx.err(span, &f(name), "only with `kind = \"websocket\"`");
                ok = false;
            }
        }
        if !ok {
            return None;
        }
    }
    let kind_span = || l.kind.as_ref().map(Spanned::span).unwrap_or_default();
    match kind {
        "requests" => Some(LoadKind::Requests),
        "stream" => Some(LoadKind::Stream),
        "websocket" => {
            let mut ok = true;
            if l.duration.is_none() {
                ctx.err(
                    kind_span(),
                    &f("duration"),
                    "a WebSocket load holds its connections for a time: give `duration = \"10s\"`",
                );
                ok = false;
            }
            // `http2 = true` is allowed: WebSockets over HTTP/2 (RFC 8441, `loadgen --ws --h2`).
            for (span, name) in [(l.requests.as_ref().map(Spanned::span), "requests")] {
                if let Some(span) = span {
                    ctx.err(span, &f(name), "not with `kind = \"websocket\"`");
                    ok = false;
                }
            }
            let d = reloadbench_loadgen::WsOptions::default();
            let message_interval = ctx.duration_or(
                l.message_interval.as_ref(),
                &f("message_interval"),
                d.message_interval,
            );
            let message_timeout = ctx.duration_or(
                l.message_timeout.as_ref(),
                &f("message_timeout"),
                d.message_timeout,
            );
            // No pause before reconnecting is a client's default.
            let reconnect_delay = match &l.reconnect_delay {
                Some(r) => ctx
                    .duration(r, &f("reconnect_delay"))
                    .unwrap_or(d.reconnect_delay),
                None => d.reconnect_delay,
            };
            let message_bytes = match &l.message_bytes {
                Some(b) => ctx.count(b, &f("message_bytes"), 8),
                None => Some(d.message_bytes as u64),
            };
            if !ok {
                return None;
            }
            Some(LoadKind::WebSocket(LoadWs {
                message_interval,
                message_bytes: message_bytes?,
                message_timeout,
                reconnect_delay,
            }))
        }
        other => {
            ctx.err(
                kind_span(),
                &f("kind"),
                format!(
                    "unknown kind {other:?} (expected \"requests\", \"websocket\" or \"stream\")"
                ),
            );
            None
        }
    }
}

/// Validates `over` merged onto `base`; `span` is where to report a missing
/// limit (when `need_limit`).
pub(super) fn load_spec(
    ctx: &mut Ctx<'_>,
    base: &RawLoad,
    over: &RawLoad,
    (span, field): (Range<usize>, &str),
    need_limit: bool,
) -> Option<LoadSpec> {
    let l = base.merged(over);
    let f = |name: &str| format!("{field}.{name}");
    let concurrency = match &l.concurrency {
        Some(c) => ctx.count(c, &f("concurrency"), 1),
        None => Some(1),
    };
    let requests = match &l.requests {
        Some(r) => ctx.count(r, &f("requests"), 1).map(Some),
        None => Some(None),
    };
    let duration = match &l.duration {
        Some(d) => ctx.positive_duration(d, &f("duration")).map(Some),
        None => Some(None),
    };
    let rate = match &l.rate {
        Some(r) if !(r.get_ref().is_finite() && *r.get_ref() > 0.0) => {
            ctx.err(
                r.span(),
                &f("rate"),
                "must be a number of requests per second above 0",
            );
            None
        }
        Some(r) => Some(Some(*r.get_ref())),
        None => Some(None),
    };
    let timeout = ctx.duration_or(l.timeout.as_ref(), &f("timeout"), Duration::from_secs(10));
    let bucket = ctx.duration_or(l.bucket.as_ref(), &f("bucket"), Duration::from_millis(100));
    let path = match &l.path {
        Some(p) if !p.get_ref().starts_with('/') => {
            ctx.err(p.span(), &f("path"), "must start with `/`");
            None
        }
        Some(p) => Some(p.get_ref().clone()),
        None => Some("/".to_owned()),
    };
    let requests_of = super::request::requests(ctx, &l, field);
    let kind = load_kind(ctx, &l, field);
    if need_limit && l.requests.is_none() && l.duration.is_none() {
        ctx.err(
            span,
            &f("requests"),
            "the load needs a limit: `requests = N` and/or `duration = \"10s\"`",
        );
        return None;
    }
    let r = requests_of?;
    let tls = load_tls(ctx, &l, field);
    let http2 = load_h2(ctx, &l, field);
    let http2 = http2?;
    let kind = kind?;
    // A WebSocket load goes to the built-in origin's echo unless told otherwise.
    let path = match (&l.path, kind) {
        (None, LoadKind::WebSocket(_)) => Some("/ws".to_owned()),
        _ => path,
    };
    let spec = LoadSpec {
        kind,
        tls: tls?,
        http2,
        method: r.method,
        headers: r.headers,
        body: r.body,
        content_type: r.content_type,
        mix: r.mix,
        think_time: r.think_time,
        retry: r.retry,
        concurrency: concurrency?,
        requests: requests?,
        duration: duration?,
        rate: rate?,
        // HTTP/2 keeps its connections: the reports say so.
        keep_alive: http2.is_some() || l.keep_alive.as_ref().is_some_and(|k| *k.get_ref()),
        timeout,
        path: path?,
        bucket,
    };
    if let Err(e) = spec.check_loadgen() {
        // Where loadgen's limit applies: the field as written, else the table.
        let (name, reason) = match &e {
            LoadError::InvalidConfig { field, reason } => (*field, reason.clone()),
            LoadError::InvalidUrl { reason, .. } => ("path", reason.clone()),
            other => ("path", other.to_string()),
        };
        let at = match name {
            "concurrency" => l.concurrency.as_ref().map(Spanned::span),
            "requests" => l.requests.as_ref().map(Spanned::span),
            "rate" => l.rate.as_ref().map(Spanned::span),
            "duration" => l.duration.as_ref().map(Spanned::span),
            "timeout" => l.timeout.as_ref().map(Spanned::span),
            "bucket" => l.bucket.as_ref().map(Spanned::span),
            "path" => l.path.as_ref().map(Spanned::span),
            "method" => l.method.as_ref().map(Spanned::span),
            "headers" => l.headers.as_ref().map(Spanned::span),
            "think_time" => l.think_time.as_ref().map(Spanned::span),
            "mix" => l.request.as_ref().map(Spanned::span),
            "streams" => l.streams.as_ref().map(Spanned::span),
            "retry" => l.retry.as_ref().map(Spanned::span),
            "ws" => l.kind.as_ref().map(Spanned::span),
            "ws.message_bytes" => l.message_bytes.as_ref().map(Spanned::span),
            "ws.message_interval" => l.message_interval.as_ref().map(Spanned::span),
            "ws.message_timeout" => l.message_timeout.as_ref().map(Spanned::span),
            "ws.reconnect_delay" => l.reconnect_delay.as_ref().map(Spanned::span),
            _ => None,
        };
        // loadgen calls the mix `mix`; the scenario calls it `request`, and
        // names the WebSocket settings without loadgen's `ws.` prefix.
        let name = match name {
            "mix" => "request",
            "ws" => "kind",
            n => n.strip_prefix("ws.").unwrap_or(n),
        };
        ctx.err(at.unwrap_or(span), &f(name), reason);
        return None;
    }
    Some(spec)
}
