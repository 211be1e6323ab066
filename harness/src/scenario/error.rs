//! Validation errors of a scenario file, each with its file, line:col and field.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScenarioError {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the field, e.g. `case[2].actions[0].mode` (empty for the whole file).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a scenario file (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) struct ScenarioErrors {
    /// The problems, in file order.
    pub errors: Vec<ScenarioError>,
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ScenarioErrors {
    /// A single error without a position (e.g. the file cannot be read).
    pub(crate) fn whole_file(file: &Path, message: impl Into<String>) -> ScenarioErrors {
        ScenarioErrors {
            errors: vec![ScenarioError {
                file: file.to_owned(),
                position: None,
                field: String::new(),
                message: message.into(),
            }],
        }
    }
}

/// 1-based line and column (in characters) of a byte offset in `src`.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 11), (2, 6));
    }

    #[test]
    fn display_lists_one_error_per_line() {
        let e = |line| ScenarioError {
            file: "s.toml".into(),
            position: Some((line, 3)),
            field: "load.concurrency".into(),
            message: "must be at least 1".into(),
        };
        let all = ScenarioErrors {
            errors: vec![e(1), e(2)],
        };
        assert_eq!(
            all.to_string(),
            "s.toml:1:3: load.concurrency: must be at least 1\ns.toml:2:3: load.concurrency: must be at least 1"
        );
    }
}
