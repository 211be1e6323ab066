//! `reloadbench init [PEER]`: writes a scenario of the library
//! (`scenarios/*.toml`, built into the binary) and the config template it
//! needs into a directory, so that a user starts from a file that works.
//! Existing files are left alone unless `force`; all files are written or
//! none (each is written to a new temporary file first, then moved into
//! place), and never through a symbolic link.

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
    /// A file to write is a symbolic link (even with --force: init writes
    /// no file through a link, nor replaces one).
    #[error("{} is a symbolic link; nothing was written", .0.display())]
    Symlink(PathBuf),
    /// A file to write exists and is not a regular file (a directory...).
    #[error("{} exists and is not a regular file; nothing was written", .0.display())]
    NotAFile(PathBuf),
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

/// The first lines of a written scenario: where it comes from, how to run
/// it (`path`: where it was written).
fn header(p: &Peer, path: &Path) -> String {
    let mut h = format!(
        "# Written by `reloadbench init {}` (reloadbench {}) from the scenario library.\n\
         # Run it with: reloadbench run {}\n",
        p.name,
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    if let Some(i) = p.install {
        h.push_str(&format!(
            "# Install the server first (your distribution's package, or `{i}` in a reloadbench \
             checkout)\n"
        ));
    }
    h.push_str("#\n");
    h
}

/// Writes the files of `peer` into `dir`, all or none: every file is
/// checked, then written to a new temporary file next to it (created, never
/// opened through a link), then moved into place (without `force`, linked
/// so that a file that appeared meanwhile is not replaced). Returns the
/// paths written.
pub(crate) fn write(p: &Peer, dir: &Path, force: bool) -> Result<Vec<PathBuf>, InitError> {
    let paths: Vec<PathBuf> = p.files.iter().map(|(n, _)| dir.join(n)).collect();
    for path in &paths {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => return Err(InitError::Symlink(path.clone())),
            Ok(_) if !force => return Err(InitError::Exists(path.clone())),
            Ok(m) if !m.is_file() => return Err(InitError::NotAFile(path.clone())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(InitError::Write {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    let mut temps = Temps(Vec::new());
    for (i, ((name, text), path)) in p.files.iter().zip(&paths).enumerate() {
        let body = if i == 0 {
            format!("{}{text}", header(p, path))
        } else {
            (*text).to_owned()
        };
        let tmp = dir.join(format!(".{name}.init-{}.tmp", std::process::id()));
        write_new(&tmp, &body).map_err(|source| InitError::Write {
            path: path.clone(),
            source,
        })?;
        temps.0.push(tmp);
    }
    for (tmp, path) in temps.0.iter().zip(&paths) {
        let placed = if force {
            std::fs::rename(tmp, path)
        } else {
            std::fs::hard_link(tmp, path)
        };
        placed.map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => InitError::Exists(path.clone()),
            _ => InitError::Write {
                path: path.clone(),
                source,
            },
        })?;
    }
    Ok(paths)
}

/// Temporary files, removed when dropped (those renamed are gone already).
struct Temps(Vec<PathBuf>);

impl Drop for Temps {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = std::fs::remove_file(t);
        }
    }
}

/// Creates `path` (it must not exist, and is not followed if a link) with `body`.
fn write_new(path: &Path, body: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .mode(0o644)
        .open(path)?;
    f.write_all(body.as_bytes())?;
    f.sync_all()
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
    fn nothing_is_written_through_a_link_and_the_header_names_the_path() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir(&a).unwrap();
        // A dangling link: the file it names is not created.
        let elsewhere = dir.path().join("elsewhere");
        symlink(&elsewhere, a.join("external.toml")).unwrap();
        let p = peer("external").unwrap();
        for force in [false, true] {
            let e = write(p, &a, force).unwrap_err();
            assert!(matches!(e, InitError::Symlink(_)), "{e}");
            assert!(e.is_usage());
            assert!(!elsewhere.exists());
        }
        // --force does not overwrite a link's target.
        std::fs::write(&elsewhere, "mine").unwrap();
        assert!(write(p, &a, true).is_err());
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "mine");
        // A link among the later files: the scenario is not written either.
        let c = dir.path().join("c");
        std::fs::create_dir(&c).unwrap();
        symlink("/nonexistent-dir/x", c.join("haproxy.cfg.tmpl")).unwrap();
        assert!(write(peer("haproxy").unwrap(), &c, false).is_err());
        let left: Vec<_> = std::fs::read_dir(&c).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // A directory in the way, even with --force: nothing written.
        let d = dir.path().join("d");
        std::fs::create_dir_all(d.join("haproxy.cfg.tmpl")).unwrap();
        let e = write(peer("haproxy").unwrap(), &d, true).unwrap_err();
        assert!(matches!(e, InitError::NotAFile(_)), "{e}");
        assert!(!d.join("haproxy.toml").exists());
        // The header says where the scenario is.
        let w = write(peer("nginx").unwrap(), &d, false).unwrap();
        let text = std::fs::read_to_string(&w[0]).unwrap();
        let want = format!(
            "# Run it with: reloadbench run {}\n",
            d.join("nginx.toml").display()
        );
        assert!(text.contains(&want), "{text}");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            3,
            "no temporary files left"
        );
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
