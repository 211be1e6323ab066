//! Choosing a certificate by the client's SNI name: the `[[tls.sni]]` entries, each with its
//! names (exact, or `*.suffix` for one more label), else the default `tls.cert`.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificates of a TLS listener, by name.
#[derive(Debug)]
pub(crate) struct SniResolver {
    pub(crate) default: Arc<CertifiedKey>,
    /// (lowercase name or `*.suffix`, certificate), in config order: the first match wins.
    pub(crate) by_name: Vec<(String, Arc<CertifiedKey>)>,
}

/// Whether `pattern` (lowercase; `*.suffix` matches exactly one more label) matches `name`.
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

impl SniResolver {
    fn pick(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name.map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.');
        self.by_name
            .iter()
            .find(|(pattern, _)| name_matches(pattern, name))
            .map_or_else(|| self.default.clone(), |(_, c)| c.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn exact_and_one_label_wildcards() {
        assert!(name_matches("a.test", "a.test"));
        assert!(!name_matches("a.test", "b.test"));
        assert!(name_matches("*.test", "b.test"));
        assert!(!name_matches("*.test", "test"));
        assert!(!name_matches("*.test", "x.b.test"));
        assert!(!name_matches("*.test", ".test"));
    }
}
