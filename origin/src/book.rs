//! The origin's book of what it received and answered: totals, answers per
//! millisecond of the shared monotonic clock, and the request ids answered
//! (see [`reloadbench_model::ledger`]).
//!
//! One mutex guards the answer records; it is taken once per answer, for a push
//! and an increment (tens of ns), which is far below the cost of serving the
//! request. Ids are kept unsorted as they come (8 bytes per answer: 8 MB for a
//! million requests) and sorted once when the ledger is taken.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use reloadbench_model::clock::monotonic_ns;
use reloadbench_model::ledger::{ORIGIN_SLOT_NS, OriginLedger};

/// Answer records, guarded together.
#[derive(Debug, Default)]
struct Answers {
    count: u64,
    without_id: u64,
    ids: Vec<u64>,
    per_slot: Vec<u64>,
    by_method: BTreeMap<String, u64>,
    body_bytes: u64,
}

/// What the origin counted.
#[derive(Debug)]
pub(crate) struct Book {
    received: AtomicU64,
    slots_start_mono_ns: u64,
    answers: Mutex<Answers>,
}

impl Book {
    /// An empty book whose time slots start at the current millisecond.
    pub(crate) fn new() -> Book {
        Book {
            received: AtomicU64::new(0),
            slots_start_mono_ns: monotonic_ns() / ORIGIN_SLOT_NS * ORIGIN_SLOT_NS,
            answers: Mutex::new(Answers::default()),
        }
    }

    /// Counts a request whose head was read.
    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer, now, to the request `what` (its method, the body
    /// bytes read and its id, if it had one).
    pub(crate) fn answered(&self, what: Answered<'_>) {
        self.answered_at(what, monotonic_ns());
    }

    fn answered_at(&self, what: Answered<'_>, mono_ns: u64) {
        let Answered {
            method,
            body_bytes,
            id,
        } = what;
        let slot = (mono_ns.saturating_sub(self.slots_start_mono_ns) / ORIGIN_SLOT_NS) as usize;
        let mut a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        a.count += 1;
        a.body_bytes += body_bytes;
        match a.by_method.get_mut(method) {
            Some(n) => *n += 1,
            None => {
                a.by_method.insert(method.to_owned(), 1);
            }
        }
        match id {
            Some(id) => a.ids.push(id),
            None => a.without_id += 1,
        }
        if a.per_slot.len() <= slot {
            a.per_slot.resize(slot + 1, 0);
        }
        a.per_slot[slot] += 1;
    }

    /// The ledger so far: ids sorted into ranges, duplicates counted.
    pub(crate) fn ledger(&self) -> OriginLedger {
        let (count, without_id, mut ids, per_slot, by_method, body_bytes) = {
            let a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            (
                a.count,
                a.without_id,
                a.ids.clone(),
                a.per_slot.clone(),
                a.by_method.clone(),
                a.body_bytes,
            )
        };
        ids.sort_unstable();
        let with_dups = ids.len();
        ids.dedup();
        OriginLedger {
            received: self.received.load(Ordering::Relaxed),
            answered: count,
            answered_without_id: without_id,
            duplicate_ids: (with_dups - ids.len()) as u64,
            answered_ids: OriginLedger::ranges_of(&ids),
            slots_start_mono_ns: self.slots_start_mono_ns,
            answered_per_slot: per_slot,
            answered_by_method: by_method,
            body_bytes_received: body_bytes,
            // Counted by the long-lived endpoints' book.
            ws: None,
            streams: None,
        }
    }
}

/// One answered request, as the book counts it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answered<'a> {
    /// Its method, as received.
    pub(crate) method: &'a str,
    /// Body bytes read from it.
    pub(crate) body_bytes: u64,
    /// Its request id, if it had a valid one.
    pub(crate) id: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ids_duplicates_and_slots() {
        let book = Book::new();
        let t0 = book.slots_start_mono_ns;
        for (id, at, method, body_bytes) in [
            (Some(3), t0, "GET", 0),
            (Some(1), t0 + 500_000, "POST", 10),
            (Some(2), t0 + 1_000_000, "GET", 0),
            (Some(3), t0 + 2_500_000, "POST", 5),
            (None, t0 + 2_600_000, "PUT", 1),
        ] {
            book.received();
            let what = Answered {
                method,
                body_bytes,
                id,
            };
            book.answered_at(what, at);
        }
        book.received();
        let l = book.ledger();
        assert_eq!((l.received, l.answered), (6, 5));
        assert_eq!((l.answered_without_id, l.duplicate_ids), (1, 1));
        assert_eq!(l.answered_ids, vec![[1, 4]]);
        assert_eq!(l.answered_per_slot, vec![2, 1, 2]);
        assert_eq!(l.slots_start_mono_ns % ORIGIN_SLOT_NS, 0);
        let methods: Vec<(&str, u64)> = l
            .answered_by_method
            .iter()
            .map(|(m, n)| (m.as_str(), *n))
            .collect();
        assert_eq!(methods, vec![("GET", 2), ("POST", 2), ("PUT", 1)]);
        assert_eq!(l.body_bytes_received, 16);
    }
}
