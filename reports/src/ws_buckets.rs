//! A WebSocket load's sparse per-bucket columns ([`WsBuckets`]) as one
//! dense row per time bucket, with the connections open at each bucket's
//! end: what the timeline's WebSocket strip draws and `report.html`'s
//! read-out shows.
//!
//! Open connections are derived from the counts, as the cumulative
//! `opened − closed cleanly − cut` up to the bucket's end (connections
//! still open at the end of the run are in neither), so they always agree
//! with the counts the tables show.

use reloadbench_model::ws::WsBuckets;

/// One time bucket of a WebSocket load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WsRow {
    /// Connections open at the end of the bucket.
    pub(crate) open: u64,
    /// Connections opened in the bucket.
    pub(crate) opened: u64,
    /// Attempts that failed to open.
    pub(crate) failed: u64,
    /// Connections the server closed with a close frame.
    pub(crate) closed: u64,
    /// Connections cut (no close frame).
    pub(crate) cut: u64,
    /// Messages sent.
    pub(crate) sent: u64,
    /// Messages echoed.
    pub(crate) echoed: u64,
    /// Messages lost with their connection.
    pub(crate) lost: u64,
    /// Messages late.
    pub(crate) late: u64,
}

/// The count of a [`WsRow`] a sparse column adds to.
type Field = fn(&mut WsRow) -> &mut u64;

/// The dense rows of `b`, one per bucket from 0 to the last with a count.
pub(crate) fn rows(b: &WsBuckets) -> Vec<WsRow> {
    let columns: [(&[(usize, u64)], Field); 8] = [
        (&b.opened, |r| &mut r.opened),
        (&b.failed, |r| &mut r.failed),
        (&b.closed_cleanly, |r| &mut r.closed),
        (&b.cut, |r| &mut r.cut),
        (&b.sent, |r| &mut r.sent),
        (&b.echoed, |r| &mut r.echoed),
        (&b.lost, |r| &mut r.lost),
        (&b.late, |r| &mut r.late),
    ];
    let n = columns
        .iter()
        .flat_map(|(c, _)| c.iter().map(|&(i, _)| i + 1))
        .max()
        .unwrap_or(0);
    let mut rows = vec![WsRow::default(); n];
    for (column, field) in columns {
        for &(i, count) in column {
            *field(&mut rows[i]) += count;
        }
    }
    let mut open: u64 = 0;
    for r in &mut rows {
        open = (open + r.opened).saturating_sub(r.closed + r.cut);
        r.open = open;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_connections_are_the_cumulative_opened_less_ended() {
        let b = WsBuckets {
            width_ns: 100_000_000,
            opened: vec![(0, 10), (3, 4)],
            closed_cleanly: vec![(2, 3)],
            cut: vec![(2, 1), (4, 2)],
            echoed: vec![(1, 50)],
            ..WsBuckets::default()
        };
        let r = rows(&b);
        let open: Vec<u64> = r.iter().map(|r| r.open).collect();
        assert_eq!(open, [10, 10, 6, 10, 8]);
        assert_eq!(r[1].echoed, 50);
        assert_eq!((r[2].closed, r[2].cut), (3, 1));
        assert!(rows(&WsBuckets::default()).is_empty());
    }
}
