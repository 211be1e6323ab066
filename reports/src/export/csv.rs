//! `timeline.csv`: the per-interval timeline, one row per case and time bucket.
//!
//! Columns: `case, t_s, ok, rps` (ok per second, see
//! [`crate::summary::bucket_rps`]), `failed`, one `failed_<class>` column per
//! failure class that occurs anywhere in the run, then `p50_ms, p99_ms, max_ms`
//! (empty when the bucket had no successful request).

use std::fmt::Write as _;

use reloadbench_model::run::RunReport;

use super::Exporter;
use crate::error::ExportError;
use crate::summary::{bucket_rps, classes_present};

/// The per-interval timeline as CSV.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn render(&self, report: &RunReport) -> Result<Vec<u8>, ExportError> {
        let classes = classes_present(report);
        let mut out = String::from("case,t_s,ok,rps,failed");
        for c in &classes {
            let _ = write!(out, ",failed_{}", c.key());
        }
        out.push_str(",p50_ms,p99_ms,max_ms\n");
        for case in &report.cases {
            for (i, b) in case.load.buckets.iter().enumerate() {
                let rps = bucket_rps(&case.load, i);
                let _ = write!(
                    out,
                    "{},{:.3},{},{:.1},{}",
                    field(&case.name),
                    b.start_ns as f64 / 1e9,
                    b.ok,
                    rps,
                    b.failed_total()
                );
                for &c in &classes {
                    let n: u64 = b
                        .failed
                        .iter()
                        .filter(|f| f.class == c)
                        .map(|f| f.count)
                        .sum();
                    let _ = write!(out, ",{n}");
                }
                if b.ok > 0 {
                    let ms = |us: u64| us as f64 / 1000.0;
                    let l = &b.latency;
                    let _ = writeln!(
                        out,
                        ",{:.3},{:.3},{:.3}",
                        ms(l.p50_us),
                        ms(l.p99_us),
                        ms(l.max_us)
                    );
                } else {
                    out.push_str(",,,\n");
                }
            }
        }
        Ok(out.into_bytes())
    }
}

/// Quotes a field when it contains a comma, quote or line break (RFC 4180).
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
