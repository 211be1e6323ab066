//! The TOML file of `loadgen --mix FILE`: one `[[request]]` table per
//! request kind, the shape of a scenario's `[[load.request]]`.
//!
//! ```toml
//! [[request]]
//! weight = 80
//! method = "GET"
//! path = "/"
//!
//! [[request]]
//! weight = 20
//! method = "POST"
//! path = "/upload"
//! body_file = "body.bin"          # relative to the mix file; or body = "inline text"
//! content_type = "application/octet-stream"
//! headers = { "X-Kind" = "upload" }
//! ```
//!
//! `weight` defaults to 1, `method` to `GET`, `path` to the URL's path. The
//! values themselves (a method token, a path starting with `/`, header
//! names) are checked by [`crate::LoadConfig::check`], whose errors name
//! the entry (`request N`) and its field, as the errors here do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::mix::RequestKind;

/// Why a mix file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MixFileError {
    /// The file could not be read.
    #[error("cannot read mix file {}", path.display())]
    Read {
        /// The mix file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape (the message names
    /// the line, column and field).
    #[error("mix file {}: {source}", path.display())]
    Parse {
        /// The mix file.
        path: PathBuf,
        /// The TOML error.
        #[source]
        source: toml::de::Error,
    },
    /// An entry is wrong.
    #[error("mix file {}: request {index}: {field}: {reason}", path.display())]
    Entry {
        /// The mix file.
        path: PathBuf,
        /// The entry, from 1.
        index: usize,
        /// Its field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A `body_file` could not be read.
    #[error("mix file {}: request {index}: body_file {}", path.display(), file.display())]
    BodyFile {
        /// The mix file.
        path: PathBuf,
        /// The entry, from 1.
        index: usize,
        /// The body file, as resolved.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    request: Vec<RawRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    weight: Option<u32>,
    method: Option<String>,
    path: Option<String>,
    body: Option<String>,
    body_file: Option<PathBuf>,
    content_type: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Reads the mix file at `path` (body files relative to its directory).
pub fn read(path: &Path) -> Result<Vec<RequestKind>, MixFileError> {
    let read = |source| MixFileError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = crate::body_file::read(path).map_err(read)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    parse(&text, path)
}

/// Parses a mix file's `text`; `path` names it in errors and its directory
/// is where relative `body_file`s are.
pub fn parse(text: &str, path: &Path) -> Result<Vec<RequestKind>, MixFileError> {
    let raw: RawFile = toml::from_str(text).map_err(|source| MixFileError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let entry = |index: usize, field: &'static str, reason: &str| MixFileError::Entry {
        path: path.to_owned(),
        index,
        field,
        reason: reason.to_owned(),
    };
    if raw.request.is_empty() {
        return Err(entry(0, "request", "no [[request]] entries"));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut kinds = Vec::with_capacity(raw.request.len());
    for (i, r) in raw.request.into_iter().enumerate() {
        let index = i + 1;
        let body = match (r.body, r.body_file) {
            (Some(_), Some(_)) => {
                return Err(entry(
                    index,
                    "body_file",
                    "give body or body_file, not both",
                ));
            }
            (Some(text), None) => Some(text.into_bytes()),
            (None, Some(file)) => {
                let file = base.join(file);
                Some(
                    crate::body_file::read(&file).map_err(|source| MixFileError::BodyFile {
                        path: path.to_owned(),
                        index,
                        file,
                        source,
                    })?,
                )
            }
            (None, None) => None,
        };
        if r.content_type.is_some() && body.is_none() {
            return Err(entry(index, "content_type", "only with body or body_file"));
        }
        if r.weight == Some(0) {
            return Err(entry(index, "weight", "must be at least 1"));
        }
        kinds.push(RequestKind {
            weight: r.weight.unwrap_or(1),
            method: r.method.unwrap_or_else(|| "GET".to_owned()),
            path: r.path,
            headers: r.headers.into_iter().collect(),
            body,
            content_type: r.content_type,
        });
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_inline_and_file_bodies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.bin"), [0u8, 1, 2, 255]).unwrap();
        let path = dir.path().join("mix.toml");
        let text = r#"
            [[request]]
            weight = 80

            [[request]]
            weight = 20
            method = "POST"
            path = "/p?x=1"
            body_file = "b.bin"
            content_type = "application/octet-stream"
            headers = { "X-Kind" = "post" }

            [[request]]
            method = "PUT"
            body = "hi"
        "#;
        let kinds = parse(text, &path).unwrap();
        assert_eq!(kinds.len(), 3);
        assert_eq!((kinds[0].weight, kinds[0].method.as_str()), (80, "GET"));
        assert_eq!(kinds[0].path, None);
        assert_eq!(kinds[1].body.as_deref(), Some(&[0u8, 1, 2, 255][..]));
        assert_eq!(kinds[1].path.as_deref(), Some("/p?x=1"));
        assert_eq!(kinds[1].headers, vec![("X-Kind".into(), "post".into())]);
        assert_eq!(
            (kinds[2].weight, kinds[2].body.as_deref()),
            (1, Some(&b"hi"[..]))
        );
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let path = Path::new("/nowhere/mix.toml");
        for (text, needle) in [
            (
                "[[request]]\nweight = 0\n",
                "request 1: weight: must be at least 1",
            ),
            (
                "[[request]]\n[[request]]\nbody = \"a\"\nbody_file = \"b\"\n",
                "request 2: body_file: give body or body_file, not both",
            ),
            (
                "[[request]]\ncontent_type = \"text/plain\"\n",
                "request 1: content_type: only with body or body_file",
            ),
            ("[[request]]\nmethd = \"GET\"\n", "unknown field `methd`"),
            ("[[request]]\nweight = -1\n", "weight"),
            ("", "no [[request]] entries"),
            (
                "[[request]]\nbody_file = \"missing.bin\"\n",
                "request 1: body_file /nowhere/missing.bin",
            ),
        ] {
            let e = parse(text, path).unwrap_err();
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }
}
