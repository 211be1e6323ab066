//! The JSON form of [`LoadReport::failures`](crate::load::LoadReport::failures):
//! one array per field instead of one object per failed request (schema 4),
//! as for the buckets ([`crate::bucket_columns`]). A run that loses
//! requests at every reload lists up to a million of them (`loadgen
//! --failure-records`); as objects, their keys cost as much as their values.
//!
//! ```json
//! {"t_ns": [...], "start_ns": [...], "class": [...], "reused": [...],
//!  "retryable": [...], "kind": [...], "id": [...]}
//! ```
//!
//! `id` is written only when some failure has one (`null` for those that
//! have none), `kind` only when some failure's request kind is not 0 (a
//! request mix). `retryable` (schema 5) is read as all false when absent.
//! Reading accepts these columns and the array of failure objects of schema
//! 1 to 3 files. Use it with
//! `#[serde(with = "crate::failure_columns")]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::columnar::{self, Columnar};
use crate::load::FailureRecord;
use crate::outcome::FailureClass;

/// The columns as written and read.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Columns {
    t_ns: Vec<u64>,
    start_ns: Vec<u64>,
    class: Vec<FailureClass>,
    reused: Vec<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retryable: Option<Vec<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Vec<Option<u64>>>,
}

/// Writes the failures as columns.
pub fn serialize<S: Serializer>(failures: &[FailureRecord], s: S) -> Result<S::Ok, S::Error> {
    Columns {
        t_ns: failures.iter().map(|f| f.t_ns).collect(),
        start_ns: failures.iter().map(|f| f.start_ns).collect(),
        class: failures.iter().map(|f| f.class).collect(),
        reused: failures.iter().map(|f| f.reused).collect(),
        retryable: Some(failures.iter().map(|f| f.retryable).collect()),
        kind: failures
            .iter()
            .any(|f| f.kind != 0)
            .then(|| failures.iter().map(|f| f.kind).collect()),
        id: failures
            .iter()
            .any(|f| f.id.is_some())
            .then(|| failures.iter().map(|f| f.id).collect()),
    }
    .serialize(s)
}

/// Reads the failures from columns or from an array of failure objects.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FailureRecord>, D::Error> {
    columnar::deserialize(d)
}

impl Columnar for FailureRecord {
    type Columns = Columns;
    const EXPECTING: &'static str = "failure columns (an object) or an array of failures";

    fn rows(c: Columns) -> Result<Vec<FailureRecord>, String> {
        let n = c.t_ns.len();
        columnar::same_lengths(
            "failure",
            ("t_ns", n),
            &[
                ("start_ns", c.start_ns.len()),
                ("class", c.class.len()),
                ("reused", c.reused.len()),
                ("retryable", c.retryable.as_ref().map_or(n, Vec::len)),
                ("kind", c.kind.as_ref().map_or(n, Vec::len)),
                ("id", c.id.as_ref().map_or(n, Vec::len)),
            ],
        )?;
        Ok((0..n)
            .map(|i| FailureRecord {
                t_ns: c.t_ns[i],
                start_ns: c.start_ns[i],
                class: c.class[i],
                reused: c.reused[i],
                id: c.id.as_ref().and_then(|ids| ids[i]),
                retryable: c.retryable.as_ref().is_some_and(|r| r[i]),
                kind: c.kind.as_ref().map_or(0, |k| k[i]),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        failures: Vec<FailureRecord>,
    }

    fn failure(t_ns: u64, class: FailureClass, id: Option<u64>) -> FailureRecord {
        FailureRecord {
            t_ns,
            start_ns: t_ns - 3,
            class,
            reused: t_ns.is_multiple_of(2),
            id,
            retryable: t_ns.is_multiple_of(2) && class == FailureClass::Reset,
            kind: 0,
        }
    }

    fn round_trip(failures: Vec<FailureRecord>) -> String {
        let h = Holder { failures };
        let json = serde_json::to_string(&h).unwrap();
        let back: Holder = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h, "{json}");
        json
    }

    #[test]
    fn failures_are_columns_and_ids_only_when_there_are_some() {
        let json = round_trip(vec![
            failure(10, FailureClass::Reset, Some(7)),
            failure(13, FailureClass::ConnectRefused, None),
        ]);
        assert_eq!(
            json,
            r#"{"failures":{"t_ns":[10,13],"start_ns":[7,10],"class":["reset","connect_refused"],"reused":[true,false],"retryable":[true,false],"id":[7,null]}}"#
        );
        let json = round_trip(vec![failure(10, FailureClass::Timeout, None)]);
        assert!(!json.contains("\"id\""), "{json}");
        let json = round_trip(Vec::new());
        assert_eq!(
            json,
            r#"{"failures":{"t_ns":[],"start_ns":[],"class":[],"reused":[],"retryable":[]}}"#
        );
    }

    #[test]
    fn kinds_are_written_only_for_a_mix_and_schema_4_columns_still_read() {
        let mut post = failure(11, FailureClass::Closed, None);
        post.kind = 1;
        let json = round_trip(vec![failure(10, FailureClass::Reset, None), post]);
        assert!(json.contains(r#""kind":[0,1]"#), "{json}");
        let v4 = r#"{"failures":{"t_ns":[4],"start_ns":[1],"class":["closed"],"reused":[true]}}"#;
        let h: Holder = serde_json::from_str(v4).unwrap();
        assert_eq!((h.failures[0].retryable, h.failures[0].kind), (false, 0));
    }

    #[test]
    fn the_array_of_failure_objects_of_older_files_is_read() {
        let old = r#"{"failures":[{"t_ns":5,"start_ns":1,"class":"reset","reused":false},
            {"t_ns":6,"start_ns":2,"class":"closed","reused":true,"id":9}]}"#;
        let h: Holder = serde_json::from_str(old).unwrap();
        assert_eq!(h.failures[0].id, None);
        assert_eq!(h.failures[1].class, FailureClass::Closed);
        assert_eq!(h.failures[1].id, Some(9));
        let short = r#"{"failures":{"t_ns":[1,2],"start_ns":[1,2],"class":["reset"],"reused":[true,true]}}"#;
        let e = serde_json::from_str::<Holder>(short).unwrap_err();
        assert!(
            e.to_string().contains("class has 1 values, t_ns has 2"),
            "{e}"
        );
    }
}
