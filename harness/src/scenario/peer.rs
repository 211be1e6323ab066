//! Programs a scenario needs that reloadbench does not build (HAProxy,
//! nginx, ...), and the check that they are installed.

use std::path::{Path, PathBuf};

use super::{OriginSpec, ProxySpec, Scenario};

/// A program the scenario needs that is not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{binary} not found in PATH{}", install_hint(.install.as_deref()))]
pub(crate) struct MissingPeer {
    /// The program name as written in the scenario.
    pub binary: String,
    /// How to install it, when the scenario says.
    pub install: Option<String>,
}

fn install_hint(install: Option<&str>) -> String {
    install
        .map(|i| format!("; install it with: {i}"))
        .unwrap_or_default()
}

impl Scenario {
    /// External programs the scenario runs, with their install hints.
    pub(crate) fn peers(&self) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for p in self.proxies() {
            if let ProxySpec::Command(p) = p
                && !out.iter().any(|(b, _)| *b == p.binary)
            {
                out.push((p.binary.clone(), p.install.clone()));
            }
        }
        if let OriginSpec::Command(o) = &self.origin
            && let Some(b) = &o.binary
        {
            out.push((b.clone(), o.install.clone()));
        }
        out
    }

    /// The systems under test the cases run (each case's own, in case order;
    /// the scenario's `[proxy]` when there are no cases).
    pub(crate) fn proxies(&self) -> Vec<&ProxySpec> {
        if self.cases.is_empty() {
            return vec![&self.proxy];
        }
        self.cases.iter().map(|c| &c.proxy).collect()
    }

    /// The first external program that is not installed, if any (checked in `PATH`).
    pub(crate) fn missing_peer(&self) -> Option<MissingPeer> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        self.peers()
            .into_iter()
            .find(|(binary, _)| find_program(binary, &dirs).is_none())
            .map(|(binary, install)| MissingPeer { binary, install })
    }
}

/// Resolves a program name (or a path containing `/`) to an executable file.
pub(crate) fn find_program(binary: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    if binary.contains('/') {
        let p = Path::new(binary);
        return is_executable(p).then(|| p.to_owned());
    }
    dirs.iter()
        .map(|d| d.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_a_made_up_program() {
        let dirs: Vec<PathBuf> = vec!["/bin".into(), "/usr/bin".into()];
        assert!(find_program("sh", &dirs).is_some());
        assert!(find_program("no-such-program-reloadbench", &dirs).is_none());
        let m = MissingPeer {
            binary: "haproxy".into(),
            install: Some("scripts/install-peers haproxy".into()),
        };
        assert_eq!(
            m.to_string(),
            "haproxy not found in PATH; install it with: scripts/install-peers haproxy"
        );
    }
}
