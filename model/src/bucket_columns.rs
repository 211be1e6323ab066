//! The JSON form of [`LoadReport::buckets`](crate::load::LoadReport::buckets):
//! one array per field instead of one object per bucket (schema 4).
//!
//! An hour of 100 ms buckets is 36,000 of them; written as objects, their
//! keys cost more than their numbers. Written as columns:
//!
//! ```json
//! {"width_ns": 100000000,
//!  "ok": [...], "connections": [...],
//!  "p50_us": [...], "p90_us": [...], "p99_us": [...], "max_us": [...], "mean_us": [...],
//!  "failed": [[bucket_index, "class", count], ...],
//!  "retryable": [[bucket_index, count], ...],
//!  "tls_full": [[bucket_index, count], ...], "tls_resumed": [[bucket_index, count], ...],
//!  "h2_goaway": [[bucket_index, count], ...]}
//! ```
//!
//! Bucket `i` starts at `i × width_ns`, where `width_ns` is the distance of
//! the first two starts (0 with fewer than two buckets); when some bucket
//! does not start there, a `start_ns` column lists every start. `mean_us` is
//! rounded to 0.1 µs (finer than any latency histogram records it) and
//! written without a fraction when it is whole. `failed` lists only the
//! non-zero counts, bucket by bucket, in each bucket's order; `retryable`
//! (schema 5) the non-zero counts of failures a careful client retries
//! ([`Bucket::failed_retryable`]), read as none when absent; `tls_full` and
//! `tls_resumed` the non-zero counts of completed TLS handshakes
//! ([`Bucket::handshakes`]), written only when there are any (so a
//! cleartext run's file reads in a reader that predates them) and read as
//! none when absent; `h2_goaway` likewise the non-zero counts of HTTP/2
//! GOAWAY frames received ([`Bucket::goaways`]).
//!
//! Reading accepts this form and the array of bucket objects that schema 1
//! to 3 files (and `loadgen --json` before it) hold, so the Rust type stays
//! `Vec<Bucket>`. Use it with `#[serde(with = "crate::bucket_columns")]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::columnar::{self, Columnar};

use crate::load::{Bucket, BucketFailures, BucketHandshakes, BucketLatency};
use crate::outcome::FailureClass;

/// The columns as written and read.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Columns {
    width_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_ns: Option<Vec<u64>>,
    ok: Vec<u64>,
    connections: Vec<u64>,
    p50_us: Vec<u64>,
    p90_us: Vec<u64>,
    p99_us: Vec<u64>,
    max_us: Vec<u64>,
    mean_us: Vec<Tenths>,
    #[serde(default)]
    failed: Vec<(usize, FailureClass, u64)>,
    #[serde(default)]
    retryable: Vec<(usize, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tls_full: Vec<(usize, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tls_resumed: Vec<(usize, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    h2_goaway: Vec<(usize, u64)>,
}

/// A value rounded to a tenth, written as an integer when it is whole.
#[derive(Debug, Clone, Copy)]
struct Tenths(f64);

impl Tenths {
    /// `v` rounded to a tenth; a value that is not finite (never measured:
    /// a mean of no latency) is written as 0, the value of a bucket without
    /// successes, since JSON has no NaN and `null` would not read back.
    fn new(v: f64) -> Self {
        if v.is_finite() {
            Tenths((v * 10.0).round() / 10.0)
        } else {
            Tenths(0.0)
        }
    }
}

impl Serialize for Tenths {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for Tenths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d).map(Tenths)
    }
}

/// Writes the buckets as columns.
pub fn serialize<S: Serializer>(buckets: &[Bucket], s: S) -> Result<S::Ok, S::Error> {
    let width_ns = match buckets {
        [a, b, ..] => b.start_ns.saturating_sub(a.start_ns),
        _ => 0,
    };
    let implied = buckets
        .iter()
        .enumerate()
        .all(|(i, b)| Some(b.start_ns) == (i as u64).checked_mul(width_ns));
    let column = |f: fn(&Bucket) -> u64| buckets.iter().map(f).collect::<Vec<u64>>();
    let sparse = |f: fn(&Bucket) -> u64| {
        buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| Some((i, f(b))).filter(|(_, n)| *n > 0))
            .collect::<Vec<(usize, u64)>>()
    };
    Columns {
        width_ns,
        start_ns: (!implied).then(|| column(|b| b.start_ns)),
        ok: column(|b| b.ok),
        connections: column(|b| b.connections),
        p50_us: column(|b| b.latency.p50_us),
        p90_us: column(|b| b.latency.p90_us),
        p99_us: column(|b| b.latency.p99_us),
        max_us: column(|b| b.latency.max_us),
        mean_us: buckets
            .iter()
            .map(|b| Tenths::new(b.latency.mean_us))
            .collect(),
        failed: buckets
            .iter()
            .enumerate()
            .flat_map(|(i, b)| {
                b.failed
                    .iter()
                    .filter(|f| f.count > 0)
                    .map(move |f| (i, f.class, f.count))
            })
            .collect(),
        retryable: sparse(|b| b.failed_retryable),
        tls_full: sparse(|b| b.handshakes.full),
        tls_resumed: sparse(|b| b.handshakes.resumed),
        h2_goaway: sparse(|b| b.goaways),
    }
    .serialize(s)
}

/// Reads the buckets from columns or from an array of bucket objects.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Bucket>, D::Error> {
    columnar::deserialize(d)
}

impl Columnar for Bucket {
    type Columns = Columns;
    const EXPECTING: &'static str = "bucket columns (an object) or an array of buckets";

    fn rows(c: Columns) -> Result<Vec<Bucket>, String> {
        rows(c)
    }
}

/// The buckets of `c`, or why its columns do not fit together.
fn rows(c: Columns) -> Result<Vec<Bucket>, String> {
    let n = c.ok.len();
    let lengths = [
        ("connections", c.connections.len()),
        ("p50_us", c.p50_us.len()),
        ("p90_us", c.p90_us.len()),
        ("p99_us", c.p99_us.len()),
        ("max_us", c.max_us.len()),
        ("mean_us", c.mean_us.len()),
        ("start_ns", c.start_ns.as_ref().map_or(n, Vec::len)),
    ];
    columnar::same_lengths("bucket", ("ok", n), &lengths)?;
    // Bucket i starts at i × width_ns: a width that overflows the ns clock
    // within the run is refused rather than folded onto u64::MAX.
    let starts: Vec<u64> = match &c.start_ns {
        Some(_) => Vec::new(),
        None => (0..n as u64)
            .map(|i| {
                i.checked_mul(c.width_ns).ok_or_else(|| {
                    format!(
                        "width_ns {} puts bucket {i} past the largest time in ns",
                        c.width_ns
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut out: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start_ns: match &c.start_ns {
                Some(s) => s[i],
                None => starts[i],
            },
            ok: c.ok[i],
            failed: Vec::new(),
            latency: BucketLatency {
                p50_us: c.p50_us[i],
                p90_us: c.p90_us[i],
                p99_us: c.p99_us[i],
                max_us: c.max_us[i],
                mean_us: c.mean_us[i].0,
            },
            connections: c.connections[i],
            failed_retryable: 0,
            handshakes: BucketHandshakes::default(),
            goaways: 0,
        })
        .collect();
    for (i, class, count) in c.failed {
        let bucket = out
            .get_mut(i)
            .ok_or_else(|| format!("failed names bucket {i}, there are {n}"))?;
        bucket.failed.push(BucketFailures { class, count });
    }
    for (i, count) in c.retryable {
        let bucket = out
            .get_mut(i)
            .ok_or_else(|| format!("retryable names bucket {i}, there are {n}"))?;
        bucket.failed_retryable = count;
    }
    for (i, count) in c.tls_full {
        let bucket = out
            .get_mut(i)
            .ok_or_else(|| format!("tls_full names bucket {i}, there are {n}"))?;
        bucket.handshakes.full = count;
    }
    for (i, count) in c.tls_resumed {
        let bucket = out
            .get_mut(i)
            .ok_or_else(|| format!("tls_resumed names bucket {i}, there are {n}"))?;
        bucket.handshakes.resumed = count;
    }
    for (i, count) in c.h2_goaway {
        let bucket = out
            .get_mut(i)
            .ok_or_else(|| format!("h2_goaway names bucket {i}, there are {n}"))?;
        bucket.goaways = count;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field that holds buckets the way `LoadReport` does.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        buckets: Vec<Bucket>,
    }

    fn bucket(start_ns: u64, ok: u64, failed: &[(FailureClass, u64)]) -> Bucket {
        Bucket {
            start_ns,
            ok,
            failed: failed
                .iter()
                .map(|&(class, count)| BucketFailures { class, count })
                .collect(),
            latency: BucketLatency {
                p50_us: ok * 10,
                p90_us: ok * 20,
                p99_us: ok * 30,
                max_us: ok * 40,
                mean_us: ok as f64 * 12.5,
            },
            connections: ok % 3,
            failed_retryable: 0,
            handshakes: BucketHandshakes::default(),
            goaways: 0,
        }
    }

    fn round_trip(buckets: Vec<Bucket>) -> String {
        let h = Holder { buckets };
        let json = serde_json::to_string(&h).unwrap();
        let back: Holder = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h, "{json}");
        json
    }

    #[test]
    fn buckets_are_written_as_columns_and_read_back_equal() {
        let json = round_trip(vec![
            bucket(0, 5, &[]),
            bucket(100, 7, &[]),
            bucket(200, 0, &[]),
        ]);
        assert_eq!(
            json,
            r#"{"buckets":{"width_ns":100,"ok":[5,7,0],"connections":[2,1,0],"p50_us":[50,70,0],"p90_us":[100,140,0],"p99_us":[150,210,0],"max_us":[200,280,0],"mean_us":[62.5,87.5,0],"failed":[],"retryable":[]}}"#
        );
    }

    #[test]
    fn sparse_failures_are_listed_by_bucket_index_in_each_buckets_order() {
        let json = round_trip(vec![
            bucket(0, 5, &[]),
            bucket(
                10,
                1,
                &[(FailureClass::Reset, 3), (FailureClass::ConnectRefused, 1)],
            ),
            bucket(20, 5, &[]),
            bucket(30, 0, &[(FailureClass::Http5xx, 9)]),
        ]);
        assert!(
            json.contains(r#""failed":[[1,"reset",3],[1,"connect_refused",1],[3,"http_5xx",9]]"#),
            "{json}"
        );
    }

    #[test]
    fn no_buckets_and_one_bucket_round_trip() {
        let json = round_trip(Vec::new());
        assert!(json.contains(r#""width_ns":0,"ok":[]"#), "{json}");
        round_trip(vec![bucket(0, 4, &[])]);
        // One bucket that does not start at 0 keeps its start.
        let json = round_trip(vec![bucket(500, 4, &[])]);
        assert!(json.contains(r#""start_ns":[500]"#), "{json}");
    }

    #[test]
    fn starts_that_are_not_multiples_of_the_width_are_kept() {
        // loadgen always writes i × width; a file edited by hand or another
        // writer may not, and nothing is lost then either.
        let json = round_trip(vec![
            bucket(0, 1, &[]),
            bucket(100, 1, &[]),
            bucket(250, 1, &[]),
        ]);
        assert!(json.contains(r#""start_ns":[0,100,250]"#), "{json}");
        let json = round_trip(vec![bucket(50, 1, &[]), bucket(150, 1, &[])]);
        assert!(json.contains(r#""start_ns":[50,150]"#), "{json}");
    }

    #[test]
    fn mean_is_rounded_to_a_tenth_of_a_microsecond() {
        let mut b = bucket(0, 1, &[]);
        b.latency.mean_us = 2_750.000_000_000_5;
        let json = serde_json::to_string(&Holder { buckets: vec![b] }).unwrap();
        assert!(json.contains(r#""mean_us":[2750]"#), "{json}");
        let back: Holder = serde_json::from_str(&json).unwrap();
        assert_eq!(back.buckets[0].latency.mean_us, 2_750.0);
    }

    #[test]
    fn the_array_of_bucket_objects_of_older_files_is_read() {
        // Schema 1-2 buckets have no `connections`.
        let old = r#"{"buckets":[
            {"start_ns":0,"ok":3,"failed":[],"latency":{"p50_us":1,"p90_us":2,"p99_us":3,"max_us":4,"mean_us":1.25}},
            {"start_ns":100,"ok":0,"failed":[{"class":"reset","count":2}],
             "latency":{"p50_us":0,"p90_us":0,"p99_us":0,"max_us":0,"mean_us":0.0},"connections":7}
        ]}"#;
        let h: Holder = serde_json::from_str(old).unwrap();
        assert_eq!(h.buckets.len(), 2);
        assert_eq!(h.buckets[0].latency.mean_us, 1.25);
        assert_eq!(h.buckets[0].connections, 0);
        assert_eq!(h.buckets[1].start_ns, 100);
        assert_eq!(h.buckets[1].failed_total(), 2);
        assert_eq!(h.buckets[1].connections, 7);
        // Written again, they are columns.
        assert!(
            serde_json::to_string(&h)
                .unwrap()
                .contains(r#""width_ns":100"#)
        );
    }

    #[test]
    fn columns_of_different_lengths_or_a_failure_past_the_end_are_refused() {
        let short = r#"{"buckets":{"width_ns":1,"ok":[1,2],"connections":[0,0],"p50_us":[1],
            "p90_us":[1,1],"p99_us":[1,1],"max_us":[1,1],"mean_us":[1,1]}}"#;
        let e = serde_json::from_str::<Holder>(short).unwrap_err();
        assert!(
            e.to_string().contains("p50_us has 1 values, ok has 2"),
            "{e}"
        );
        let past = r#"{"buckets":{"width_ns":1,"ok":[1],"connections":[0],"p50_us":[1],
            "p90_us":[1],"p99_us":[1],"max_us":[1],"mean_us":[1],"failed":[[1,"reset",1]]}}"#;
        let e = serde_json::from_str::<Holder>(past).unwrap_err();
        assert!(
            e.to_string().contains("failed names bucket 1, there are 1"),
            "{e}"
        );
    }

    #[test]
    fn a_mean_that_is_not_finite_is_written_as_0_and_reads_back() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut b = bucket(0, 1, &[]);
            b.latency.mean_us = bad;
            let text = serde_json::to_string(&Holder { buckets: vec![b] }).unwrap();
            let back: Holder = serde_json::from_str(&text).unwrap();
            assert_eq!(back.buckets[0].latency.mean_us, 0.0, "{bad}: {text}");
        }
    }

    #[test]
    fn a_width_that_overflows_the_clock_is_refused_with_its_value() {
        let text = r#"{"buckets": {"width_ns": 9223372036854775808, "ok": [1, 2, 3],
            "connections": [0, 0, 0], "p50_us": [0, 0, 0], "p90_us": [0, 0, 0],
            "p99_us": [0, 0, 0], "max_us": [0, 0, 0], "mean_us": [0, 0, 0]}}"#;
        let e = serde_json::from_str::<Holder>(text)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("width_ns 9223372036854775808 puts bucket 2 past"),
            "{e}"
        );
    }

    #[test]
    fn retryable_counts_are_sparse_and_absent_in_schema_4_files() {
        let mut b = bucket(10, 0, &[(FailureClass::Closed, 3)]);
        b.failed_retryable = 2;
        let json = round_trip(vec![bucket(0, 1, &[]), b]);
        assert!(json.contains(r#""retryable":[[1,2]]"#), "{json}");
        let v4 = r#"{"buckets":{"width_ns":1,"ok":[1],"connections":[0],"p50_us":[1],
            "p90_us":[1],"p99_us":[1],"max_us":[1],"mean_us":[1],"failed":[[0,"reset",1]]}}"#;
        let h: Holder = serde_json::from_str(v4).unwrap();
        assert_eq!(h.buckets[0].failed_retryable, 0);
    }

    #[test]
    fn handshake_counts_are_sparse_and_absent_without_tls() {
        let mut b = bucket(10, 3, &[]);
        b.handshakes = BucketHandshakes {
            full: 2,
            resumed: 0,
        };
        let mut c = bucket(20, 3, &[]);
        c.handshakes = BucketHandshakes {
            full: 0,
            resumed: 7,
        };
        let json = round_trip(vec![bucket(0, 1, &[]), b, c]);
        assert!(
            json.contains(r#""tls_full":[[1,2]],"tls_resumed":[[2,7]]"#),
            "{json}"
        );
        let plain = round_trip(vec![bucket(0, 1, &[]), bucket(10, 1, &[])]);
        assert!(
            !plain.contains("tls_"),
            "a cleartext run writes no TLS column: {plain}"
        );
        let bad = r#"{"buckets":{"width_ns":1,"ok":[1],"connections":[0],"p50_us":[1],
            "p90_us":[1],"p99_us":[1],"max_us":[1],"mean_us":[1],"tls_resumed":[[1,1]]}}"#;
        let e = serde_json::from_str::<Holder>(bad).unwrap_err().to_string();
        assert!(e.contains("tls_resumed names bucket 1, there are 1"), "{e}");
    }

    #[test]
    fn goaway_counts_are_sparse_and_absent_without_h2() {
        let mut b = bucket(10, 3, &[]);
        b.goaways = 2;
        let json = round_trip(vec![bucket(0, 1, &[]), b]);
        assert!(json.contains(r#""h2_goaway":[[1,2]]"#), "{json}");
        let plain = round_trip(vec![bucket(0, 1, &[])]);
        assert!(!plain.contains("h2_"), "an HTTP/1.1 run: {plain}");
        let bad = r#"{"buckets":{"width_ns":1,"ok":[1],"connections":[0],"p50_us":[1],
            "p90_us":[1],"p99_us":[1],"max_us":[1],"mean_us":[1],"h2_goaway":[[3,1]]}}"#;
        let e = serde_json::from_str::<Holder>(bad).unwrap_err().to_string();
        assert!(e.contains("h2_goaway names bucket 3, there are 1"), "{e}");
    }

    #[test]
    fn zero_failure_counts_are_not_written() {
        let b = bucket(0, 1, &[(FailureClass::Reset, 0), (FailureClass::Closed, 2)]);
        let text = serde_json::to_string(&Holder { buckets: vec![b] }).unwrap();
        assert!(text.contains(r#""failed":[[0,"closed",2]]"#), "{text}");
    }
}
