//! An error printed with every cause: its own message, then each
//! [`source`](std::error::Error::source) in turn, joined by `": "`.
//!
//! Many errors of the harness already name their cause in their message
//! (`cannot write {path}: {source}`); a cause whose text the message
//! already contains is not repeated, so such an error prints exactly as its
//! `Display` does, and an error that does not name its cause still prints
//! it.

use std::error::Error;

/// `e`'s message followed by each cause the message does not already
/// contain, joined by `": "`.
pub(crate) fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start the origin")]
    struct Quiet {
        #[source]
        source: Middle,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write {path}: {source}")]
    struct Middle {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn an_error_that_does_not_name_its_cause_prints_it() {
        let e = Quiet {
            source: Middle {
                path: "/x",
                source: io(),
            },
        };
        assert_eq!(e.to_string(), "cannot start the origin");
        assert_eq!(
            chain(&e),
            "cannot start the origin: cannot write /x: no such file"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = Middle {
            path: "/x",
            source: io(),
        };
        assert_eq!(chain(&e), e.to_string());
        assert_eq!(chain(&e), "cannot write /x: no such file");
    }
}
