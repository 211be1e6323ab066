//! `reloadbench init [PEER]`: writes a scenario of the library
//! (`scenarios/*.toml`, built into the binary) and the config template it
//! needs into a directory, so that a user starts from a file that works.
//! Existing files are left alone unless `force`.

use std::path::{Path, PathBuf};

/// One peer a scenario can be written for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// What the user types: `reloadbench init NAME`.
    pub name: &'static str,
    /// One line shown by `init --list`.
    pub about: &'static str,
    /// How to install the server, if reloadbench does not ship it.
    pub install: Option<&'static str>,
    /// The files written: name and content, the scenario first.
    pub files: &'static [(&'static str, &'static str)],
}

/// Every peer `init` knows, in the order `--list` shows them.
pub(crate) const PEERS: [Peer; 4] = [
    Peer {
        name: "refproxy",
        about: "the reference proxy: restart, naive reload, fd passing, master-worker (the seed)",
        install: None,
        files: &[("seed.toml", include_str!("../../../scenarios/seed.toml"))],
    },
    Peer {
        name: "haproxy",
        about: "HAProxy 2.6: restart, -sf, -x (fd passing), master-worker (-W)",
        install: Some("scripts/install-peers haproxy"),
        files: &[
            (
                "haproxy.toml",
                include_str!("../../../scenarios/haproxy.toml"),
            ),
            (
                "haproxy.cfg.tmpl",
                include_str!("../../../scenarios/haproxy.cfg.tmpl"),
            ),
        ],
    },
    Peer {
        name: "nginx",
        about: "nginx 1.22: restart, reload (SIGHUP), binary upgrade (USR2, WINCH, QUIT)",
        install: Some("scripts/install-peers nginx"),
        files: &[
            ("nginx.toml", include_str!("../../../scenarios/nginx.toml")),
            (
                "nginx.conf.tmpl",
                include_str!("../../../scenarios/nginx.conf.tmpl"),
            ),
        ],
    },
    Peer {
        name: "external",
        about: "a server you run (systemd, a container): reloaded by your command or a signal",
        install: None,
        files: &[(
            "external.toml",
            include_str!("../../../scenarios/external.toml"),
        )],
    },
];

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    /// No peer of that name.
    #[error("no scenario for {name:?}; known: {known}")]
    Unknown {
        /// The name given.
        name: String,
        /// The names known.
        known: String,
    },
    /// A file to write exists already.
    #[error("{} exists; nothing was written (--force replaces it)", .0.display())]
    Exists(PathBuf),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl InitError {
    /// True for a mistake in what the user asked (exit 2).
    pub(crate) fn is_usage(&self) -> bool {
        !matches!(self, InitError::Write { .. })
    }
}

/// The peer called `name`.
pub(crate) fn peer(name: &str) -> Result<&'static Peer, InitError> {
    PEERS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| InitError::Unknown {
            name: name.to_owned(),
            known: names(),
        })
}

/// The peer names, comma-separated.
pub(crate) fn names() -> String {
    PEERS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// What `init --list` (or `init` alone) prints.
pub(crate) fn list() -> String {
    let width = PEERS.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut out = String::from("Scenarios `reloadbench init PEER` writes:\n");
    for p in &PEERS {
        out.push_str(&format!("  {:width$}  {}\n", p.name, p.about));
    }
    out
}

/// The first lines of a written scenario: where it comes from, how to run it.
fn header(p: &Peer, scenario: &str) -> String {
    let mut h = format!(
        "# Written by `reloadbench init {}` (reloadbench {}) from the scenario library.\n\
         # Run it with: reloadbench run {scenario}\n",
        p.name,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(i) = p.install {
        h.push_str(&format!("# Install the server first: {i}\n"));
    }
    h.push_str("#\n");
    h
}

/// Writes the files of `peer` into `dir` (all or none: every file is
/// checked before the first is written). Returns the paths written.
pub(crate) fn write(p: &Peer, dir: &Path, force: bool) -> Result<Vec<PathBuf>, InitError> {
    let paths: Vec<PathBuf> = p.files.iter().map(|(n, _)| dir.join(n)).collect();
    if !force && let Some(e) = paths.iter().find(|p| p.exists()) {
        return Err(InitError::Exists(e.clone()));
    }
    let scenario = p.files.first().map_or("", |(n, _)| *n);
    for (i, ((_, text), path)) in p.files.iter().zip(&paths).enumerate() {
        let body = if i == 0 {
            format!("{}{text}", header(p, scenario))
        } else {
            (*text).to_owned()
        };
        std::fs::write(path, body).map_err(|source| InitError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_writes_a_scenario_that_validates() {
        for p in &PEERS {
            let dir = tempfile::tempdir().unwrap();
            let written = write(p, dir.path(), false).unwrap();
            assert_eq!(written.len(), p.files.len(), "{}", p.name);
            let sc = crate::scenario::load(&written[0])
                .unwrap_or_else(|e| panic!("init {}: {e}", p.name));
            assert!(!sc.cases.is_empty(), "{}", p.name);
            let text = std::fs::read_to_string(&written[0]).unwrap();
            assert!(
                text.starts_with(&format!("# Written by `reloadbench init {}`", p.name)),
                "{text}"
            );
        }
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let p = peer("haproxy").unwrap();
        // Only the template exists: nothing at all is written.
        let tmpl = dir.path().join("haproxy.cfg.tmpl");
        std::fs::write(&tmpl, "mine").unwrap();
        let e = write(p, dir.path(), false).unwrap_err();
        assert!(matches!(&e, InitError::Exists(f) if *f == tmpl), "{e}");
        assert!(e.is_usage());
        assert!(!dir.path().join("haproxy.toml").exists());
        assert_eq!(std::fs::read_to_string(&tmpl).unwrap(), "mine");
        write(p, dir.path(), true).unwrap();
        assert_ne!(std::fs::read_to_string(&tmpl).unwrap(), "mine");
    }

    #[test]
    fn unknown_peers_are_refused_with_the_known_ones() {
        let e = peer("apache").unwrap_err().to_string();
        assert!(e.contains("refproxy, haproxy, nginx, external"), "{e}");
        let l = list();
        for p in &PEERS {
            assert!(l.contains(p.name), "{l}");
        }
    }
}
