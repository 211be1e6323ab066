//! The premature ends of HTTP/2 streams per client address, across that address's
//! connections: a token bucket per address, shared by all serving threads.
//!
//! A premature end is a forwarded stream (an origin slot taken for it) that the client
//! ended younger than `limits.h2_premature_reset_window` and before its response ended:
//! by resetting it (what a connection's own `premature` account counts), or by ending
//! its connection (FIN, TCP reset, an error) while refproxy had not begun to close it.
//! When a connection ends, its address pays a token for each of its premature ends
//! beyond the forwarded streams it let live (answered, or ended older than the window):
//! a connection that cut as many as it let finish costs nothing (as the per-connection
//! account allows), one that only cut what it forwarded pays for every stream. The
//! bucket refills at `limits.h2_address_premature_resets_per_second` up to
//! `limits.h2_address_premature_resets_burst`; while it has less than a token, new
//! HTTP/2 connections from the address are refused (`GOAWAY ENHANCE_YOUR_CALM` with
//! last-stream-id 0). A charge beyond the tokens left is a debt (the bucket goes below
//! zero): a connection let in with one token left that then cuts 64 streams costs 64, and
//! the address waits until it has paid them back. So over any `T` seconds an address
//! churns at most about `burst + rate × T` origin connections by cutting them beyond what
//! it lets finish, plus what its connections open at once forward, however many
//! connections it opens.
//!
//! An address is an IPv4 address, or the /64 prefix of an IPv6 one (an IPv4-mapped IPv6
//! address is its IPv4 address). Only addresses that took tokens have an entry; entries
//! whose buckets have refilled are dropped when the map grows past [`PRUNE_AT`] (and
//! again each time it doubles since the last prune). At most [`CAP`] entries: beyond
//! them, an address without an entry is treated as fresh (its premature ends are not
//! recorded until entries are pruned), never waited for. Honest traffic takes the lock
//! only when a new connection comes while the map has entries, and when a connection
//! that owes tokens ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The most addresses with an entry.
pub(crate) const CAP: usize = 65_536;
/// Entries that make an insert prune the map first (at least).
pub(crate) const PRUNE_AT: usize = 1024;
/// How often a full map is pruned again at most, when nothing could be pruned.
const FULL_PRUNE_EVERY: Duration = Duration::from_secs(1);

/// A client address as the budget keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    /// The /64 prefix.
    V6(u64),
}

impl Key {
    fn of(ip: IpAddr) -> Key {
        match ip {
            IpAddr::V4(v4) => Key::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Key::V4(v4.into()),
                None => Key::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// One address's bucket: its tokens at `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What taking tokens left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Tokens are left (or the budget is off, or the address could not be recorded).
    Left,
    /// Less than a token left: new connections from the address are refused until it
    /// has one again.
    Empty,
}

struct Map {
    buckets: HashMap<Key, Bucket>,
    /// Prune before an insert once there are this many entries.
    prune_at: usize,
    last_prune: Option<Instant>,
}

/// The per-address budget of premature ends (see the module doc).
pub(crate) struct Budget {
    /// Tokens per second (0: off).
    rate: f64,
    /// Tokens at most.
    burst: f64,
    /// Entries in `map`, read without the lock: none means no address is limited.
    entries: AtomicUsize,
    map: Mutex<Map>,
}

impl Budget {
    /// A budget refilling at `rate` tokens per second (0: off) up to `burst`.
    pub(crate) fn new(rate: u32, burst: u32) -> Budget {
        Budget {
            rate: f64::from(rate),
            burst: f64::from(burst),
            entries: AtomicUsize::new(0),
            map: Mutex::new(Map {
                buckets: HashMap::new(),
                prune_at: PRUNE_AT,
                last_prune: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A panic while held leaves the map consistent (no invariant spans a call).
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `bucket`'s tokens at `now`.
    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + secs * self.rate).min(self.burst)
    }

    /// Whether `ip`'s bucket has less than a token at `now` (new connections from it are
    /// refused). Takes no lock while no address has an entry.
    pub(crate) fn exhausted(&self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0.0 || self.entries.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let map = self.lock();
        map.buckets
            .get(&Key::of(ip))
            .is_some_and(|b| self.refilled(b, now) < 1.0)
    }

    /// Takes `n` tokens of `ip`'s bucket at `now` (beyond those left: a debt): whether a
    /// token is left after them.
    pub(crate) fn take(&self, ip: IpAddr, n: u32, now: Instant) -> Taken {
        if self.rate == 0.0 || n == 0 {
            return Taken::Left;
        }
        let key = Key::of(ip);
        let mut map = self.lock();
        if !map.buckets.contains_key(&key) {
            let len = map.buckets.len();
            let full_again = len >= CAP
                && map
                    .last_prune
                    .is_none_or(|at| now.saturating_duration_since(at) >= FULL_PRUNE_EVERY);
            if len >= map.prune_at || full_again {
                self.prune(&mut map, now);
            }
            if map.buckets.len() >= CAP {
                // Not recorded: the address is treated as fresh.
                return Taken::Left;
            }
        }
        let burst = self.burst;
        let bucket = map.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = (bucket.tokens
            + now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate)
            .min(burst);
        let tokens = tokens - f64::from(n);
        *bucket = Bucket { tokens, at: now };
        self.entries.store(map.buckets.len(), Ordering::Relaxed);
        if tokens < 1.0 {
            Taken::Empty
        } else {
            Taken::Left
        }
    }

    /// Drops the entries whose buckets have refilled by `now`.
    fn prune(&self, map: &mut Map, now: Instant) {
        map.buckets
            .retain(|_, b| self.refilled(b, now) < self.burst);
        map.prune_at = (2 * map.buckets.len()).max(PRUNE_AT);
        map.last_prune = Some(now);
        self.entries.store(map.buckets.len(), Ordering::Relaxed);
    }

    /// Entries in the map.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn the_burst_is_taken_then_the_address_is_exhausted_until_it_refills() {
        let b = Budget::new(2, 5);
        let t0 = Instant::now();
        let a = v4(0x7f00_0002);
        assert!(!b.exhausted(a, t0));
        for _ in 0..4 {
            assert_eq!(b.take(a, 1, t0), Taken::Left);
        }
        assert_eq!(b.take(a, 1, t0), Taken::Empty, "the 5th of 5");
        assert!(b.exhausted(a, t0));
        assert_eq!(b.take(a, 1, t0), Taken::Empty, "still none left: one owed");
        // Another address is not touched.
        assert!(!b.exhausted(v4(0x7f00_0001), t0));
        // 2 per second: the debt paid in half a second, a token back in one.
        assert!(b.exhausted(a, t0 + Duration::from_millis(900)));
        let t1 = t0 + Duration::from_secs(1);
        assert!(!b.exhausted(a, t1));
        assert_eq!(b.take(a, 1, t1), Taken::Empty, "that one taken");
        // The refill stops at the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(b.take(a, 1, t2), Taken::Left);
        }
        assert_eq!(b.take(a, 1, t2), Taken::Empty);
    }

    #[test]
    fn many_ends_at_once_take_as_many_tokens() {
        let b = Budget::new(1, 10);
        let t0 = Instant::now();
        assert_eq!(b.take(v4(1), 9, t0), Taken::Left);
        assert_eq!(b.take(v4(1), 50, t0), Taken::Empty);
        assert!(b.exhausted(v4(1), t0));
        // 49 owed at 1 per second: a token again after 50 seconds, not before.
        assert!(b.exhausted(v4(1), t0 + Duration::from_secs(49)));
        assert!(!b.exhausted(v4(1), t0 + Duration::from_secs(50)));
    }

    #[test]
    fn ipv6_addresses_share_their_64_prefix_and_mapped_ipv4_is_ipv4() {
        let b = Budget::new(1, 2);
        let t0 = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(b.take(one, 2, t0), Taken::Empty);
        assert!(b.exhausted(other, t0));
        assert!(!b.exhausted(elsewhere, t0));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(b.take(mapped, 2, t0), Taken::Empty);
        assert!(b.exhausted(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), t0));
        assert!(!b.exhausted(IpAddr::V6(Ipv6Addr::LOCALHOST), t0));
    }

    #[test]
    fn refilled_entries_are_pruned_and_the_map_is_capped() {
        let b = Budget::new(1, 2);
        let t0 = Instant::now();
        for n in 0..PRUNE_AT as u32 {
            b.take(v4(n), 1, t0);
        }
        assert_eq!(b.len(), PRUNE_AT);
        // 2 seconds later every bucket has refilled: the next insert prunes them all.
        let t1 = t0 + Duration::from_secs(2);
        b.take(v4(1 << 24), 1, t1);
        assert_eq!(b.len(), 1);
        // Full of buckets still being refilled: a new address is not recorded, and
        // nothing waits.
        let b = Budget::new(1, 1000);
        for n in 0..CAP as u32 {
            b.take(v4(n), 1, t0);
        }
        assert_eq!(b.len(), CAP);
        let fresh = v4(1 << 30);
        for _ in 0..2000 {
            assert_eq!(b.take(fresh, 1, t0), Taken::Left);
        }
        assert!(!b.exhausted(fresh, t0));
        assert_eq!(b.len(), CAP);
        // Once they have refilled, a later insert (a second after the last prune) makes
        // room.
        let later = t0 + Duration::from_secs(1000);
        assert_eq!(b.take(fresh, 1, later), Taken::Left);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn zero_is_off() {
        let b = Budget::new(0, 1);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(b.take(v4(1), 1, t0), Taken::Left);
        }
        assert!(!b.exhausted(v4(1), t0));
        assert_eq!(b.len(), 0);
    }
}
