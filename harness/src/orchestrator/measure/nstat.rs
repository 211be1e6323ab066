//! `nstat`-style TCP counters: `/proc/<...>/net/netstat` and `.../snmp`
//! parsed generically (every section, every field), named as nstat names
//! them (`TcpExtListenOverflows`, `TcpOutRsts`), and deltas between two
//! readings of the `Tcp` and `TcpExt` sections.
//!
//! The counters are those of the network namespace of whoever reads them:
//! read `/proc/thread-self/net` from a thread inside the namespace
//! (`/proc/self/net` follows the thread-group leader). Self-contained: it
//! knows nothing of cases or scenarios.

use std::collections::BTreeMap;
use std::path::Path;

use reloadbench_model::kernel::LISTED;

/// Counters of one reading, by nstat name.
pub(crate) type Counters = BTreeMap<String, i64>;

/// The directory of the calling thread's namespace's counters.
pub(crate) const THREAD_NET: &str = "/proc/thread-self/net";

/// `Tcp` fields that are gauges or constants, not counters.
const NOT_COUNTERS: [&str; 5] = [
    "TcpRtoAlgorithm",
    "TcpRtoMin",
    "TcpRtoMax",
    "TcpMaxConn",
    "TcpCurrEstab",
];

/// Why the counters could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub(crate) struct NstatError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Parses the text of `/proc/net/netstat` or `/proc/net/snmp`: pairs of
/// lines `Section: Name1 Name2 ...` / `Section: v1 v2 ...`. Fields whose
/// value is not an integer that fits an `i64` are left out.
pub(crate) fn parse(text: &str) -> Counters {
    let mut out = Counters::new();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((sec, names)), Some((sec2, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if sec != sec2 {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                out.insert(format!("{sec}{n}"), v);
            }
        }
    }
    out
}

/// Reads `netstat` and `snmp` in `dir` (e.g. [`THREAD_NET`]).
pub(crate) fn read(dir: &Path) -> Result<Counters, NstatError> {
    let mut all = Counters::new();
    for f in ["snmp", "netstat"] {
        let path = dir.join(f);
        let text = std::fs::read_to_string(&path).map_err(|source| NstatError { path, source })?;
        all.extend(parse(&text));
    }
    Ok(all)
}

/// Whether a counter belongs to the `Tcp` or `TcpExt` sections.
fn is_tcp(name: &str) -> bool {
    name.starts_with("Tcp") && !NOT_COUNTERS.contains(&name)
}

/// `to - from` for the `Tcp` / `TcpExt` counters present in both readings:
/// every one of [`LISTED`], and every other one that moved.
pub(crate) fn delta(from: &Counters, to: &Counters) -> Counters {
    to.iter()
        .filter(|(k, _)| is_tcp(k))
        .filter_map(|(k, b)| {
            let d = b.wrapping_sub(*from.get(k)?);
            (d != 0 || LISTED.contains(&k.as_str())).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\n\
                        Ip: 1 64 12345\n\
                        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens AttemptFails EstabResets CurrEstab OutRsts\n\
                        Tcp: 1 200 120000 -1 10 3 4 2 7\n\
                        Udp: InDatagrams\n\
                        Udp: 5\n";
    const NETSTAT: &str = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPAbortOnClose\n\
                           TcpExt: 0 5 6 1\n\
                           IpExt: InNoRoutes InOctets\n\
                           IpExt: 0 18446744073709551615\n";

    #[test]
    fn every_section_and_field_is_named_as_nstat_does() {
        let c = parse(SNMP);
        assert_eq!(c.get("IpInReceives"), Some(&12345));
        assert_eq!(c.get("TcpMaxConn"), Some(&-1));
        assert_eq!(c.get("TcpOutRsts"), Some(&7));
        assert_eq!(c.get("UdpInDatagrams"), Some(&5));
        let c = parse(NETSTAT);
        assert_eq!(c.get("TcpExtListenOverflows"), Some(&5));
        assert_eq!(c.get("TcpExtTCPAbortOnClose"), Some(&1));
        // Beyond i64: left out, not wrapped.
        assert_eq!(c.get("IpExtInOctets"), None);
        assert_eq!(c.get("IpExtInNoRoutes"), Some(&0));
    }

    #[test]
    fn delta_keeps_listed_counters_and_moved_ones_only_and_absent_stays_absent() {
        let mut a = parse(SNMP);
        a.extend(parse(NETSTAT));
        let mut b = a.clone();
        *b.get_mut("TcpOutRsts").unwrap() += 2;
        *b.get_mut("TcpActiveOpens").unwrap() += 5;
        *b.get_mut("TcpCurrEstab").unwrap() += 5;
        *b.get_mut("UdpInDatagrams").unwrap() += 5;
        let d = delta(&a, &b);
        assert_eq!(d.get("TcpOutRsts"), Some(&2));
        assert_eq!(d.get("TcpActiveOpens"), Some(&5));
        // Listed, present, unmoved: kept as 0.
        assert_eq!(d.get("TcpExtListenDrops"), Some(&0));
        assert_eq!(d.get("TcpAttemptFails"), Some(&0));
        // Not present in this kernel's text: absent, not 0.
        assert_eq!(d.get("TcpExtTCPMigrateReqSuccess"), None);
        // Gauges, other sections, unmoved unlisted counters: left out.
        assert_eq!(d.get("TcpCurrEstab"), None);
        assert_eq!(d.get("UdpInDatagrams"), None);
        assert_eq!(d.get("TcpExtSyncookiesSent"), None);
    }

    #[test]
    fn this_threads_counters_can_be_read() {
        let c = read(Path::new(THREAD_NET)).unwrap();
        assert!(c.contains_key("TcpActiveOpens"), "{c:?}");
        assert!(c.contains_key("TcpExtListenOverflows"), "{c:?}");
    }
}
