//! The files ab and HdrHistogram users expect: `-e` percentiles CSV, `-g`
//! per-request TSV (gnuplot) and the `--hdr` interval log.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use reloadbench_model::load::LoadReport;

use crate::record::RequestSample;
use crate::run::LoadOutcome;

/// Writing an output file failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// An I/O error.
    #[error("write failed")]
    Io(#[from] io::Error),
    /// A histogram could not be encoded.
    #[error("histogram encoding failed: {0}")]
    Encode(String),
}

/// ab's `-e` file: `Percentage served,Time in ms` for every percent 0..=100.
pub fn percentiles_csv(r: &LoadReport) -> String {
    let mut o = String::from("Percentage served,Time in ms\n");
    for p in 0..=100u32 {
        let us = r.latency.at(f64::from(p)).unwrap_or(0);
        let _ = writeln!(o, "{p},{:.3}", us as f64 / 1000.0);
    }
    o
}

/// Wall-clock time of the run's start (derived from the monotonic start).
fn wall_start(started_mono_ns: u64) -> SystemTime {
    let ago = reloadbench_model::clock::monotonic_ns().saturating_sub(started_mono_ns);
    SystemTime::now() - Duration::from_nanos(ago)
}

/// Formats epoch seconds like C's `ctime` (UTC), e.g. `Tue Nov 24 03:04:14 2026`.
fn ctime(epoch_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (epoch_secs / 86_400) as i64;
    let secs = epoch_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[(days.rem_euclid(7)) as usize],
        MONTHS[(month - 1) as usize],
        day,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        year
    )
}

/// ab's `-g` file: one line per successful request
/// (`starttime seconds ctime dtime ttime wait`, times in ms), in start order.
pub fn gnuplot_tsv(started_mono_ns: u64, samples: &[RequestSample]) -> String {
    let base = wall_start(started_mono_ns)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut o = String::from("starttime\tseconds\tctime\tdtime\tttime\twait\n");
    for s in samples {
        let t = base + Duration::from_nanos(s.start_ns);
        let _ = writeln!(
            o,
            "{}\t{}\t{:.3}\t{:.3}\t{:.3}\t{:.3}",
            ctime(t.as_secs()),
            t.as_micros() as f64 / 1e6,
            s.connect_us as f64 / 1000.0,
            s.processing_us as f64 / 1000.0,
            s.total_us as f64 / 1000.0,
            s.waiting_us as f64 / 1000.0
        );
    }
    o
}

/// Writes the HdrHistogram interval log (standard V2 format, one compressed
/// histogram per time bucket, values in µs). `#[StartTime]` and `#[BaseTime]`
/// are the run's start on the wall clock; interval timestamps are seconds
/// since the start. A comment carries the start on the monotonic clock.
pub fn write_hdr_log<W: Write>(outcome: &LoadOutcome, w: &mut W) -> Result<(), OutputError> {
    let start = wall_start(outcome.report.started_mono_ns);
    let start_secs = start
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    writeln!(
        w,
        "#loadgen latency of successful requests, in microseconds"
    )?;
    writeln!(w, "#url: {}", outcome.report.config.url)?;
    writeln!(w, "#started_mono_ns: {}", outcome.report.started_mono_ns)?;
    writeln!(w, "#[StartTime: {start_secs:.3} (seconds since epoch)]")?;
    writeln!(w, "#[BaseTime: {start_secs:.3} (seconds since epoch)]")?;
    writeln!(
        w,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new().begin_log_with(w, &mut serializer)?;
    for iv in &outcome.intervals {
        let h = iv.histogram();
        log.write_histogram(
            &h,
            Duration::from_nanos(iv.start_ns),
            Duration::from_nanos(iv.duration_ns),
            None,
        )
        .map_err(|e| OutputError::Encode(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_formats_like_c() {
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_795_489_454), "Tue Nov 24 03:04:14 2026");
        assert_eq!(ctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    }
}
