//! Config errors, each naming the file, the position (line and column) and the field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where in a config file something is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The config file, as given.
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
}

impl Position {
    /// The position of byte offset `offset` of `text`, read from `file`.
    pub(crate) fn at(file: &Path, text: &str, offset: Option<usize>) -> Position {
        Position {
            file: file.to_path_buf(),
            line_col: offset.map(|o| line_col(text, o)),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        Ok(())
    }
}

/// 1-based (line, column) of byte `offset` in `text`; the column counts characters.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Why a config file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not have the expected shape
    /// (unknown field, wrong type, missing field).
    #[error("{at}: {field}: {message}")]
    Syntax {
        /// Where.
        at: Position,
        /// The key path of the offending field, or `(document)` when unknown.
        field: String,
        /// The parser's message.
        message: String,
    },
    /// A value has the right type but is not valid (address, duration, number).
    #[error("{at}: {field}: {message} {value:?}")]
    InvalidValue {
        /// Where.
        at: Position,
        /// The field, e.g. `listen[0]` or `timeouts.connect`.
        field: String,
        /// The value as written.
        value: String,
        /// What is wrong with it, e.g. `invalid socket address`.
        message: String,
    },
    /// A list that needs at least one element is empty.
    #[error("{at}: {field}: must contain at least one address")]
    Empty {
        /// Where.
        at: Position,
        /// The field (`listen` or `origins`).
        field: String,
    },
    /// The same listening address appears twice.
    #[error("{at}: {field}: duplicate address {addr} (first given as {first})")]
    Duplicate {
        /// Where the second occurrence is.
        at: Position,
        /// The field of the second occurrence.
        field: String,
        /// The repeated address.
        addr: String,
        /// The field of the first occurrence.
        first: String,
    },
    /// A TLS certificate or key is unreadable, malformed, expired or mismatched.
    #[error("{at}: {field}: {source}")]
    Tls {
        /// Where the field naming the file is.
        at: Position,
        /// `tls.cert` or `tls.key`.
        field: String,
        /// What is wrong.
        #[source]
        source: Box<crate::tls::certs::CertError>,
    },
    /// The ticket key file is unreadable or of the wrong size.
    #[error("{at}: {field}: {source}")]
    TicketKeys {
        /// Where `tls.ticket_keys_file` is.
        at: Position,
        /// `tls.ticket_keys_file`.
        field: String,
        /// What is wrong.
        #[source]
        source: crate::tls::tickets::KeyFileError,
    },
}

/// Builds a [`ConfigError::Syntax`] from a toml error.
pub(crate) fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let span = err.span();
    let message = err.message().trim();
    let field = match missing_field(message) {
        // The span covers the table that lacks the field.
        Some(name) => match span.clone().and_then(|s| table_at(text, s.start)) {
            Some(table) => format!("{table}.{name}"),
            None => name.to_owned(),
        },
        None => span
            .clone()
            .and_then(|s| key_path_at(text, s))
            .unwrap_or_else(|| "(document)".to_owned()),
    };
    ConfigError::Syntax {
        at: Position::at(file, text, span.map(|s| s.start)),
        field,
        message: message.to_owned(),
    }
}

/// The field name of serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// The table whose header is on the line containing `offset`, if any.
fn table_at(text: &str, offset: usize) -> Option<String> {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    table_header(line).map(str::to_owned)
}

/// The dotted key path of the `key = value` line containing `span` (prefixed with
/// the enclosing `[table]`), or the table name when the span is on a table header.
fn key_path_at(text: &str, span: Range<usize>) -> Option<String> {
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find_map(table_header);
    if let Some(name) = table_header(line) {
        return Some(name.to_owned());
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

/// `Some("name")` when the line is a `[name]` table header.
fn table_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let end = inner.find(']')?;
    Some(inner[..end].trim().trim_matches('[').trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbc = \"é\"x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 11), (2, 6));
        assert_eq!(line_col(text, 14), (2, 8));
        assert_eq!(line_col(text, 1000), (3, 1));
    }

    #[test]
    fn key_path_includes_the_table() {
        let text = "listen = []\n[drain]\n# c\ndeadline = 5\n";
        let off = text.find('5').unwrap();
        assert_eq!(
            key_path_at(text, off..off + 1).as_deref(),
            Some("drain.deadline")
        );
        assert_eq!(key_path_at(text, 2..3).as_deref(), Some("listen"));
        assert_eq!(key_path_at(text, 13..14).as_deref(), Some("drain"));
    }
}
