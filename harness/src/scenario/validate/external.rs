//! `[proxy] kind = "external"`: a server reloadbench attaches to and does
//! not start (`target`, `ca_file` / `insecure` for https, `ready`,
//! `version`), and the check that the other kinds do not use its fields.

use toml::Spanned;

use super::Ctx;
use super::proxy::FieldSpan;
use super::steps::{DEFAULT_READY_TIMEOUT, readiness};
use crate::scenario::raw::RawProxy;
use crate::scenario::{ExternalProxy, LoadSpec, Readiness, ReadySpec, Target};

/// Fields of the command kind an external server takes as well.
const SHARED_WITH_COMMAND: [&str; 2] = ["ready", "version"];

/// Validates an external server's table.
pub(super) fn external(
    ctx: &mut Ctx<'_>,
    raw: &Spanned<RawProxy>,
    prefix: &str,
    reference_fields: &[FieldSpan<'_>],
    command_fields: &[FieldSpan<'_>],
) -> Option<ExternalProxy> {
    let p = raw.get_ref();
    let foreign = reference_fields.iter().chain(
        command_fields
            .iter()
            .filter(|(n, _)| !SHARED_WITH_COMMAND.contains(n)),
    );
    let mut ok = true;
    for (name, span) in foreign {
        if let Some(span) = span {
            let msg = "not for kind = \"external\" (reloadbench does not start, stop or \
                       configure an external server; act on it with do = \"exec\" or \
                       do = \"signal\")";
            ctx.err(span.clone(), &format!("{prefix}.{name}"), msg);
            ok = false;
        }
    }
    let Some(t) = &p.target else {
        ctx.err(
            raw.span(),
            &format!("{prefix}.target"),
            "kind = \"external\" needs `target` (e.g. \"http://127.0.0.1:8080/\")",
        );
        return None;
    };
    let target = match parse_target(t.get_ref()) {
        Ok(target) => Some(target),
        Err(why) => {
            ctx.err(t.span(), &format!("{prefix}.target"), why);
            None
        }
    };
    let insecure = p.insecure.as_ref().is_some_and(|i| *i.get_ref());
    let ca_file = p.ca_file.as_ref().map(|c| ctx.dir.join(c.get_ref()));
    if let Some(target) = &target {
        let tls_field = p
            .ca_file
            .as_ref()
            .map(|c| ("ca_file", c.span()))
            .or_else(|| p.insecure.as_ref().map(|i| ("insecure", i.span())));
        match (target.tls, &ca_file, insecure, tls_field) {
            (false, _, _, Some((name, span))) => {
                ctx.err(
                    span,
                    &format!("{prefix}.{name}"),
                    "only for an https:// target",
                );
                ok = false;
            }
            (true, None, false, _) => {
                ctx.err(
                    t.span(),
                    &format!("{prefix}.target"),
                    "an https:// target needs the CA that signed the server's certificate \
                     (ca_file = \"PATH\") or, to skip verification, insecure = true",
                );
                ok = false;
            }
            (true, Some(_), true, Some((_, span))) => {
                ctx.err(
                    span,
                    &format!("{prefix}.insecure"),
                    "either ca_file or insecure = true, not both",
                );
                ok = false;
            }
            (true, Some(path), false, Some((_, span))) if !path.is_file() => {
                ctx.err(
                    span,
                    &format!("{prefix}.ca_file"),
                    format!("cannot read {}", path.display()),
                );
                ok = false;
            }
            _ => {}
        }
    }
    let ready = match &p.ready {
        Some(r) => readiness(ctx, r, &format!("{prefix}.ready")).and_then(|spec| {
            let why = match spec.how {
                Readiness::Port | Readiness::Http(_) | Readiness::LogFile { .. } => {
                    return Some(spec);
                }
                Readiness::Log(_) => {
                    "an external server prints nothing reloadbench reads: name the file its \
                     log goes to with log_file = \"PATH\""
                }
                Readiness::Event | Readiness::PidFile(_) => {
                    "an external server is ready by port = true, http = \"/...\" or \
                     { log_file = \"PATH\", log = \"TEXT\" }"
                }
            };
            ctx.err(r.span(), &format!("{prefix}.ready"), why);
            None
        }),
        None => Some(ReadySpec {
            how: Readiness::Port,
            timeout: DEFAULT_READY_TIMEOUT,
        }),
    };
    if let (
        Some(t),
        Some(ReadySpec {
            how: Readiness::Http(_),
            ..
        }),
        Some(r),
    ) = (&target, &ready, &p.ready)
        && t.tls
    {
        ctx.err(
            r.span(),
            &format!("{prefix}.ready"),
            "http readiness speaks plain HTTP: with an https:// target use port = true or log_file",
        );
        ok = false;
    }
    let version = match &p.version {
        Some(v) => ctx.template(v, &format!("{prefix}.version")).map(Some),
        None => Some(None),
    };
    if !ok {
        return None;
    }
    Some(ExternalProxy {
        target: target?,
        ca_file: if insecure { None } else { ca_file },
        insecure,
        ready: ready?,
        version: version?,
        reloads_in_place: p.reloads_in_place.as_ref().is_some_and(|b| *b.get_ref()),
    })
}

/// Fits a case's load to an external target: the load speaks TLS exactly
/// when the target is `https://` (`tls = true` in `[load]`), and the
/// target's path is the load's unless `[load] path` says otherwise. False
/// (with the error recorded) when they disagree.
pub(super) fn fit_load(
    ctx: &mut Ctx<'_>,
    load: &mut LoadSpec,
    x: &ExternalProxy,
    span: std::ops::Range<usize>,
    field: &str,
) -> bool {
    let msg = match (x.target.tls, load.tls.is_some()) {
        (true, false) => Some("an https:// target needs tls = true in [load]"),
        (false, true) => Some("tls = true in [load] needs an https:// target"),
        _ => None,
    };
    if let Some(msg) = msg {
        ctx.err(span, &format!("{field}.load.tls"), msg);
        return false;
    }
    if x.target.path != "/" {
        if load.path != "/" && load.path != x.target.path {
            let msg = format!(
                "[load] path {:?} and the target's path {:?} disagree: write the path once",
                load.path, x.target.path
            );
            ctx.err(span, &format!("{field}.load.path"), msg);
            return false;
        }
        load.path.clone_from(&x.target.path);
    }
    true
}

/// For the reference and command kinds: `target`, `ca_file`, `insecure` and
/// `reloads_in_place` belong to an external server.
pub(super) fn reject_external_fields(ctx: &mut Ctx<'_>, p: &RawProxy, prefix: &str, kind: &str) {
    let fields = [
        ("target", p.target.as_ref().map(Spanned::span)),
        ("ca_file", p.ca_file.as_ref().map(Spanned::span)),
        ("insecure", p.insecure.as_ref().map(Spanned::span)),
        (
            "reloads_in_place",
            p.reloads_in_place.as_ref().map(Spanned::span),
        ),
    ];
    for (name, span) in fields {
        if let Some(span) = span {
            let msg = format!("only for kind = \"external\" (this proxy is kind = \"{kind}\")");
            ctx.err(span, &format!("{prefix}.{name}"), msg);
        }
    }
}

/// Splits `http://HOST[:PORT][/PATH]` or `https://...`; HOST is a name, an
/// IPv4 address or an IPv6 address in brackets.
pub(crate) fn parse_target(url: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(format!(
            "{url:?} is not an http:// or https:// URL (e.g. \"http://127.0.0.1:8080/\")"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || path.contains('#') {
        return Err(format!(
            "{url:?}: user names and fragments are not supported"
        ));
    }
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let Some((h, after)) = r.split_once(']') else {
            return Err(format!("{url:?}: an IPv6 address needs its closing ]"));
        };
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let port = match port {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{url:?}: {p:?} is not a port")),
        },
    };
    Ok(Target {
        url: url.to_owned(),
        tls,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        addrs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_scheme_host_port_and_path() {
        let t = parse_target("http://127.0.0.1:8080/x?y=1").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 8080, "/x?y=1")
        );
        let t = parse_target("https://[::1]/").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "::1", 443));
        let t = parse_target("http://localhost").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        for bad in [
            "ftp://x/",
            "http://:80/",
            "http://h:0/",
            "http://h:x/",
            "http://u@h/",
            "http://[::1/",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
