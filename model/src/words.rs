//! Counted nouns in English for reports and terminal output: "1 case",
//! "2 cases", "0 actions".

/// `n` followed by `singular` when `n` is 1, else by `singular` + "s".
///
/// ```
/// use reloadbench_model::words::count;
/// assert_eq!(count(1, "case"), "1 case");
/// assert_eq!(count(0, "action"), "0 actions");
/// ```
pub fn count(n: u64, singular: &str) -> String {
    format!("{n} {}", noun(n, singular))
}

/// `singular` when `n` is 1, else `singular` + "s" (the noun without its
/// number, for "12 of 13 expectations").
pub fn noun(n: u64, singular: &str) -> String {
    if n == 1 {
        singular.to_owned()
    } else {
        format!("{singular}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(count(1, "case"), "1 case");
        assert_eq!(count(0, "case"), "0 cases");
        assert_eq!(count(2, "expectation"), "2 expectations");
        assert_eq!(noun(1, "action"), "action");
        assert_eq!(noun(11, "action"), "actions");
    }
}
