//! Turns a [`RawScenario`] into a [`Scenario`], collecting every error with
//! its place in the file.

mod action;
mod case;
mod external;
#[cfg(test)]
pub(super) use external::parse_target;
mod load;
mod proxy;
mod repeat;
mod request;
mod steps;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ScenarioError, ScenarioErrors, line_col};
use super::raw::{RawLoad, RawScenario, SStr};
use super::template::Template;
use super::{ProxySpec, ReferenceProxy, Scenario};

/// Error collector: knows the file; spans become line:col when the errors
/// are listed.
pub(super) struct Ctx<'a> {
    file: &'a Path,
    /// Directory of the scenario file (config templates are relative to it).
    pub(super) dir: PathBuf,
    errors: Vec<(usize, ScenarioError)>,
}

impl Ctx<'_> {
    /// Records an error at `span` for `field` (its line and column are
    /// found for the errors listed, once they are sorted).
    pub(super) fn err(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        self.errors.push((
            span.start,
            ScenarioError {
                file: self.file.to_owned(),
                position: None,
                field: field.to_owned(),
                message: message.into(),
            },
        ));
    }

    /// Parses a humantime duration (`10s`, `500ms`).
    pub(super) fn duration(&mut self, s: &SStr, field: &str) -> Option<Duration> {
        match humantime::parse_duration(s.get_ref().trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                let msg = format!(
                    "bad duration {:?}: {e} (write e.g. \"10s\", \"500ms\")",
                    s.get_ref()
                );
                self.err(s.span(), field, msg);
                None
            }
        }
    }

    /// A duration that must be above zero.
    pub(super) fn positive_duration(&mut self, s: &SStr, field: &str) -> Option<Duration> {
        let d = self.duration(s, field)?;
        if d.is_zero() {
            self.err(s.span(), field, "must be more than zero");
            return None;
        }
        Some(d)
    }

    /// An optional duration with a default.
    pub(super) fn duration_or(
        &mut self,
        s: Option<&SStr>,
        field: &str,
        default: Duration,
    ) -> Duration {
        s.and_then(|s| self.positive_duration(s, field))
            .unwrap_or(default)
    }

    /// A template whose placeholders are all known.
    pub(super) fn template(&mut self, s: &SStr, field: &str) -> Option<Template> {
        self.template_at(s.span(), s.get_ref(), field)
    }

    /// A template found at `span` whose placeholders are all known.
    pub(super) fn template_at(
        &mut self,
        span: Range<usize>,
        s: &str,
        field: &str,
    ) -> Option<Template> {
        let t = Template::new(s);
        match t.check() {
            Ok(()) => Some(t),
            Err(e) => {
                self.err(span, field, e.to_string());
                None
            }
        }
    }

    /// A non-negative integer.
    pub(super) fn count(&mut self, v: &toml::Spanned<i64>, field: &str, min: i64) -> Option<u64> {
        let n = *v.get_ref();
        if n < min {
            self.err(
                v.span(),
                field,
                format!("must be at least {min}, found {n}"),
            );
            return None;
        }
        u64::try_from(n).ok()
    }
}

/// Parses and validates `source` read from `file`.
pub(super) fn validate(file: &Path, source: &str) -> Result<Scenario, ScenarioErrors> {
    if let Some(found) = super::shape::check(source)
        && !found.shape.is_empty()
    {
        return Err(shape_errors(file, source, found));
    }
    let raw: RawScenario = toml::from_str(source).map_err(|e| syntax_error(file, source, &e))?;
    let dir = file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut ctx = Ctx {
        file,
        dir: dir.clone(),
        errors: Vec::new(),
    };
    let id = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();

    let external = raw
        .proxy
        .as_ref()
        .and_then(|p| p.get_ref().kind.as_ref())
        .is_some_and(|k| k.get_ref() == "external");
    let origin = match &raw.origin {
        Some(o) => load::origin(&mut ctx, o),
        // An external server serves without one unless the scenario asks.
        None if external => Some(super::OriginSpec::None),
        None => Some(load::default_origin()),
    };
    let base_load = raw
        .load
        .as_ref()
        .map(|l| l.get_ref().clone())
        .unwrap_or_default();
    let load_span = raw.load.as_ref().map_or(0..0, toml::Spanned::span);
    let scenario_load = load::load_spec(
        &mut ctx,
        &base_load,
        &RawLoad::default(),
        (load_span, "load"),
        false,
    );
    let proxy = match &raw.proxy {
        Some(p) => proxy::proxy(&mut ctx, p, "proxy"),
        None => Some(ProxySpec::Reference(ReferenceProxy::default())),
    };
    let repeat = repeat::scenario_repeat(&mut ctx, &raw);
    let cases = case::cases(&mut ctx, &raw, &base_load, proxy.as_ref(), repeat);
    if raw.cases.is_empty() {
        ctx.err(
            0..0,
            "case",
            "no [[case]]: a scenario needs at least one case",
        );
    }

    let mut errors = std::mem::take(&mut ctx.errors);
    match (origin, scenario_load, proxy) {
        (Some(origin), Some(load), Some(proxy)) if errors.is_empty() => Ok(Scenario {
            name: raw.name.map_or_else(|| id.clone(), |n| n.into_inner()),
            id,
            description: raw.description.unwrap_or_default(),
            path: file.to_owned(),
            dir,
            source: source.to_owned(),
            origin,
            load,
            proxy,
            cases,
        }),
        _ => {
            // A bad scenario-wide field is seen again in every case's merged load.
            let mut seen = std::collections::HashSet::new();
            errors.retain(|(offset, e)| seen.insert((*offset, e.message.clone())));
            Err(listed(file, source, errors))
        }
    }
}

/// At most this many errors are listed, then how many more there are.
const ERRORS_SHOWN: usize = 100;

/// The errors in file order: the first [`ERRORS_SHOWN`] with their line and
/// column, then a count of the rest.
fn listed(file: &Path, source: &str, mut errors: Vec<(usize, ScenarioError)>) -> ScenarioErrors {
    errors.sort_by_key(|(offset, _)| *offset);
    let more = errors.len().saturating_sub(ERRORS_SHOWN);
    errors.truncate(ERRORS_SHOWN);
    let mut errors: Vec<ScenarioError> = errors
        .into_iter()
        .map(|(offset, mut e)| {
            e.position = Some(line_col(source, offset));
            e
        })
        .collect();
    if more > 0 {
        errors.push(ScenarioError {
            file: file.to_owned(),
            position: None,
            field: String::new(),
            message: format!("and {more} more errors, not listed"),
        });
    }
    ScenarioErrors { errors }
}

/// Every unknown field, wrong type and unknown metric.
fn shape_errors(file: &Path, source: &str, found: super::shape::Findings) -> ScenarioErrors {
    let all = found.shape.into_iter().chain(found.metrics);
    let errors = all
        .map(|(span, field, message)| {
            let e = ScenarioError {
                file: file.to_owned(),
                position: None,
                field,
                message,
            };
            (span.start, e)
        })
        .collect();
    listed(file, source, errors)
}

fn syntax_error(file: &Path, source: &str, e: &toml::de::Error) -> ScenarioErrors {
    let position = e.span().map(|s| line_col(source, s.start));
    let message = e.message().trim().to_owned();
    let mut field = field_of_message(&message);
    if field.is_empty()
        && let Some(span) = e.span()
    {
        field = key_before(source, span.start);
    }
    ScenarioErrors {
        errors: vec![ScenarioError {
            file: file.to_owned(),
            position,
            field,
            message,
        }],
    }
}

/// The key of `key = value` when `offset` is where the value starts.
fn key_before(source: &str, offset: usize) -> String {
    let before = source.get(..offset).unwrap_or_default();
    let line = before.rsplit('\n').next().unwrap_or_default();
    let Some(lhs) = line.trim_end().strip_suffix('=') else {
        return String::new();
    };
    let lhs = lhs.trim_end();
    let start = lhs
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .map_or(0, |i| i + 1);
    lhs[start..].to_owned()
}

/// Pulls the field name out of serde's "unknown field `x`" / "missing field `x`" messages.
fn field_of_message(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("field"))
        .unwrap_or("")
        .to_owned()
}

impl Default for ReferenceProxy {
    fn default() -> ReferenceProxy {
        ReferenceProxy {
            drain_deadline: Duration::from_secs(10),
            idle_close: Duration::from_secs(1),
            ready_timeout: Duration::from_secs(5),
            generation_header: false,
            share_ticket_keys: true,
            ticket_keys_file: None,
            drain_tunnels: crate::scenario::DrainTunnels::Keep,
        }
    }
}
