//! Which processes hold a socket, and which processes form a tree.
//!
//! A process holds a socket when one of its file descriptors links to
//! `socket:[INODE]` in `/proc/PID/fd` (read as the inode `stat` finds there) (threads share the table, so one look
//! per process). Only the pids asked about are read: the caller names the
//! processes it cares about (a server and its descendants, from
//! [`descendants`]), which keeps a look cheap enough to repeat every few
//! milliseconds. A process that exits while being read simply holds nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Socket inodes → the pids (sorted) that hold them, among `pids`, for the
/// inodes in `wanted` only (all socket inodes when `wanted` is `None`).
pub fn socket_owners(pids: &[u32], wanted: Option<&HashSet<u64>>) -> BTreeMap<u64, BTreeSet<u32>> {
    let mut out: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
    for &pid in pids {
        for inode in socket_inodes(pid) {
            if wanted.is_none_or(|w| w.contains(&inode)) {
                out.entry(inode).or_default().insert(pid);
            }
        }
    }
    out
}

/// Inodes of the sockets `pid` holds (empty when it is gone or unreadable).
///
/// The fd directory is opened once and each descriptor `stat`ed relative to
/// it (`fstatat` follows the fd's magic link to the socket's inode), which
/// spares the kernel a path walk and a link text per descriptor.
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    use std::os::fd::AsFd;

    let Ok(mut dir) = nix::dir::Dir::open(
        format!("/proc/{pid}/fd").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Vec::new();
    };
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .collect();
    names
        .iter()
        .filter_map(|n| {
            nix::sys::stat::fstatat(dir.as_fd(), n.as_c_str(), nix::fcntl::AtFlags::empty()).ok()
        })
        .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
        .map(|st| st.st_ino)
        .collect()
}

/// Direct children of `pid` (from `/proc/PID/task/*/children`: every
/// thread's children, so children spawned by any thread are found).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.filter_map(Result::ok) {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                s.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `roots` and all their descendants, sorted, each once.
pub fn descendants(roots: &[u32]) -> Vec<u32> {
    let mut seen: BTreeSet<u32> = BTreeSet::new();
    let mut todo: Vec<u32> = roots.to_vec();
    while let Some(p) = todo.pop() {
        if seen.insert(p) {
            todo.extend(children(p));
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_inode_is_the_one_its_link_names() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let me = std::process::id();
        let link = std::fs::read_link(format!("/proc/{me}/fd/{}", l.as_raw_fd())).expect("link");
        let inode: u64 = link
            .to_str()
            .and_then(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
            .expect("socket:[N]");
        assert!(socket_inodes(me).contains(&inode));
    }

    #[test]
    fn our_own_socket_is_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let me = std::process::id();
        let all = socket_owners(&[me], None);
        // At least one socket, each owned by us alone.
        assert!(!all.is_empty());
        assert!(all.values().all(|p| p.len() == 1 && p.contains(&me)));
        drop(l);
    }

    #[test]
    fn a_gone_process_holds_nothing() {
        assert!(socket_inodes(u32::MAX - 1).is_empty());
        assert!(children(u32::MAX - 1).is_empty());
    }
}
