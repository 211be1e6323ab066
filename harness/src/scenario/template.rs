//! Command and config templates with `{placeholder}` substitution.
//!
//! A placeholder is `{name}` where `name` is one of [`PLACEHOLDERS`]. Any
//! other brace is literal text (nginx blocks such as `events { }` need no
//! escaping), except `{word}` made only of lowercase letters and `_` that is
//! not a known placeholder: that is a typo and an error when the scenario is
//! validated. `{{` and `}}` write a literal `{` or `}`.

use std::collections::BTreeMap;

/// Every placeholder a template may use, with what it stands for.
pub(crate) const PLACEHOLDERS: [(&str, &str); 15] = [
    (
        "listen",
        "address the system under test listens on, `127.0.0.1:PORT`",
    ),
    ("listen_port", "port of `{listen}`"),
    ("origin", "address of the origin, `127.0.0.1:PORT`"),
    ("origin_port", "port of `{origin}`"),
    ("dir", "the case's working directory (absolute)"),
    (
        "config",
        "the config file rendered from `config_template` into `{dir}`",
    ),
    ("pidfile", "the pid file path (`pidfile` in `[proxy]`)"),
    ("pid", "the current main pid of the system under test"),
    (
        "stats_socket",
        "the control socket path (`stats_socket` in `[proxy]`)",
    ),
    (
        "generation",
        "1 for the first start, +1 for each reload or restart",
    ),
    (
        "scenario_dir",
        "the directory holding the scenario file (absolute)",
    ),
    (
        "cert",
        "with `tls = true`: the server certificate (PEM) the harness made for the run",
    ),
    ("key", "with `tls = true`: its private key (PEM, PKCS#8)"),
    (
        "cert_pem_bundle",
        "with `tls = true`: certificate and key in one PEM file (HAProxy's `crt`)",
    ),
    (
        "ca",
        "with `tls = true`: the run's CA certificate (PEM) that signed `{cert}`",
    ),
];

/// True when `name` is a known placeholder.
pub(crate) fn is_placeholder(name: &str) -> bool {
    PLACEHOLDERS.iter().any(|(n, _)| *n == name)
}

/// Values for placeholders, set by the orchestrator as they become known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    /// No values.
    pub(crate) fn new() -> Vars {
        Vars::default()
    }

    /// Sets `name` (without braces) to `value`; returns `self` for chaining.
    pub(crate) fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Vars {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    /// The value of `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// A placeholder used by the template has no value yet.
    #[error("placeholder {{{0}}} has no value here")]
    Unset(String),
    /// `{word}` names no known placeholder.
    #[error("unknown placeholder {{{0}}} (known: {list})", list = known_list())]
    Unknown(String),
    /// A quote in a command was not closed.
    #[error("unclosed quote or trailing backslash in command")]
    Unbalanced,
    /// The command renders to no words.
    #[error("empty command")]
    Empty,
}

fn known_list() -> String {
    PLACEHOLDERS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A piece of text with placeholders, as written in the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
}

/// One parsed part of a template.
enum Part<'a> {
    Text(&'a str),
    Var(&'a str),
}

impl Template {
    /// Wraps `text`; [`Template::check`] reports unknown placeholders.
    pub(crate) fn new(text: impl Into<String>) -> Template {
        Template { text: text.into() }
    }

    /// The text as written.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Names of the placeholders used, in order of appearance (with repeats).
    pub(crate) fn placeholders(&self) -> Vec<&str> {
        parts(&self.text)
            .into_iter()
            .filter_map(|p| match p {
                Part::Var(v) => Some(v),
                Part::Text(_) => None,
            })
            .collect()
    }

    /// Checks that every `{word}` is a known placeholder.
    pub(crate) fn check(&self) -> Result<(), TemplateError> {
        match self.placeholders().into_iter().find(|v| !is_placeholder(v)) {
            Some(v) => Err(TemplateError::Unknown(v.to_owned())),
            None => Ok(()),
        }
    }

    /// Substitutes every placeholder with its value.
    pub(crate) fn render(&self, vars: &Vars) -> Result<String, TemplateError> {
        render_str(&self.text, vars)
    }

    /// Splits a command into words as a shell would (quotes group words,
    /// backslashes escape; nothing is run by a shell), then substitutes
    /// placeholders in each word, so a value with spaces stays one argument.
    pub(crate) fn render_argv(&self, vars: &Vars) -> Result<Vec<String>, TemplateError> {
        let words = split_words(&self.text)?;
        if words.is_empty() {
            return Err(TemplateError::Empty);
        }
        words.iter().map(|w| render_str(w, vars)).collect()
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn render_str(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for part in parts(text) {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Var(v) if !is_placeholder(v) => return Err(TemplateError::Unknown(v.to_owned())),
            Part::Var(v) => match vars.get(v) {
                Some(value) => out.push_str(value),
                None => return Err(TemplateError::Unset(v.to_owned())),
            },
        }
    }
    Ok(out)
}

/// Splits text into literal parts and `{word}` placeholders.
fn parts(text: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut lit_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'{' || bytes[i] == b'}') && bytes.get(i + 1) == Some(&bytes[i]);
        if escaped {
            out.push(Part::Text(&text[lit_start..=i]));
            i += 2;
            lit_start = i;
            continue;
        }
        if bytes[i] == b'{' {
            let rest = &text[i + 1..];
            let word_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                .count();
            if word_len > 0 && rest.as_bytes().get(word_len) == Some(&b'}') {
                out.push(Part::Text(&text[lit_start..i]));
                out.push(Part::Var(&rest[..word_len]));
                i += word_len + 2;
                lit_start = i;
                continue;
            }
        }
        i += 1;
    }
    out.push(Part::Text(&text[lit_start..]));
    out
}

/// The words of a command, split as a POSIX shell splits them (single and
/// double quotes, backslash escapes, `#` comments; no expansion), by
/// `shlex`.
fn split_words(text: &str) -> Result<Vec<String>, TemplateError> {
    shlex::split(text).ok_or(TemplateError::Unbalanced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.set("listen", "127.0.0.1:8080")
            .set("dir", "/tmp/a b")
            .set("pid", "42");
        v
    }

    #[test]
    fn renders_known_placeholders_and_keeps_other_braces() {
        let t = Template::new("events { worker_connections 64; } listen {listen}; {{pid}} {pid}");
        assert!(t.check().is_ok());
        assert_eq!(
            t.render(&vars()).unwrap(),
            "events { worker_connections 64; } listen 127.0.0.1:8080; {pid} 42"
        );
    }

    #[test]
    fn unknown_and_unset_placeholders_are_errors() {
        assert_eq!(
            Template::new("x {lisen}").check(),
            Err(TemplateError::Unknown("lisen".into()))
        );
        assert_eq!(
            Template::new("{origin}").render(&vars()),
            Err(TemplateError::Unset("origin".into()))
        );
    }

    #[test]
    fn argv_keeps_values_with_spaces_as_one_word() {
        let t = Template::new("haproxy -f {dir}/h.cfg -sf {pid} -g 'daemon off;'");
        assert_eq!(
            t.render_argv(&vars()).unwrap(),
            [
                "haproxy",
                "-f",
                "/tmp/a b/h.cfg",
                "-sf",
                "42",
                "-g",
                "daemon off;"
            ]
        );
        assert_eq!(
            Template::new("a 'b").render_argv(&vars()),
            Err(TemplateError::Unbalanced)
        );
        // Shell rules: double quotes and backslashes escape, a trailing
        // backslash is refused like an open quote.
        assert_eq!(
            Template::new(r#"printf "c\"d" e\ f 'g\h'"#)
                .render_argv(&vars())
                .unwrap(),
            ["printf", "c\"d", "e f", "g\\h"]
        );
        assert_eq!(
            Template::new("a b\\").render_argv(&vars()),
            Err(TemplateError::Unbalanced)
        );
        assert_eq!(
            Template::new("  ").render_argv(&vars()),
            Err(TemplateError::Empty)
        );
    }
}
