//! The JSON form of [`MachineLoad::seconds`](crate::kernel::MachineLoad::seconds):
//! one array per field instead of one object per interval (schema 4), as
//! for the load's buckets ([`crate::bucket_columns`]).
//!
//! ```json
//! {"t_ns": [...], "secs": [...], "busy_cores": [...], "own_cores": [...], "steal_cores": [...]}
//! ```
//!
//! `t_ns` and `secs` are kept exactly; the cores are rounded to 0.0001
//! (`/proc/stat` counts CPU time in 10 ms ticks, so a one-second sample is
//! known to 0.01 cores at best). Reading accepts these columns and the array
//! of interval objects of schema 3 files. Use it with
//! `#[serde(with = "crate::cpu_columns")]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::columnar::{self, Columnar};
use crate::kernel::CpuSecond;

/// The columns as written and read.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Columns {
    t_ns: Vec<u64>,
    secs: Vec<f64>,
    busy_cores: Vec<f64>,
    own_cores: Vec<f64>,
    steal_cores: Vec<f64>,
}

/// `v` rounded to 0.0001; a value that is not finite is written as 0 (JSON
/// has no NaN, and `null` would not read back).
fn cores(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e4).round() / 1e4
    } else {
        0.0
    }
}

/// Writes the intervals as columns.
pub fn serialize<S: Serializer>(seconds: &[CpuSecond], s: S) -> Result<S::Ok, S::Error> {
    let column = |f: fn(&CpuSecond) -> f64| seconds.iter().map(f).collect::<Vec<f64>>();
    Columns {
        t_ns: seconds.iter().map(|c| c.t_ns).collect(),
        secs: column(|c| if c.secs.is_finite() { c.secs } else { 0.0 }),
        busy_cores: column(|c| cores(c.busy_cores)),
        own_cores: column(|c| cores(c.own_cores)),
        steal_cores: column(|c| cores(c.steal_cores)),
    }
    .serialize(s)
}

/// Reads the intervals from columns or from an array of interval objects.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CpuSecond>, D::Error> {
    columnar::deserialize(d)
}

impl Columnar for CpuSecond {
    type Columns = Columns;
    const EXPECTING: &'static str = "CPU columns (an object) or an array of CPU intervals";

    fn rows(c: Columns) -> Result<Vec<CpuSecond>, String> {
        let n = c.t_ns.len();
        columnar::same_lengths(
            "CPU",
            ("t_ns", n),
            &[
                ("secs", c.secs.len()),
                ("busy_cores", c.busy_cores.len()),
                ("own_cores", c.own_cores.len()),
                ("steal_cores", c.steal_cores.len()),
            ],
        )?;
        Ok((0..n)
            .map(|i| CpuSecond {
                t_ns: c.t_ns[i],
                secs: c.secs[i],
                busy_cores: c.busy_cores[i],
                own_cores: c.own_cores[i],
                steal_cores: c.steal_cores[i],
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
        seconds: Vec<CpuSecond>,
    }

    fn second(t_ns: u64, busy: f64) -> CpuSecond {
        CpuSecond {
            t_ns,
            secs: 1.000_465_661,
            busy_cores: busy,
            own_cores: 1.25,
            steal_cores: 0.0,
        }
    }

    #[test]
    fn intervals_are_columns_with_cores_to_a_ten_thousandth() {
        let h = Holder {
            seconds: vec![
                second(1_000_390_455, 1.939_097_038_134_125_3),
                second(2_000_000_000, 0.5),
            ],
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json,
            r#"{"seconds":{"t_ns":[1000390455,2000000000],"secs":[1.000465661,1.000465661],"busy_cores":[1.9391,0.5],"own_cores":[1.25,1.25],"steal_cores":[0.0,0.0]}}"#
        );
        let back: Holder = serde_json::from_str(&json).unwrap();
        assert_eq!(back.seconds[0].busy_cores, 1.9391);
        assert_eq!(back.seconds[1], h.seconds[1]);
        let empty = Holder { seconds: vec![] };
        let back: Holder = serde_json::from_str(&serde_json::to_string(&empty).unwrap()).unwrap();
        assert_eq!(back, empty);
    }

    #[test]
    fn the_array_of_interval_objects_of_schema_3_is_read() {
        let old = r#"{"seconds":[{"t_ns":5,"secs":1.0,"busy_cores":1.5,"own_cores":1.4,"steal_cores":0.01}]}"#;
        let h: Holder = serde_json::from_str(old).unwrap();
        assert_eq!(
            h.seconds,
            vec![CpuSecond {
                t_ns: 5,
                secs: 1.0,
                busy_cores: 1.5,
                own_cores: 1.4,
                steal_cores: 0.01
            }]
        );
        let short = r#"{"seconds":{"t_ns":[1,2],"secs":[1,1],"busy_cores":[1],"own_cores":[1,1],"steal_cores":[0,0]}}"#;
        let e = serde_json::from_str::<Holder>(short).unwrap_err();
        assert!(
            e.to_string()
                .contains("busy_cores has 1 values, t_ns has 2"),
            "{e}"
        );
    }
}
