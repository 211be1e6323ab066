//! The command line: ab's flags with ab's meaning, plus loadgen's own.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use reloadbench_loadgen::LoadConfig;

/// An ab-compatible HTTP/1.1 load generator that counts every request exactly once.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// Number of requests to perform (default 1; no limit when only -t is given).
    #[arg(short = 'n', value_name = "REQUESTS")]
    pub(crate) requests: Option<u64>,
    /// Number of multiple requests to make at a time.
    #[arg(short = 'c', value_name = "CONCURRENCY", default_value_t = 1)]
    pub(crate) concurrency: u64,
    /// Seconds to max. to spend on benchmarking (no request starts after it).
    #[arg(short = 't', value_name = "TIMELIMIT")]
    pub(crate) timelimit: Option<f64>,
    /// Seconds to max. wait for a connect, and for each response once connected.
    #[arg(short = 's', value_name = "TIMEOUT", default_value_t = 30.0)]
    pub(crate) timeout: f64,
    /// Use HTTP KeepAlive.
    #[arg(short = 'k')]
    pub(crate) keep_alive: bool,
    /// Accepted for ab compatibility: loadgen never exits on socket errors.
    #[arg(short = 'r')]
    pub(crate) no_exit_on_error: bool,
    /// Add an arbitrary header line, e.g. 'Accept-Encoding: gzip' (repeatable).
    #[arg(short = 'H', value_name = "HEADER")]
    pub(crate) headers: Vec<String>,
    /// Method name (default GET, or POST with -p).
    #[arg(short = 'm', value_name = "METHOD")]
    pub(crate) method: Option<String>,
    /// File containing data to POST (remember to also set -T).
    #[arg(short = 'p', value_name = "POSTFILE")]
    pub(crate) postfile: Option<PathBuf>,
    /// Content-type header for the POST data (default text/plain).
    #[arg(short = 'T', value_name = "CONTENT_TYPE")]
    pub(crate) content_type: Option<String>,
    /// Do not show progress when doing more than 150 requests.
    #[arg(short = 'q')]
    pub(crate) quiet: bool,
    /// Accepted for ab compatibility: responses of varying length are never failures.
    #[arg(short = 'l')]
    pub(crate) variable_length: bool,
    /// Output CSV file with the percentage served (0..100) and the time in ms.
    #[arg(short = 'e', value_name = "CSV_FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Output all measured values as a 'gnuplot' (TSV) file.
    #[arg(short = 'g', value_name = "GNUPLOT_FILE")]
    pub(crate) gnuplot: Option<PathBuf>,
    /// Write the full JSON report to FILE ('-': JSON on stdout, text on stderr).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<String>,
    /// Write an HdrHistogram interval log (one histogram per bucket) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) hdr: Option<PathBuf>,
    /// Open loop: start R requests per second in total, latency from the intended start.
    #[arg(long, value_name = "R")]
    pub(crate) rate: Option<f64>,
    /// Width of a time bucket (e.g. 100ms, 1s).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub(crate) bucket: Duration,
    /// Spread client source addresses over 127.0.0.1..=127.0.0.N (127.x targets only).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) source_ips: u32,
    /// Worker threads (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) threads: usize,
    /// Failures kept individually in the JSON report; beyond it they are counted only.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub(crate) failure_records: usize,
    /// Send `x-reloadbench-id: <n>` with every request (n = its index in the run, from
    /// 0) and list each failure's id in the JSON report.
    #[arg(long)]
    pub(crate) request_ids: bool,
    /// Target URL, `http://host[:port][/path]` (HTTP/1.1 over TCP).
    #[arg(value_name = "URL")]
    pub(crate) url: String,
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "{name} must be a positive number of seconds, got {v}"
        ))
    }
}

impl Cli {
    /// The library configuration; `body` is the content of `-p`.
    pub(crate) fn to_config(&self, body: Option<Vec<u8>>) -> Result<LoadConfig, String> {
        let mut c = LoadConfig::new(&self.url).map_err(|e| e.to_string())?;
        c.concurrency = self.concurrency;
        c.requests = match (self.requests, self.timelimit) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(1),
        };
        c.duration = self.timelimit.map(|t| seconds("-t", t)).transpose()?;
        c.timeout = seconds("-s", self.timeout)?;
        c.keep_alive = self.keep_alive;
        for h in &self.headers {
            let Some((k, v)) = h.split_once(':') else {
                return Err(format!("-H {h:?}: expected 'Name: value'"));
            };
            c.headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        c.method = match (&self.method, &body) {
            (Some(m), _) => m.clone(),
            (None, Some(_)) => "POST".to_owned(),
            (None, None) => "GET".to_owned(),
        };
        c.body = body;
        c.content_type = self.content_type.clone();
        c.rate = self.rate;
        c.bucket = self.bucket;
        c.source_ips = self.source_ips;
        c.threads = self.threads;
        c.failure_records_cap = self.failure_records;
        c.record_requests = self.gnuplot.is_some();
        c.request_ids = self.request_ids;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ab_defaults() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "-t",
            "2",
            "-k",
            "-H",
            "X-A: b",
            "http://127.0.0.1:1/",
        ])
        .unwrap();
        let c = cli.to_config(None).unwrap();
        assert_eq!(c.requests, None);
        assert_eq!(c.duration, Some(Duration::from_secs(2)));
        assert_eq!(c.headers, vec![("X-A".to_owned(), "b".to_owned())]);
        let cli = Cli::try_parse_from(["loadgen", "http://127.0.0.1:1/"]).unwrap();
        let c = cli.to_config(Some(b"x".to_vec())).unwrap();
        assert_eq!((c.requests, c.method.as_str()), (Some(1), "POST"));
        let cli = Cli::try_parse_from(["loadgen", "-s", "0", "http://127.0.0.1:1/"]).unwrap();
        assert!(cli.to_config(None).is_err());
    }
}
