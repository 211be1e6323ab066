//! Finding the programs reloadbench runs: `refproxy` and itself (the origin
//! is `reloadbench origin`).

use std::path::{Path, PathBuf};

/// Environment variable overriding where `refproxy` is.
pub(crate) const REFPROXY_ENV: &str = "REFPROXY_BIN";

/// A program reloadbench needs is missing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BinaryError {
    /// `refproxy` is not built.
    #[error(
        "refproxy not found (looked in {looked}); build it with `cargo build --workspace --bins` \
         (or `cargo build --release --workspace --bins`), or set {REFPROXY_ENV}"
    )]
    RefproxyMissing {
        /// Where it was looked for.
        looked: String,
    },
    /// The path of the running executable is unknown.
    #[error("cannot find the reloadbench executable: {0}")]
    CurrentExe(std::io::Error),
}

/// The running `reloadbench` executable (spawned as `reloadbench origin`).
pub(crate) fn reloadbench_exe() -> Result<PathBuf, BinaryError> {
    std::env::current_exe().map_err(BinaryError::CurrentExe)
}

/// `refproxy`: `$REFPROXY_BIN`, else next to the running executable, else
/// one directory up when running from `target/<profile>/deps/` (tests).
pub(crate) fn refproxy() -> Result<PathBuf, BinaryError> {
    if let Some(p) = std::env::var_os(REFPROXY_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(BinaryError::RefproxyMissing {
                looked: format!("{REFPROXY_ENV}={}", p.display()),
            })
        };
    }
    let exe = reloadbench_exe()?;
    let candidates = candidates(&exe);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| BinaryError::RefproxyMissing {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn candidates(exe: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = exe.parent() {
        out.push(dir.join("refproxy"));
        if dir.file_name().is_some_and(|n| n == "deps")
            && let Some(up) = dir.parent()
        {
            out.push(up.join("refproxy"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deps_dir_looks_one_level_up() {
        let c = candidates(Path::new("/t/debug/deps/e2e-123"));
        assert_eq!(
            c,
            vec![
                PathBuf::from("/t/debug/deps/refproxy"),
                PathBuf::from("/t/debug/refproxy")
            ]
        );
        assert_eq!(
            candidates(Path::new("/t/release/reloadbench")),
            vec![PathBuf::from("/t/release/refproxy")]
        );
    }
}
