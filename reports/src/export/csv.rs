//! `timeline.csv`: the per-interval timeline, one row per case and time bucket.
//!
//! Columns: `case, t_s, ok, rps` (ok per second, see
//! [`crate::summary::bucket_rps`]), `failed`, one `failed_<class>` column per
//! failure class that occurs anywhere in the run, then `p50_ms, p99_ms, max_ms`
//! (empty when the bucket had no successful request), and, in a run with
//! keep-alive, several methods or retries, `failed_retryable` (failures a
//! careful client retries by itself).

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
        let mut out = writer();
        let mut head: Vec<String> = ["case", "t_s", "ok", "rps", "failed"]
            .map(String::from)
            .to_vec();
        head.extend(classes.iter().map(|c| format!("failed_{}", c.key())));
        head.extend(["p50_ms", "p99_ms", "max_ms"].map(String::from));
        let split = super::tables::methods::retry_split(report);
        if split {
            head.push("failed_retryable".to_owned());
        }
        out.write_record(&head)?;
        for case in &report.cases {
            for (i, b) in case.load.buckets.iter().enumerate() {
                let mut rec = vec![
                    case.name.clone(),
                    format!("{:.3}", b.start_ns as f64 / 1e9),
                    b.ok.to_string(),
                    format!("{:.1}", bucket_rps(&case.load, i)),
                    b.failed_total().to_string(),
                ];
                for &c in &classes {
                    let n: u64 = b
                        .failed
                        .iter()
                        .filter(|f| f.class == c)
                        .map(|f| f.count)
                        .sum();
                    rec.push(n.to_string());
                }
                if b.ok > 0 {
                    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
                    let l = &b.latency;
                    rec.extend([ms(l.p50_us), ms(l.p99_us), ms(l.max_us)]);
                } else {
                    rec.extend([String::new(), String::new(), String::new()]);
                }
                if split {
                    rec.push(b.failed_retryable.to_string());
                }
                out.write_record(&rec)?;
            }
        }
        finish(out)
    }
}

/// A CSV writer into memory: `,` between fields, `\n` after each record, a
/// field quoted only when it holds a comma, quote or line break (RFC 4180).
pub(crate) fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new())
}

/// The bytes written to a [`writer`].
pub(crate) fn finish(out: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ExportError> {
    out.into_inner()
        .map_err(|e| ExportError::Csv(csv::Error::from(e.into_error())))
}

#[cfg(test)]
mod tests {
    use super::{finish, writer};

    fn row(fields: &[&str]) -> String {
        let mut out = writer();
        out.write_record(fields).expect("record");
        String::from_utf8(finish(out).expect("bytes")).expect("utf-8")
    }

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(row(&["plain", ""]), "plain,\n");
        assert_eq!(row(&["a,b", "x"]), "\"a,b\",x\n");
        assert_eq!(row(&["say \"hi\"", "x"]), "\"say \"\"hi\"\"\",x\n");
        assert_eq!(row(&["two\nlines", "cr\r"]), "\"two\nlines\",\"cr\r\"\n");
    }
}
