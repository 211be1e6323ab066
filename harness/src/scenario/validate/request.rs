//! What each request of a load is: `method`, `body` / `body_file`,
//! `content_type`, `headers`, the weighted mix of `[[load.request]]`,
//! `think_time` and `retry`. Errors name the field and, in a mix, the entry
//! (`load.request[1].weight`).

use std::collections::BTreeMap;
use std::time::Duration;

use reloadbench_loadgen::{RequestKind, RetryPolicy};
use toml::Spanned;

use super::Ctx;
use crate::scenario::raw::{RawLoad, RawRequest, SStr, SVal};

/// The largest request body a scenario may send (`body` or `body_file`): it
/// is held in memory once per request kind.
pub(super) const MAX_BODY_BYTES: u64 = reloadbench_loadgen::body_file::MAX_BODY_BYTES;

/// The request settings of a load, validated.
#[derive(Debug, Default)]
pub(super) struct Requests {
    pub(super) method: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Option<Vec<u8>>,
    pub(super) content_type: Option<String>,
    pub(super) mix: Vec<RequestKind>,
    pub(super) think_time: Option<Duration>,
    pub(super) retry: RetryPolicy,
}

/// Validates the request fields of the merged load `l`; `field` is the
/// table's dotted name (`load`, `case[2].load`).
pub(super) fn requests(ctx: &mut Ctx<'_>, l: &RawLoad, field: &str) -> Option<Requests> {
    let f = |name: &str| format!("{field}.{name}");
    let mut ok = true;
    let method = match &l.method {
        Some(m) => method(ctx, m, &f("method")),
        None => Some("GET".to_owned()),
    };
    let headers = match &l.headers {
        Some(h) => headers(ctx, h, &f("headers")),
        None => Some(Vec::new()),
    };
    let body = body(
        ctx,
        (l.body.as_ref(), l.body_file.as_ref()),
        l.content_type.as_ref(),
        field,
    );
    let mix = match &l.request {
        Some(list) => {
            // A mix sets method and body per entry: one at the load's level
            // would be silently unused.
            for (present, name) in [
                (l.method.as_ref(), "method"),
                (l.body.as_ref(), "body"),
                (l.body_file.as_ref(), "body_file"),
                (l.content_type.as_ref(), "content_type"),
            ] {
                if let Some(v) = present {
                    ctx.err(
                        v.span(),
                        &f(name),
                        format!(
                            "with [[{field}.request]] entries each entry sets its own {name}: \
                             move it into the entries"
                        ),
                    );
                    ok = false;
                }
            }
            mix(ctx, list, &f("request"))
        }
        None => Some(Vec::new()),
    };
    let think_time = match &l.think_time {
        Some(t) => ctx
            .duration(t, &f("think_time"))
            .map(|d| (!d.is_zero()).then_some(d)),
        None => Some(None),
    };
    let retry = match &l.retry {
        Some(r) => match RetryPolicy::from_key(r.get_ref().trim()) {
            Some(p) => Some(p),
            None => {
                ctx.err(
                    r.span(),
                    &f("retry"),
                    format!(
                        "unknown retry policy {:?}: write \"none\" (the default: measure the \
                         server), \"safe\" (retry a retryable failure once on a new connection, \
                         as Go and browsers do) or \"both\" (retry, and report the raw outcomes \
                         and those after the retries)",
                        r.get_ref()
                    ),
                );
                None
            }
        },
        None => Some(RetryPolicy::None),
    };
    let (body, content_type) = body?;
    let r = Requests {
        method: method?,
        headers: headers?,
        body,
        content_type,
        mix: mix?,
        think_time: think_time?,
        retry: retry?,
    };
    ok.then_some(r)
}

/// A method: an upper-case token (`GET`, `POST`, `PURGE`), so that the
/// per-method metrics (`failed.POST`) name it as it was sent.
fn method(ctx: &mut Ctx<'_>, m: &SStr, field: &str) -> Option<String> {
    let s = m.get_ref();
    let token = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !token {
        ctx.err(
            m.span(),
            field,
            format!("bad method {s:?}: write an upper-case token such as \"GET\" or \"POST\""),
        );
        return None;
    }
    Some(s.clone())
}

/// `headers = { "X-Name" = "value" }`: token names, one-line string values.
fn headers(
    ctx: &mut Ctx<'_>,
    h: &Spanned<BTreeMap<String, SVal>>,
    field: &str,
) -> Option<Vec<(String, String)>> {
    let mut entries: Vec<(&String, &SVal)> = h.get_ref().iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    let mut out = Vec::new();
    let mut ok = true;
    for (name, v) in entries {
        let at = format!("{field}.{name}");
        let bad_name = name.is_empty()
            || name
                .bytes()
                .any(|b| b <= b' ' || b == b':' || b >= 0x7f || b"\"(),/;<=>?@[\\]{}".contains(&b));
        if bad_name {
            ctx.err(
                v.span(),
                &at,
                format!("bad header name {name:?}: a token such as \"X-Request-Kind\""),
            );
            ok = false;
            continue;
        }
        if reloadbench_loadgen::is_framing_header(name) {
            ctx.err(
                v.span(),
                &at,
                format!("{name} is written from the body (body, body_file), not given"),
            );
            ok = false;
            continue;
        }
        match v.get_ref() {
            toml::Value::String(s) if !s.contains(['\r', '\n']) => {
                out.push((name.clone(), s.clone()));
            }
            toml::Value::String(_) => {
                ctx.err(v.span(), &at, "a header value must be one line");
                ok = false;
            }
            other => {
                ctx.err(
                    v.span(),
                    &at,
                    format!("expected a string in quotes, found {}", other.type_str()),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `body` (inline text) or `body_file` (a file relative to the scenario
/// file), and its `content_type`; `field` is the table's dotted name.
#[allow(clippy::type_complexity)]
fn body(
    ctx: &mut Ctx<'_>,
    (inline, file): (Option<&SStr>, Option<&SStr>),
    content_type: Option<&SStr>,
    field: &str,
) -> Option<(Option<Vec<u8>>, Option<String>)> {
    let f = |name: &str| format!("{field}.{name}");
    let body = match (inline, file) {
        (Some(_), Some(file)) => {
            ctx.err(
                file.span(),
                &f("body_file"),
                "give `body` or `body_file`, not both",
            );
            return None;
        }
        (Some(text), None) => Some(text.get_ref().clone().into_bytes()),
        (None, Some(file)) => Some(body_file(ctx, file, &f("body_file"))?),
        (None, None) => None,
    };
    if let Some(b) = &body
        && b.len() as u64 > MAX_BODY_BYTES
    {
        let at = inline.or(file).map_or(0..0, Spanned::span);
        ctx.err(
            at,
            &f(if file.is_some() { "body_file" } else { "body" }),
            format!(
                "the body has {} bytes, at most {MAX_BODY_BYTES} (16 MiB)",
                b.len()
            ),
        );
        return None;
    }
    let content_type = match content_type {
        Some(ct) if body.is_none() => {
            ctx.err(
                ct.span(),
                &f("content_type"),
                "only with a body (`body` or `body_file`)",
            );
            return None;
        }
        Some(ct) if ct.get_ref().contains(['\r', '\n']) || ct.get_ref().trim().is_empty() => {
            ctx.err(
                ct.span(),
                &f("content_type"),
                "must be one non-empty line, e.g. \"application/json\"",
            );
            return None;
        }
        Some(ct) => Some(ct.get_ref().clone()),
        None => None,
    };
    Some((body, content_type))
}

/// The bytes of `body_file`, relative to the scenario file's directory.
fn body_file(ctx: &mut Ctx<'_>, file: &SStr, field: &str) -> Option<Vec<u8>> {
    let path = ctx.dir.join(file.get_ref());
    match reloadbench_loadgen::body_file::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            ctx.err(
                file.span(),
                field,
                format!(
                    "cannot read {} (relative to the scenario file): {e}",
                    path.display()
                ),
            );
            None
        }
    }
}

/// `[[load.request]]`: at least one entry, each with a weight of at least
/// 1, an upper-case method, a path starting with `/`, a body or none.
fn mix(
    ctx: &mut Ctx<'_>,
    list: &Spanned<Vec<Spanned<RawRequest>>>,
    field: &str,
) -> Option<Vec<RequestKind>> {
    if list.get_ref().is_empty() {
        ctx.err(
            list.span(),
            field,
            "an empty mix: give at least one [[load.request]] entry, or none at all",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, entry) in list.get_ref().iter().enumerate() {
        match kind(ctx, entry, &format!("{field}[{i}]")) {
            Some(k) => out.push(k),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn kind(ctx: &mut Ctx<'_>, entry: &Spanned<RawRequest>, field: &str) -> Option<RequestKind> {
    let r = entry.get_ref();
    let f = |name: &str| format!("{field}.{name}");
    let weight = match &r.weight {
        Some(w) => match u32::try_from(*w.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                ctx.err(
                    w.span(),
                    &f("weight"),
                    format!(
                        "must be a whole number from 1 to {}, found {}",
                        u32::MAX,
                        w.get_ref()
                    ),
                );
                None
            }
        },
        None => Some(1),
    };
    let method = match &r.method {
        Some(m) => method(ctx, m, &f("method")),
        None => Some("GET".to_owned()),
    };
    let path = match &r.path {
        Some(p) if !p.get_ref().starts_with('/') => {
            ctx.err(p.span(), &f("path"), "must start with `/`");
            None
        }
        Some(p) => Some(Some(p.get_ref().clone())),
        None => Some(None),
    };
    let headers = match &r.headers {
        Some(h) => headers(ctx, h, &f("headers")),
        None => Some(Vec::new()),
    };
    let body = body(
        ctx,
        (r.body.as_ref(), r.body_file.as_ref()),
        r.content_type.as_ref(),
        field,
    );
    let (body, content_type) = body?;
    Some(RequestKind {
        weight: weight?,
        method: method?,
        path: path?,
        headers: headers?,
        body,
        content_type,
    })
}
