//! What the host must allow before a run opens its connections: enough open
//! files (the soft limit is raised to the hard one, see
//! [`reloadbench_model::fd_limit`]) and, for keep-alive connections held at
//! once, enough local ports: each source address has the ephemeral range of
//! `net.ipv4.ip_local_port_range` towards one target address, so 50,000
//! connections to one loopback port need two source addresses
//! ([`crate::LoadConfig::source_ips`]).
//!
//! A run that would hit either limit is refused up front with the number it
//! needs: otherwise its connects would fail with `EMFILE` or `EADDRNOTAVAIL`
//! and the run would measure the client's own limits as failures.

use std::net::SocketAddr;
use std::path::Path;

use reloadbench_model::fd_limit::{self, FdLimit};

use crate::error::LoadError;

/// Open files a run needs besides one per connection: the runtime's epoll and
/// eventfd descriptors per worker, standard streams, output files, and what a
/// calling program (the harness) holds.
pub const FD_RESERVE: u64 = 256;

/// File that holds the ephemeral port range.
const PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Raises the open-file limit for `connections` clients, or says how many
/// open files it would need.
pub(crate) fn open_files(connections: u64) -> Result<FdLimit, LoadError> {
    let limit = fd_limit::raise().map_err(|errno| LoadError::FdLimitUnknown {
        source: errno.into(),
    })?;
    let need = connections + FD_RESERVE;
    if limit.soft < need {
        return Err(LoadError::FdLimit {
            connections,
            need,
            hard: limit.hard,
        });
    }
    Ok(limit)
}

/// The number of ephemeral ports in `text` (the contents of [`PORT_RANGE`]).
fn ports_in(text: &str) -> Option<u64> {
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    let (low, high) = (it.next()??, it.next()??);
    (high >= low).then(|| high - low + 1)
}

/// Ports of the ephemeral range, when the host says.
fn ephemeral_ports(path: &Path) -> Option<u64> {
    ports_in(&std::fs::read_to_string(path).ok()?)
}

/// Checks that `connections` keep-alive connections to `addr` can be open at
/// once from `source_ips` source addresses (0 or 1: the default source).
pub(crate) fn source_ports(
    connections: u64,
    addr: SocketAddr,
    source_ips: u32,
) -> Result<(), LoadError> {
    let Some(ports) = ephemeral_ports(Path::new(PORT_RANGE)) else {
        return Ok(());
    };
    source_ports_with(connections, addr, source_ips, ports)
}

fn source_ports_with(
    connections: u64,
    addr: SocketAddr,
    source_ips: u32,
    ports: u64,
) -> Result<(), LoadError> {
    let sources = u64::from(source_ips.max(1));
    if ports == 0 || connections <= ports * sources {
        return Ok(());
    }
    Err(LoadError::SourcePorts {
        connections,
        addr,
        ports,
        sources,
        need: connections.div_ceil(ports),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parsing() {
        assert_eq!(ports_in("32768\t60999\n"), Some(28_232));
        assert_eq!(ports_in("1024 1024"), Some(1));
        assert_eq!(ports_in("9 1"), None);
        assert_eq!(ports_in("x"), None);
        assert_eq!(ports_in(""), None);
    }

    #[test]
    fn connections_beyond_the_ports_of_the_sources_are_refused() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert!(source_ports_with(28_232, addr, 0, 28_232).is_ok());
        let e = source_ports_with(50_000, addr, 1, 28_232).unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::SourcePorts {
                    need: 2,
                    sources: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("--source-ips 2"), "{text}");
        assert!(source_ports_with(50_000, addr, 2, 28_232).is_ok());
        assert!(source_ports_with(100_000, addr, 3, 28_232).is_err());
    }

    #[test]
    fn the_limit_is_raised_or_the_need_stated() {
        use nix::sys::resource::{Resource, getrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let ok = open_files(hard - FD_RESERVE).unwrap();
        assert_eq!(ok.soft, hard);
        let e = open_files(hard).unwrap_err();
        assert!(
            matches!(e, LoadError::FdLimit { need, .. } if need == hard + FD_RESERVE),
            "{e:?}"
        );
        assert!(e.to_string().contains(&(hard + FD_RESERVE).to_string()));
    }
}
