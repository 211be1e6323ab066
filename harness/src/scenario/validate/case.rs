//! `[[case]]`: names, merged load, the action timeline and expectations.

use std::collections::{BTreeMap, HashSet};

use reloadbench_model::event::ReloadMode;
use toml::Spanned;

use super::Ctx;
use super::action::action;
use super::load::load_spec;
use super::proxy;
use crate::expect::{Expectation, parse_condition};
use crate::scenario::raw::{RawCase, RawLoad, RawProxy, RawScenario, SVal};
use crate::scenario::{ActionSpec, Case, ProxySpec, ReloadSpec};

pub(super) fn cases(
    ctx: &mut Ctx<'_>,
    raw: &RawScenario,
    base_load: &RawLoad,
    proxy: Option<&ProxySpec>,
    repeat: u32,
) -> Vec<Case> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, rc) in raw.cases.iter().enumerate() {
        let field = format!("case[{i}]");
        let c = rc.get_ref();
        let name = match &c.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                ctx.err(n.span(), &format!("{field}.name"), "must not be empty");
                None
            }
            Some(n) if n.get_ref().chars().any(char::is_control) => {
                ctx.err(
                    n.span(),
                    &format!("{field}.name"),
                    "must be one line without control characters (it heads tables and sections of the report)",
                );
                None
            }
            Some(n) if !names.insert(n.get_ref().clone()) => {
                ctx.err(
                    n.span(),
                    &format!("{field}.name"),
                    format!("duplicate case name {:?}", n.get_ref()),
                );
                None
            }
            Some(n) => Some(n.get_ref().clone()),
            None => {
                ctx.err(
                    rc.span(),
                    &format!("{field}.name"),
                    "every case needs a `name`",
                );
                None
            }
        };
        if let Some(case) = one_case(
            ctx,
            rc,
            &field,
            (base_load, raw.proxy.as_ref()),
            raw.load.as_ref().map(Spanned::span),
            proxy,
        ) && let Some(name) = name
        {
            let repeat = match &c.repeat {
                Some(r) => super::repeat::repeat(ctx, r, &format!("{field}.repeat")),
                None => repeat,
            };
            out.push(Case {
                name,
                repeat,
                ..case
            });
        }
    }
    out
}

fn one_case(
    ctx: &mut Ctx<'_>,
    rc: &Spanned<RawCase>,
    field: &str,
    (base_load, base_proxy): (&RawLoad, Option<&Spanned<RawProxy>>),
    base_span: Option<std::ops::Range<usize>>,
    proxy: Option<&ProxySpec>,
) -> Option<Case> {
    let c = rc.get_ref();
    let proxy = match (&c.proxy, proxy) {
        (Some(over), Some(_)) => case_proxy(ctx, base_proxy, over, field),
        (None, base) => base.cloned(),
        (Some(_), None) => None,
    };
    let proxy = proxy.as_ref();
    let over = c
        .load
        .as_ref()
        .map(|l| l.get_ref().clone())
        .unwrap_or_default();
    // A missing limit is reported where the load is written: the case's
    // [case.load], else the scenario's [load] (once for all cases).
    let case_load_field = format!("{field}.load");
    let (load_span, load_field) = match (&c.load, base_span) {
        (Some(l), _) => (l.span(), case_load_field.as_str()),
        (None, Some(b)) => (b, "load"),
        (None, None) => (rc.span(), case_load_field.as_str()),
    };
    let mut load = load_spec(ctx, base_load, &over, (load_span.clone(), load_field), true);
    if let (Some(l), Some(ProxySpec::External(x))) = (load.as_mut(), proxy) {
        let span = c
            .proxy
            .as_ref()
            .map_or_else(|| load_span.clone(), Spanned::span);
        if !super::external::fit_load(ctx, l, x, span, field) {
            return None;
        }
    }
    let mut actions = Vec::new();
    let mut actions_ok = true;
    for (j, ra) in c.actions.iter().enumerate() {
        let afield = format!("{field}.actions[{j}]");
        match action(ctx, ra, &afield, proxy, load.as_ref()) {
            Some(a) => actions.push(a),
            None => actions_ok = false,
        }
    }
    let master = actions
        .iter()
        .any(|a| a.what == ActionSpec::Reload(ReloadSpec::Reference(ReloadMode::MasterWorker)));
    if master {
        for (a, ra) in actions.iter().zip(&c.actions) {
            if let ActionSpec::Reload(ReloadSpec::Reference(
                m @ (ReloadMode::Naive | ReloadMode::FdPass),
            )) = a.what
            {
                let msg = format!(
                    "a case that reloads in master-worker mode runs refproxy as a master; \
                     it cannot also reload in {m} mode (use another case)"
                );
                ctx.err(ra.span(), &format!("{field}.actions"), msg);
                actions_ok = false;
            }
        }
    }
    // Judged on the file, so that one invalid reload does not also make the
    // case's reload expectations look misplaced.
    // An external server is replaced by its `exec` and `signal` actions.
    let external = matches!(proxy, Some(ProxySpec::External(_)));
    let has_reloads = c.actions.iter().any(|a| {
        a.get_ref().what.as_ref().is_some_and(|w| {
            matches!(w.get_ref().as_str(), "restart" | "reload" | "kill")
                || (external && matches!(w.get_ref().as_str(), "exec" | "signal"))
        })
    });
    let methods: Option<Vec<String>> = load
        .as_ref()
        .map(|l| l.methods().into_iter().map(str::to_owned).collect());
    let expect = match &c.expect {
        Some(e) => expectations(
            ctx,
            e.get_ref(),
            &format!("{field}.expect"),
            (has_reloads, methods.as_deref()),
        ),
        None => Some(Vec::new()),
    };
    if let (Some(l), Some(ProxySpec::Reference(r))) = (&load, proxy)
        && l.tls.is_none()
        && (!r.share_ticket_keys || r.ticket_keys_file.is_some())
    {
        ctx.err(
            c.proxy.as_ref().map_or_else(|| rc.span(), Spanned::span),
            &format!("{field}.proxy"),
            "share_ticket_keys and ticket_keys_file need a TLS load (`tls = true` in [load])",
        );
        return None;
    }
    Some(Case {
        name: String::new(),
        description: c.description.clone().unwrap_or_default(),
        load: load?,
        actions: actions_ok.then_some(actions)?,
        expect: expect?,
        master,
        proxy: proxy?.clone(),
        repeat: 1,
    })
}

/// `[case.proxy]` over the scenario's `[proxy]`, validated as a whole; a
/// `[case.proxy]` of another `kind` replaces the scenario's whole.
fn case_proxy(
    ctx: &mut Ctx<'_>,
    base: Option<&Spanned<RawProxy>>,
    over: &Spanned<RawProxy>,
    field: &str,
) -> Option<ProxySpec> {
    let base_raw = base.map(|b| b.get_ref().clone()).unwrap_or_default();
    let base_kind = base_raw
        .kind
        .as_ref()
        .map_or("reference", |k| k.get_ref().as_str());
    if let Some(k) = &over.get_ref().kind
        && k.get_ref() != base_kind
    {
        // Another kind of system under test (e.g. nginx next to refproxy):
        // the case's table alone describes it.
        return proxy::proxy(ctx, over, &format!("{field}.proxy"));
    }
    let merged = base_raw.merged(over.get_ref());
    proxy::proxy(
        ctx,
        &Spanned::new(over.span(), merged),
        &format!("{field}.proxy"),
    )
}

/// `key = value`, with a table value's entries as `key.sub = value` (at any depth).
fn flatten<'a>(key: String, v: &'a toml::Value, out: &mut Vec<(String, &'a toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                flatten(format!("{key}.{k}"), x, out);
            }
        }
        value => out.push((key, value)),
    }
}

fn expectations(
    ctx: &mut Ctx<'_>,
    map: &BTreeMap<String, SVal>,
    field: &str,
    (has_reloads, methods): (bool, Option<&[String]>),
) -> Option<Vec<Expectation>> {
    let mut entries: Vec<(&String, &SVal)> = map.iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    let mut out = Vec::new();
    let mut ok = true;
    for (key, v) in entries {
        // `per_reload.failed = ...` and `failed.POST = ...` arrive as nested tables.
        let mut flat: Vec<(String, &toml::Value)> = Vec::new();
        flatten(key.clone(), v.get_ref(), &mut flat);
        if flat.is_empty() {
            // `failed = {}`: a table that names no metric sets nothing.
            ctx.err(
                v.span(),
                &format!("{field}.{key}"),
                "an empty table sets no expectation: write a value, e.g. failed = 0",
            );
            ok = false;
        }
        for (k, value) in flat {
            let efield = format!("{field}.{k}");
            match parse_condition(&k, value) {
                Ok(e)
                    if e.metric.method().is_some_and(|m| {
                        methods.is_some_and(|sent| !sent.iter().any(|s| s == m))
                    }) =>
                {
                    let m = e.metric.method().unwrap_or_default();
                    let sent = methods.map(|s| s.join(", ")).unwrap_or_default();
                    ctx.err(
                        v.span(),
                        &efield,
                        format!(
                            "{k} counts {m} requests, and this case sends none (it sends {sent})"
                        ),
                    );
                    ok = false;
                }
                Ok(e) if e.metric.needs_reloads() && !has_reloads => {
                    ctx.err(
                        v.span(),
                        &efield,
                        format!(
                            "{k} needs a restart, reload or kill in the case's actions; \
                         this case has none"
                        ),
                    );
                    ok = false;
                }
                Ok(e) => out.push(e),
                Err(e) => {
                    ctx.err(v.span(), &efield, e.to_string());
                    ok = false;
                }
            }
        }
    }
    ok.then_some(out)
}
