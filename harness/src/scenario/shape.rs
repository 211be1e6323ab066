//! The shape of a scenario file, checked before serde sees it: every field
//! name and every value's type, all at once, in the scenario's words.
//!
//! serde stops at the first problem and speaks Rust ("invalid type: string
//! \"big\", expected i64"). This pass walks the parsed TOML document (with
//! spans) against [`SCENARIO`], a table of the fields `raw.rs` accepts, and
//! reports each unknown field (with "did you mean" for a near miss, and the
//! fields the table takes), each value of the wrong type ("expected a whole
//! number, found \"big\" (a string)") and each unknown expectation metric,
//! with the dotted path (`load.concurency`, `case[1].actions[0].every`) and
//! its place in the file. When it finds nothing, serde and the validation
//! proper run as before; their messages cover what values mean.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::expect::{ExpectParseError, distance, parse_condition};

/// What a field holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A quoted string.
    Str,
    /// A string holding a duration (its content is checked later).
    Duration,
    /// A TOML integer.
    Whole,
    /// An integer or a float.
    Number,
    /// `true` or `false`.
    Bool,
    /// A table with the given fields.
    Table(&'static Shape),
    /// An array of tables with the given fields.
    Tables(&'static Shape),
    /// A table of expectations: any metric name (checked for near misses).
    Expect,
    /// A table with free keys (e.g. `[proxy.reload]`), values of any type.
    FreeTable,
    /// A table with free keys whose values are strings (e.g. `headers`).
    StrTable,
    /// Anything (checked later).
    Any,
}

impl Kind {
    /// What the scenario expects here, in its own words.
    fn words(self) -> String {
        match self {
            Kind::Str => "a string in quotes".to_owned(),
            Kind::Duration => "a duration like \"10s\" or \"500ms\" (in quotes)".to_owned(),
            Kind::Whole => "a whole number".to_owned(),
            Kind::Number => "a number".to_owned(),
            Kind::Bool => "true or false".to_owned(),
            Kind::Table(s) => format!("a table ({})", s.what),
            Kind::Tables(s) => format!("a list of tables ({})", s.what),
            Kind::Expect => "a table of expectations like { failed = 0 }".to_owned(),
            Kind::FreeTable => "a table".to_owned(),
            Kind::StrTable => "a table of strings like { \"X-Name\" = \"value\" }".to_owned(),
            Kind::Any => "a value".to_owned(),
        }
    }
}

/// The fields of one table.
#[derive(Debug)]
struct Shape {
    /// How a reader knows the table, e.g. `[load]`.
    what: &'static str,
    fields: &'static [(&'static str, Kind)],
}

const LOAD: Shape = Shape {
    what: "[load]",
    fields: &[
        ("concurrency", Kind::Whole),
        ("requests", Kind::Whole),
        ("duration", Kind::Duration),
        ("rate", Kind::Number),
        ("keep_alive", Kind::Bool),
        ("timeout", Kind::Duration),
        ("path", Kind::Str),
        ("bucket", Kind::Duration),
        ("method", Kind::Str),
        ("body", Kind::Str),
        ("body_file", Kind::Str),
        ("content_type", Kind::Str),
        ("headers", Kind::StrTable),
        ("request", Kind::Tables(&REQUEST)),
        ("think_time", Kind::Duration),
        ("retry", Kind::Str),
        ("tls", Kind::Bool),
        ("tls_resume", Kind::Bool),
        ("tls_version", Kind::Str),
        ("http2", Kind::Bool),
        ("streams", Kind::Whole),
        ("retry_refused", Kind::Bool),
        ("kind", Kind::Str),
        ("message_interval", Kind::Duration),
        ("message_bytes", Kind::Whole),
        ("message_timeout", Kind::Duration),
        ("reconnect_delay", Kind::Duration),
    ],
};

const REQUEST: Shape = Shape {
    what: "[[load.request]]",
    fields: &[
        ("weight", Kind::Whole),
        ("method", Kind::Str),
        ("path", Kind::Str),
        ("body", Kind::Str),
        ("body_file", Kind::Str),
        ("content_type", Kind::Str),
        ("headers", Kind::StrTable),
    ],
};

const ORIGIN: Shape = Shape {
    what: "[origin]",
    fields: &[
        ("body_bytes", Kind::Whole),
        ("delay", Kind::Duration),
        ("command", Kind::Str),
        ("ready", Kind::Any),
        ("binary", Kind::Str),
        ("install", Kind::Str),
    ],
};

const PROXY: Shape = Shape {
    what: "[proxy]",
    fields: &[
        ("kind", Kind::Str),
        ("drain_deadline", Kind::Duration),
        ("idle_close", Kind::Duration),
        ("ready_timeout", Kind::Duration),
        ("generation_header", Kind::Bool),
        ("share_ticket_keys", Kind::Bool),
        ("ticket_keys_file", Kind::Any),
        ("drain_tunnels", Kind::Str),
        ("binary", Kind::Str),
        ("install", Kind::Str),
        ("version", Kind::Str),
        ("config_template", Kind::Str),
        ("config_name", Kind::Str),
        ("pidfile", Kind::Str),
        ("stats_socket", Kind::Str),
        ("main_pid", Kind::Str),
        ("start", Kind::Str),
        ("ready", Kind::Any),
        ("stop", Kind::Any),
        ("stop_timeout", Kind::Duration),
        ("restart", Kind::Any),
        ("reload", Kind::FreeTable),
        ("target", Kind::Str),
        ("ca_file", Kind::Str),
        ("insecure", Kind::Bool),
        ("reloads_in_place", Kind::Bool),
    ],
};

const ACTION: Shape = Shape {
    what: "an action like { at = \"1s\", do = \"restart\" }",
    fields: &[
        ("at", Kind::Duration),
        ("every", Kind::Duration),
        ("count", Kind::Whole),
        ("start", Kind::Duration),
        ("after_requests", Kind::Whole),
        ("do", Kind::Str),
        ("mode", Kind::Str),
        ("variant", Kind::Str),
        ("signal", Kind::Str),
        ("target", Kind::Str),
        ("command", Kind::Str),
        ("timeout", Kind::Duration),
        ("key", Kind::Str),
        ("value", Kind::Any),
        ("restart", Kind::Bool),
        ("pid_file", Kind::Str),
        ("pid_command", Kind::Str),
    ],
};

const CASE: Shape = Shape {
    what: "[[case]]",
    fields: &[
        ("name", Kind::Str),
        ("description", Kind::Str),
        ("load", Kind::Table(&LOAD)),
        ("proxy", Kind::Table(&PROXY)),
        ("actions", Kind::Tables(&ACTION)),
        ("expect", Kind::Expect),
        ("repeat", Kind::Whole),
    ],
};

const RUN: Shape = Shape {
    what: "[run]",
    fields: &[("repeat", Kind::Whole)],
};

const SCENARIO: Shape = Shape {
    what: "the scenario file",
    fields: &[
        ("name", Kind::Str),
        ("description", Kind::Str),
        ("origin", Kind::Table(&ORIGIN)),
        ("load", Kind::Table(&LOAD)),
        ("proxy", Kind::Table(&PROXY)),
        ("case", Kind::Tables(&CASE)),
        ("repeat", Kind::Whole),
        ("run", Kind::Table(&RUN)),
    ],
};

/// One problem: byte span, dotted field path, message.
pub(super) type ShapeError = (Range<usize>, String, String);

/// What the check found.
#[derive(Debug, Default)]
pub(super) struct Findings {
    /// Unknown fields and values of the wrong type: serde would stop at the
    /// first of them.
    pub(super) shape: Vec<ShapeError>,
    /// Unknown expectation metrics (the validation reports these too, so
    /// they are only used when `shape` is not empty).
    pub(super) metrics: Vec<ShapeError>,
}

/// Checks `source`; `None` when it is not valid TOML (serde's syntax error
/// then says where).
pub(super) fn check(source: &str) -> Option<Findings> {
    let doc = DeTable::parse(source).ok()?;
    let mut found = Findings::default();
    table(&mut found, doc.get_ref(), &SCENARIO, "");
    Some(found)
}

fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn table(found: &mut Findings, t: &DeTable<'_>, shape: &Shape, at: &str) {
    for (key, value) in t {
        let name = key.get_ref().as_ref();
        let field = path(at, name);
        match shape.fields.iter().find(|(f, _)| *f == name) {
            Some((_, kind)) => self::value(found, value, *kind, &field),
            None => found
                .shape
                .push((key.span(), field, unknown_field(name, shape))),
        }
    }
}

fn value(found: &mut Findings, v: &Spanned<DeValue<'_>>, kind: Kind, field: &str) {
    let ok = match (kind, v.get_ref()) {
        (Kind::Any, _)
        | (Kind::Str | Kind::Duration, DeValue::String(_))
        | (Kind::Whole, DeValue::Integer(_))
        | (Kind::Number, DeValue::Integer(_) | DeValue::Float(_))
        | (Kind::Bool, DeValue::Boolean(_))
        | (Kind::FreeTable, DeValue::Table(_)) => true,
        (Kind::StrTable, DeValue::Table(t)) => {
            for (key, v) in t {
                if !matches!(v.get_ref(), DeValue::String(_)) {
                    let at = path(field, key.get_ref());
                    found
                        .shape
                        .push((v.span(), at, expected(Kind::Str, v.get_ref())));
                }
            }
            true
        }
        (Kind::Table(shape), DeValue::Table(t)) => {
            table(found, t, shape, field);
            true
        }
        (Kind::Tables(shape), DeValue::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("{field}[{i}]");
                match item.get_ref() {
                    DeValue::Table(t) => table(found, t, shape, &at),
                    _ => found.shape.push((
                        item.span(),
                        at,
                        expected(Kind::Table(shape), item.get_ref()),
                    )),
                }
            }
            true
        }
        (Kind::Expect, DeValue::Table(t)) => {
            expectations(found, t, field);
            true
        }
        _ => false,
    };
    if !ok {
        found
            .shape
            .push((v.span(), field.to_owned(), expected(kind, v.get_ref())));
    }
}

/// Unknown metric names of `expect` (`per_reload.x` or `failed.POST` written
/// as a dotted key arrives as a nested table).
fn expectations(found: &mut Findings, t: &DeTable<'_>, field: &str) {
    for (key, v) in t {
        let name = key.get_ref().as_ref();
        let mut keys: Vec<(String, Range<usize>)> = Vec::new();
        flat_keys(name.to_owned(), v, &mut keys);
        for (k, span) in keys {
            // The value does not matter here: only whether the metric exists.
            if let Err(e @ ExpectParseError::UnknownMetric { .. }) =
                parse_condition(&k, &toml::Value::Integer(0))
            {
                found.metrics.push((span, path(field, &k), e.to_string()));
            }
        }
    }
}

/// `key` and its place, with a table value's entries as `key.sub` (at any
/// depth: `failed.POST`, `per_reload.failed.POST`).
fn flat_keys(key: String, v: &Spanned<DeValue<'_>>, out: &mut Vec<(String, Range<usize>)>) {
    match v.get_ref() {
        DeValue::Table(sub) => {
            for (k, x) in sub {
                flat_keys(format!("{key}.{}", k.get_ref()), x, out);
            }
        }
        _ => out.push((key, v.span())),
    }
}

/// `expected a whole number, found "big" (a string)`.
fn expected(kind: Kind, found: &DeValue<'_>) -> String {
    format!("expected {}, found {}", kind.words(), describe(found))
}

/// A value as the reader wrote it, with its kind in words.
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            // A long value is shown by its start: the message names the field.
            let shown: String = s.chars().take(40).collect();
            let cut = if shown.len() < s.len() { "…" } else { "" };
            format!("{shown:?}{cut} (a string)")
        }
        DeValue::Integer(i) => format!("{} (a whole number)", i.as_str()),
        DeValue::Float(f) => format!("{} (a number with a fraction)", f.as_str()),
        DeValue::Boolean(b) => format!("{b} (true or false)"),
        DeValue::Datetime(d) => format!("{d} (a date)"),
        DeValue::Array(_) => "a list [...]".to_owned(),
        DeValue::Table(_) => "a table { ... }".to_owned(),
    }
}

/// `unknown field `concurency`, did you mean `concurrency`? ([load] takes: ...)`.
fn unknown_field(name: &str, shape: &Shape) -> String {
    let names: Vec<&str> = shape.fields.iter().map(|(f, _)| *f).collect();
    let mut msg = format!("unknown field `{name}`");
    if let Some(near) = closest(name, &names) {
        msg.push_str(&format!(", did you mean `{near}`?"));
    }
    msg.push_str(&format!(" ({} takes: {})", shape.what, names.join(", ")));
    msg
}

/// The candidate nearest to `word` when it is a near miss: edit distance at
/// most 2, and less than half the word (so `x` is not "near" `at`).
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2 && *d * 2 < word.len().max(c.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_within_two_edits_and_under_half_the_word() {
        let load: Vec<&str> = LOAD.fields.iter().map(|(f, _)| *f).collect();
        assert_eq!(closest("concurency", &load), Some("concurrency"));
        assert_eq!(closest("keepalive", &load), Some("keep_alive"));
        assert_eq!(closest("timout", &load), Some("timeout"));
        assert_eq!(closest("banana", &load), None);
        assert_eq!(closest("x", &["at"]), None);
    }

    #[test]
    fn every_raw_field_is_in_the_shape() {
        // A field the serde structs accept but the shape does not know would
        // be refused here: the valid scenarios of the repository must pass.
        for file in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            let text = std::fs::read_to_string(&file).unwrap();
            let found = check(&text).unwrap();
            assert!(
                found.shape.is_empty(),
                "{}: {:?}",
                file.display(),
                found.shape
            );
            assert!(
                found.metrics.is_empty(),
                "{}: {:?}",
                file.display(),
                found.metrics
            );
        }
    }
}
